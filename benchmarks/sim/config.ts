/**
 * The simulation's model: regions and their latency, node and client populations,
 * content, churn, and the two presets (`SMALL_SIM`, run by `npm test`; `FULL_SIM`, run
 * by `npm run bench -- sim`). Plain data; docs/simulation.md explains every number.
 */
import {
  DEFAULT_HEDGE_INITIAL_DELAY_MS,
  DEFAULT_HEDGE_MAX_DELAY_MS,
  DEFAULT_HEDGE_MIN_DELAY_MS,
  DEFAULT_HEDGE_MIN_SAMPLES,
  DEFAULT_HEDGE_QUANTILE,
  DEFAULT_SELECT_COUNT,
  DEFAULT_SELECT_TTL_MS,
  DEFAULT_TTFB_TIMEOUT_MS,
} from '@shoal/client-sdk'
import { DEFAULT_MEMORY_POLICY, DEFAULT_MESH_NEIGHBOUR_GRACE_MS, type EvictionPolicy } from '@shoal/edge-node'
import type { NodeIndexInit } from '@shoal/tracker'

export interface RegionSpec {
  name: string
  /** Where the region's people are, for the latency model. */
  lat: number
  lon: number
  /** Hours ahead of UTC, for the diurnal curves. */
  utcOffset: number
  /** Relative share of nodes and of clients. */
  nodeShare: number
  clientShare: number
}

/**
 * Ten regions with approximate population centres. Shares follow where residential
 * broadband users are (rough, public figures), not where data centres are.
 */
export const REGIONS: readonly RegionSpec[] = [
  { name: 'us-east', lat: 39.0, lon: -77.5, utcOffset: -5, nodeShare: 14, clientShare: 12 },
  { name: 'us-west', lat: 37.4, lon: -122.0, utcOffset: -8, nodeShare: 9, clientShare: 8 },
  { name: 'sa-east', lat: -23.5, lon: -46.6, utcOffset: -3, nodeShare: 8, clientShare: 9 },
  { name: 'eu-west', lat: 51.5, lon: -0.1, utcOffset: 0, nodeShare: 12, clientShare: 10 },
  { name: 'eu-central', lat: 50.1, lon: 8.7, utcOffset: 1, nodeShare: 13, clientShare: 11 },
  { name: 'ap-south', lat: 19.1, lon: 72.9, utcOffset: 5.5, nodeShare: 10, clientShare: 15 },
  { name: 'ap-northeast', lat: 35.7, lon: 139.7, utcOffset: 9, nodeShare: 12, clientShare: 11 },
  { name: 'ap-southeast', lat: 1.35, lon: 103.8, utcOffset: 8, nodeShare: 9, clientShare: 11 },
  { name: 'oc-east', lat: -33.9, lon: 151.2, utcOffset: 10, nodeShare: 5, clientShare: 4 },
  { name: 'af-south', lat: -26.2, lon: 28.0, utcOffset: 2, nodeShare: 8, clientShare: 9 },
]

export interface LatencyModel {
  /** RTT between two places in one region over the backbone (ms). */
  intraRegionMs: number
  /** Backbone RTT between regions: `baseMs + km × msPerKm` (fibre at 2/3 c with route inflation). */
  interBaseMs: number
  interMsPerKm: number
  /** Last-mile RTT added by a client's access link (uniform range, ms). */
  clientAccessMs: readonly [number, number]
  /** Last-mile RTT added by a residential node's access link (uniform range, ms). */
  nodeAccessMs: readonly [number, number]
  /** Last-mile RTT of the origin and the trackers (data centres). */
  datacenterAccessMs: number
  /** Time for a node to answer from its cache (ms). */
  nodeServiceMs: number
  /** Time for the origin to start answering (ms). */
  originServiceMs: number
  /** Time for a tracker to answer a selection (ms). */
  trackerServiceMs: number
  /**
   * Extra round trips to set up a connection, on every cold path alike: client to tracker,
   * node and origin, node to origin and to a newly dialled peer (0 = warm connections).
   * Mesh neighbours and a node's tracker session are warm.
   */
  setupRtts: number
}

export interface ChurnModel {
  /** Mean length of a node's online session (ms). */
  meanUpMs: number
  /** Mean length of an offline spell (ms). */
  meanDownMs: number
  /** How much local night shortens sessions and lengthens spells (0 = no diurnal effect). */
  diurnalAmplitude: number
  /** Share of leaves that are for good (the node never comes back). */
  departShare: number
  /** How long the tracker keeps a departed node before removing it (ms). */
  forgetAfterMs: number
  /** New nodes per hour, as a share of the starting population. */
  joinsPerHour: number
  /** Whether a node's cache survives going offline (the disk tier does). */
  cacheSurvivesRestart: boolean
}

export interface SimConfig {
  seed: number
  nodes: number
  clients: number
  /**
   * Requests in the run. Each is one real request (no sampling): clients make
   * `requests / clients` requests over the run, so node load is the load they cause.
   */
  requests: number
  durationMs: number
  /** Share of the run before figures are counted (the tracker learns, churn mixes). */
  warmupShare: number
  /**
   * Requests replayed before the run starts, at once and without timing, to fill caches
   * as a network that has been running for a while would have them (0 = start cold).
   */
  prefillRequests: number
  catalogue: {
    objects: number
    zipf: number
    /** Object sizes: log-normal with this median and σ, clamped. */
    medianBytes: number
    sigma: number
    minBytes: number
    maxBytes: number
    /** Share of the popularity ranks taken by newly published objects each hour. */
    turnoverPerHour: number
  }
  /** Each node's cache, as a share of the catalogue's bytes. */
  cacheShare: number
  policy: EvictionPolicy
  /** Nodes a client asks the tracker for (the SDK's `selectCount`). */
  selectCount: number
  /**
   * The SDK's hedge (client-sdk `hedge` options): a second node is started once the
   * first has not answered within the `quantile` of the client's recent TTFBs, clamped
   * to [minDelayMs, maxDelayMs]; `initialDelayMs` before the client has any.
   */
  hedge: {
    quantile: number
    minDelayMs: number
    maxDelayMs: number
    initialDelayMs: number
    /**
     * TTFBs a client must have before their quantile replaces `initialDelayMs` (the
     * SDK's `hedge.minSamples`).
     */
    minSamples: number
  }
  ttfbTimeoutMs: number
  /** How long a client reuses a selection for one CID (the SDK's `selectTtlMs`). */
  selectTtlMs: number
  /**
   * Whether clients already hold the selection when they ask for an object (e.g. fetched
   * with a site's manifest for all its CIDs); `false` (today's SDK) pays a tracker call
   * per new CID.
   */
  prefetchSelection: boolean
  /** Chunk size: a node serves its first byte once the first chunk is verified. */
  chunkBytes: number
  originRegion: string
  /** Regions with a tracker replica; clients ask the nearest. */
  trackerRegions: 'all' | readonly string[]
  /**
   * The edge node's mesh (edge-node/src/mesh): a node keeps up to `maxNeighbours` it
   * dialled (more may dial it), bootstrapped from the tracker's selection for a random
   * CID; a miss asks `haveFanOut` random neighbours, then the tracker's `discoverCount`
   * nodes for the CID (dialled even when the node is full, up to `haveFanOut` past the
   * limit and never past twice it; past that, in place of the least useful idle
   * neighbours when `makeRoom`), then the origin. A node refuses inbound connections at
   * twice `maxNeighbours` (libp2p's `maxConnections`); with `trim`, a node past
   * `maxNeighbours` + `haveFanOut` closes its least useful neighbours older than
   * `neighbourGraceMs` down to `maxNeighbours`. `discovery` says which nodes the
   * tracker is asked for, at start (a random CID) and for a CID's holders: half in the
   * node's region and the rest anywhere (`both`: `trackerDiscovery` with the node's
   * `--region`), anywhere (`any`: without a region), or all in the region (`region`).
   */
  mesh: {
    maxNeighbours: number
    haveFanOut: number
    discoverCount: number
    makeRoom: boolean
    /** Trim past `maxNeighbours` + `haveFanOut` down to `maxNeighbours`, sparing younger connections. */
    trim: boolean
    neighbourGraceMs: number
    discovery: 'both' | 'any' | 'region'
  }
  /** Node uplink, bytes/s, log-uniform in this range; downlink is `downlinkFactor` × uplink. */
  uplinkBytes: readonly [number, number]
  downlinkFactor: number
  probeIntervalMs: number
  /** Options handed to the tracker's node index (besides regions, neighbours, probe interval, seed). */
  tracker: Pick<NodeIndexInit, 'weightHysteresis' | 'uptimeWindow' | 'bucketsPerRegion'>
  /** Settlement epoch (ms): the settlement seam is called at each boundary. */
  epochMs: number
  regions: readonly RegionSpec[]
  latency: LatencyModel
  churn: ChurnModel
}

const HOUR = 3_600_000
const MBIT = 125_000

export const DEFAULT_LATENCY: LatencyModel = {
  intraRegionMs: 10,
  interBaseMs: 4,
  interMsPerKm: 0.013,
  clientAccessMs: [5, 40],
  nodeAccessMs: [5, 30],
  datacenterAccessMs: 1,
  nodeServiceMs: 1,
  originServiceMs: 20,
  trackerServiceMs: 1,
  setupRtts: 1,
}

export const DEFAULT_CHURN: ChurnModel = {
  meanUpMs: 10 * HOUR,
  meanDownMs: 2 * HOUR,
  diurnalAmplitude: 0.5,
  departShare: 0.1,
  forgetAfterMs: HOUR,
  joinsPerHour: 0.01,
  cacheSurvivesRestart: true,
}

/** The network of issue #9: 10,000 nodes, 1,000,000 clients, a day. */
export const FULL_SIM: SimConfig = {
  seed: 9,
  nodes: 10_000,
  clients: 1_000_000,
  requests: 2_000_000,
  prefillRequests: 4_000_000,
  durationMs: 24 * HOUR,
  warmupShare: 0.1,
  catalogue: {
    objects: 10_000,
    zipf: 1.0,
    medianBytes: 256 * 1024,
    sigma: 1.2,
    minBytes: 1024,
    maxBytes: 64 * 2 ** 20,
    turnoverPerHour: 0.005,
  },
  cacheShare: 0.01,
  // the edge node's default memory policy (edge-node DEFAULT_MEMORY_POLICY)
  policy: DEFAULT_MEMORY_POLICY,
  selectCount: DEFAULT_SELECT_COUNT,
  hedge: {
    quantile: DEFAULT_HEDGE_QUANTILE,
    minDelayMs: DEFAULT_HEDGE_MIN_DELAY_MS,
    maxDelayMs: DEFAULT_HEDGE_MAX_DELAY_MS,
    initialDelayMs: DEFAULT_HEDGE_INITIAL_DELAY_MS,
    minSamples: DEFAULT_HEDGE_MIN_SAMPLES,
  },
  ttfbTimeoutMs: DEFAULT_TTFB_TIMEOUT_MS,
  selectTtlMs: DEFAULT_SELECT_TTL_MS,
  prefetchSelection: false,
  chunkBytes: 256 * 1024,
  originRegion: 'us-east',
  trackerRegions: 'all',
  mesh: {
    maxNeighbours: 16,
    haveFanOut: 8,
    discoverCount: 8,
    makeRoom: true,
    trim: true,
    neighbourGraceMs: DEFAULT_MESH_NEIGHBOUR_GRACE_MS,
    discovery: 'both',
  },
  uplinkBytes: [10 * MBIT, 500 * MBIT],
  downlinkFactor: 5,
  probeIntervalMs: 30_000,
  tracker: {},
  epochMs: HOUR,
  regions: REGIONS,
  latency: DEFAULT_LATENCY,
  churn: DEFAULT_CHURN,
}

/** A small network that runs in a couple of seconds (`npm test`). */
export const SMALL_SIM: SimConfig = {
  ...FULL_SIM,
  nodes: 300,
  clients: 10_000,
  requests: 25_000,
  prefillRequests: 20_000,
  durationMs: 2 * HOUR,
  catalogue: { ...FULL_SIM.catalogue, objects: 1_000 },
}

/** A copy of `base` with some fields replaced (nested objects merged one level deep). */
export function withConfig(base: SimConfig, patch: SimPatch): SimConfig {
  return {
    ...base,
    ...patch,
    catalogue: { ...base.catalogue, ...patch.catalogue },
    latency: { ...base.latency, ...patch.latency },
    churn: { ...base.churn, ...patch.churn },
    tracker: { ...base.tracker, ...patch.tracker },
  }
}

export type SimPatch = Partial<Omit<SimConfig, 'catalogue' | 'latency' | 'churn'>> & {
  catalogue?: Partial<SimConfig['catalogue']>
  latency?: Partial<LatencyModel>
  churn?: Partial<ChurnModel>
}
