/**
 * The discrete-event simulation of a Shoal network. It drives the project's own code:
 * the tracker's node index (`createNodeIndex`: scoring, liveness, over-capacity,
 * bucketed weighted-rendezvous selection) is fed probes, heartbeats and client reports
 * and answers every request's selection; every node's cache is the edge node's byte
 * cache (`createByteCache`, LRU or S3-FIFO). What is modelled rather than run, step for
 * step as the code does it: the SDK's hedged race with its adaptive delay and its leaves
 * request, the edge node's miss path (mesh neighbours, then the tracker's nodes for the
 * CID, then the origin, whose bytes are checked whole before the first is served), the
 * network (latency, bandwidth, queueing, connection set-up) and node churn.
 * docs/simulation.md describes the model and its limits.
 */
import { type ByteCache, createByteCache } from '@shoal/edge-node'
import { type Cid, formatCid } from '@shoal/protocol'
import { createNodeIndex, type NodeIndex, neighborsFromLatency } from '@shoal/tracker'
import TinyQueue from 'tinyqueue'
import type { SimConfig } from './config.ts'
import {
  backboneRtt,
  type Catalogue,
  cumulative,
  demand,
  latencyTable,
  makeCatalogue,
  nightness,
  nodeAddress,
  publish,
  Random,
} from './network.ts'
import {
  type AttackerModel,
  type SettlementFigures,
  SettlementLedger,
  type SettlementModel,
} from './settlement.ts'

/** Optional parts plugged into a run. */
export interface SimPlugins {
  /** Settlement to hand deliveries to (see settlement.ts); without it no payout figures. */
  settlement?: SettlementModel
  attackers?: AttackerModel
  /** Told of progress (share of simulated time done). */
  onProgress?(share: number): void
  /** Told of every node as it is created: its address and uplink (bytes/s). */
  onNode?(address: string, uplink: number): void
}

export interface Quantiles {
  p50: number
  p95: number
  requests: number
}

export interface RegionReport {
  mesh: Quantiles
  direct: Quantiles
  hitRatio: number
}

export interface SimReport {
  requests: number
  hitRatio: number
  byteHitRatio: number
  /** 1 − origin bytes ÷ bytes delivered. */
  originOffload: number
  /** Share of misses a peer served instead of the origin. */
  peerShareOfMisses: number
  /** Share of the origin's bytes that filled the caches of hedges that lost the race. */
  hedgeLoserOriginShare: number
  /**
   * Why misses happened, as shares of requests: the object's first request in the
   * client's region (`firstInRegion`: new content, or never asked there before), a
   * candidate other than the first answered (`notFirstCandidate`: first one offline,
   * or slower than a hedge), and the rest (`placementOrEviction`: the first candidate is
   * new to the CID after a join, a weight change or over-capacity, or evicted it).
   */
  missCauses: { firstInRegion: number; notFirstCandidate: number; placementOrEviction: number }
  ttfb: { mesh: Quantiles; direct: Quantiles; byRegion: Record<string, RegionReport> }
  /** Sorted samples of TTFB (ms) per region, for plots. */
  samples: Record<string, { mesh: Float64Array; direct: Float64Array }>
  events: {
    leaves: number
    returns: number
    departures: number
    joins: number
    failovers: number
    hedges: number
    noNodeFallbacks: number
    overCapacityHeartbeats: number
    /**
     * Misses a mesh neighbour served, a peer dialled after discovery served, and misses
     * where discovered nodes were left undialled because the node had no room for them.
     */
    meshNeighbourHits: number
    meshDiscoveredHits: number
    meshDiscoveryFull: number
    /** Neighbours closed to make room for a CID's holders; dials refused at `maxConnections`. */
    meshNeighboursClosed: number
    meshDialsRefused: number
  }
  index: { nodes: number; byStatus: Record<string, number> }
  catalogueBytes: number
  cacheBytesPerNode: number
  wallSeconds: number
  settlement?: SettlementFigures
}

/** Wall-clock time (ms) of the run's start: simulated time 0. */
export const T0 = Date.UTC(2026, 0, 1)
const DOWN = 0
const UP = 1
const GONE = 2
const DEMAND_AMPLITUDE = 0.5
/** Weight of one interval's egress in a node's reported load (an EWMA). */
const LOAD_ALPHA = 0.2
/** New objects are published in batches this often. */
const PUBLISH_EVERY_MS = 60_000
/**
 * TTFBs a client remembers (the SDK keeps 32 per node; a simulated client makes a few
 * requests, so its own last few are all it has).
 */
const CLIENT_TTFB_SAMPLES = 8

/** A mesh connection as one end sees it: when it opened, when the peer last held what this end asked for (−1: never). */
type Link = { opened: number; useful: number }
type ChurnEvent = { t: number; slot: number; kind: 'down' | 'up' | 'forget' | 'join' }

/** Growable list of numbers backed by a Float64Array. */
class Samples {
  data = new Float64Array(1024)
  length = 0
  push(v: number): void {
    if (this.length === this.data.length) {
      const next = new Float64Array(this.data.length * 2)
      next.set(this.data)
      this.data = next
    }
    this.data[this.length++] = v
  }
  sorted(): Float64Array {
    return this.data.slice(0, this.length).sort()
  }
}

function quantilesOf(sorted: Float64Array): Quantiles {
  const at = (q: number) =>
    sorted.length === 0
      ? Number.NaN
      : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!
  return { p50: at(0.5), p95: at(0.95), requests: sorted.length }
}

/** Runs one simulation; deterministic for a given config (seed included). */
export function simulate(config: SimConfig, plugins: SimPlugins = {}): SimReport {
  const started = performance.now()
  const random = new Random(config.seed)
  const regions = config.regions
  const R = regions.length
  const names = regions.map((r) => r.name)
  const originRegion = names.indexOf(config.originRegion)
  if (originRegion < 0) throw new RangeError(`origin region ${config.originRegion} is not a region`)
  const lat = config.latency
  const rtt = backboneRtt(regions, lat)
  const trackerRegions =
    config.trackerRegions === 'all'
      ? names.map((_, i) => i)
      : config.trackerRegions.map((n) => names.indexOf(n))
  /** RTT from a region to its nearest tracker replica, without the client's last mile. */
  const trackerRtt = new Float64Array(R)
  for (let r = 0; r < R; r++) {
    trackerRtt[r] = Math.min(...trackerRegions.map((t) => rtt[r * R + t]!)) + lat.datacenterAccessMs
  }

  const catalogue: Catalogue = makeCatalogue(config, random)
  const cacheBytes = Math.max(1, Math.floor(catalogue.totalBytes * config.cacheShare))

  // ---- tracker: the real node index, on simulated time
  let now = 0
  const index: NodeIndex<number> = createNodeIndex<number>(
    {
      ...config.tracker,
      regions: names,
      regionNeighbors: neighborsFromLatency(latencyTable(regions, rtt)),
      probeIntervalMs: config.probeIntervalMs,
      seed: config.seed,
      initialCapacity: config.nodes * 2,
    },
    { clock: () => T0 + now },
  )

  // ---- nodes
  const churn = config.churn
  const hours = config.durationMs / 3_600_000
  const maxNodes = config.nodes + Math.ceil(config.nodes * churn.joinsPerHour * hours * 2) + 16
  const nodeRegion = new Uint8Array(maxNodes)
  const nodeAccess = new Float64Array(maxNodes)
  const uplink = new Float64Array(maxNodes)
  const state = new Uint8Array(maxNodes)
  const registered = new Uint8Array(maxNodes)
  const windowBytes = new Float64Array(maxNodes)
  const loadRate = new Float64Array(maxNodes)
  const lastSentLoad = new Float64Array(maxNodes)
  const addresses: string[] = []
  const caches: (ByteCache<number, number> | undefined)[] = []
  /**
   * Each node's mesh neighbours (open libp2p connections, both directions), oldest
   * connection first, each with when it last held what this node asked for (−1: never).
   */
  const neighbours: Map<number, Link>[] = []
  const nodeRegionCdf = cumulative(regions.map((r) => r.nodeShare))
  let nodeCount = 0
  const queue = new TinyQueue<ChurnEvent>([], (a, b) => a.t - b.t)

  const newCache = () => createByteCache<number, number>({ policy: config.policy, maxSize: cacheBytes })
  const upMean = (slot: number) =>
    churn.meanUpMs * (1 - churn.diurnalAmplitude * nightness(T0 + now, regions[nodeRegion[slot]!]!.utcOffset))
  const downMean = (slot: number) =>
    churn.meanDownMs *
    (1 + churn.diurnalAmplitude * nightness(T0 + now, regions[nodeRegion[slot]!]!.utcOffset))

  const addNode = (up: boolean): number => {
    const slot = nodeCount++
    nodeRegion[slot] = random.pick(nodeRegionCdf)
    nodeAccess[slot] = random.between(lat.nodeAccessMs[0], lat.nodeAccessMs[1])
    uplink[slot] = random.logUniform(config.uplinkBytes[0], config.uplinkBytes[1])
    addresses[slot] = nodeAddress(config.seed, slot)
    plugins.onNode?.(addresses[slot]!, uplink[slot]!)
    caches[slot] = newCache()
    neighbours[slot] = new Map()
    state[slot] = up ? UP : DOWN
    registered[slot] = 1
    index.upsert(addresses[slot]!, { region: names[nodeRegion[slot]!]!, capacity: uplink[slot]!, meta: slot })
    queue.push({ t: now + random.exp(up ? upMean(slot) : downMean(slot)), slot, kind: up ? 'down' : 'up' })
    return slot
  }
  const pUp = churn.meanUpMs / (churn.meanUpMs + churn.meanDownMs)
  for (let i = 0; i < config.nodes; i++) addNode(random.next() < pUp)
  const joinRate = (config.nodes * churn.joinsPerHour) / 3_600_000
  if (joinRate > 0) queue.push({ t: random.exp(1 / joinRate), slot: -1, kind: 'join' })

  // ---- clients
  const clientRegion = new Uint8Array(config.clients)
  const clientAccess = new Float32Array(config.clients)
  const clientLastObject = new Int32Array(config.clients).fill(-1)
  const clientLastSelect = new Float64Array(config.clients)
  /** The client's recent TTFBs (its `NodeStats`), for the hedge delay. */
  const clientTtfb = new Float32Array(config.clients * CLIENT_TTFB_SAMPLES)
  const clientTtfbCount = new Uint8Array(config.clients)
  const hedgeDelay = (client: number): number => {
    const n = Math.min(clientTtfbCount[client]!, CLIENT_TTFB_SAMPLES)
    if (n === 0 || n < config.hedge.minSamples) return config.hedge.initialDelayMs
    const own = Array.from(
      clientTtfb.subarray(client * CLIENT_TTFB_SAMPLES, client * CLIENT_TTFB_SAMPLES + n),
    ).sort((a, b) => a - b)
    const q = own[Math.min(n - 1, Math.max(0, Math.ceil(config.hedge.quantile * n) - 1))]!
    return Math.min(config.hedge.maxDelayMs, Math.max(config.hedge.minDelayMs, q))
  }
  const recordTtfb = (client: number, ms: number) => {
    const k = clientTtfbCount[client]!
    clientTtfb[client * CLIENT_TTFB_SAMPLES + (k % CLIENT_TTFB_SAMPLES)] = ms
    clientTtfbCount[client] = k === 255 ? CLIENT_TTFB_SAMPLES : k + 1
  }
  const clientRegionCdf = cumulative(regions.map((r) => r.clientShare))
  for (let c = 0; c < config.clients; c++) {
    clientRegion[c] = random.pick(clientRegionCdf)
    clientAccess[c] = random.between(lat.clientAccessMs[0], lat.clientAccessMs[1])
  }

  // ---- figures
  const warmupEnd = config.durationMs * config.warmupShare
  let requests = 0
  let hits = 0
  let bytes = 0
  let hitBytes = 0
  let originBytes = 0
  let hedgeLoserOriginBytes = 0
  let misses = 0
  let peerServed = 0
  let missFirst = 0
  let missNotFirst = 0
  /** Objects seen per region (bit per object, grown with turnover). */
  let seen = new Uint8Array(R * 1024)
  const markSeen = (r: number, obj: number): boolean => {
    const i = obj * R + r
    if (i >= seen.length) {
      const next = new Uint8Array(Math.max(seen.length * 2, i + R))
      next.set(seen)
      seen = next
    }
    const was = seen[i] === 1
    seen[i] = 1
    return was
  }
  const regionRequests = new Float64Array(R)
  const regionHits = new Float64Array(R)
  const meshSamples = names.map(() => new Samples())
  const directSamples = names.map(() => new Samples())
  const events = {
    leaves: 0,
    returns: 0,
    departures: 0,
    joins: 0,
    failovers: 0,
    hedges: 0,
    noNodeFallbacks: 0,
    overCapacityHeartbeats: 0,
    meshNeighbourHits: 0,
    meshDiscoveredHits: 0,
    meshDiscoveryFull: 0,
    meshNeighboursClosed: 0,
    meshDialsRefused: 0,
  }
  const ledger = plugins.settlement ? new SettlementLedger(plugins.settlement, plugins.attackers) : undefined

  // ---- the tracker's loops: probes and heartbeats every interval
  const probeRound = () => {
    for (let slot = 0; slot < nodeCount; slot++) {
      if (registered[slot] === 0) continue
      const addr = addresses[slot]!
      if (state[slot] === UP) {
        const r = nodeRegion[slot]!
        index.applyProbe(addr, { answered: true, rttMs: trackerRtt[r]! + nodeAccess[slot]! })
        // egress over the interval, smoothed
        const rate = (windowBytes[slot]! * 1000) / config.probeIntervalMs
        windowBytes[slot] = 0
        const load = LOAD_ALPHA * rate + (1 - LOAD_ALPHA) * loadRate[slot]!
        loadRate[slot] = load
        if (
          Math.abs(load - lastSentLoad[slot]!) > uplink[slot]! * 0.01 ||
          (load === 0 && lastSentLoad[slot]! > 0)
        ) {
          lastSentLoad[slot] = load
          if (index.applyHeartbeat(addr, { load }) === 'over-capacity') events.overCapacityHeartbeats++
        }
      } else index.applyProbe(addr, { answered: false })
    }
  }

  // ---- churn
  const handleChurn = (e: ChurnEvent) => {
    if (e.kind === 'join') {
      if (nodeCount < maxNodes) {
        bootstrap(addNode(true))
        events.joins++
      }
      queue.push({ t: now + random.exp(1 / joinRate), slot: -1, kind: 'join' })
      return
    }
    const slot = e.slot
    if (e.kind === 'down') {
      events.leaves++
      disconnect(slot)
      if (random.next() < churn.departShare) {
        state[slot] = GONE
        events.departures++
        queue.push({ t: now + churn.forgetAfterMs, slot, kind: 'forget' })
      } else {
        state[slot] = DOWN
        queue.push({ t: now + random.exp(downMean(slot)), slot, kind: 'up' })
      }
    } else if (e.kind === 'up') {
      events.returns++
      state[slot] = UP
      if (!churn.cacheSurvivesRestart) caches[slot]!.clear()
      bootstrap(slot)
      queue.push({ t: now + random.exp(upMean(slot)), slot, kind: 'down' })
    } else {
      index.remove(addresses[slot]!)
      registered[slot] = 0
      caches[slot] = undefined
    }
  }

  // ---- one request
  const candidates = new Int32Array(config.selectCount)
  const firstChunk = (obj: number) => Math.min(catalogue.sizes[obj]!, config.chunkBytes)
  const queueDelay = (slot: number, obj: number) => {
    const rho = Math.min(0.98, loadRate[slot]! / uplink[slot]!)
    return ((rho / (1 - rho)) * firstChunk(obj) * 1000) / uplink[slot]!
  }
  const nodeRtt = (a: number, b: number) =>
    nodeAccess[a]! + nodeAccess[b]! + rtt[nodeRegion[a]! * R + nodeRegion[b]!]!
  const originRttFrom = (slot: number) =>
    nodeAccess[slot]! + rtt[nodeRegion[slot]! * R + originRegion]! + lat.datacenterAccessMs
  // ---- the mesh (edge-node/src/mesh/mesh.ts)
  const { maxNeighbours, haveFanOut, discoverCount, makeRoom, trim, neighbourGraceMs, discovery } =
    config.mesh
  /** libp2p's `maxConnections`: a node refuses inbound connections at this count. */
  const maxConnections = maxNeighbours * 2
  const disconnect = (slot: number) => {
    for (const n of neighbours[slot]!.keys()) neighbours[n]!.delete(slot)
    neighbours[slot]!.clear()
  }
  /**
   * `trackerDiscovery`: the tracker's nodes for a CID; with the node's region, half its
   * selection for the region and the rest its selection for anyone.
   */
  const discover = (slot: number, cid: Cid): number[] => {
    const region = names[nodeRegion[slot]!]!
    if (discovery === 'region') return index.select({ cid, count: discoverCount, region }).map((n) => n.meta!)
    if (discovery === 'any') return index.select({ cid, count: discoverCount }).map((n) => n.meta!)
    const near = index.select({ cid, count: Math.ceil(discoverCount / 2), region }).map((n) => n.meta!)
    const far = index.select({ cid, count: discoverCount }).map((n) => n.meta!)
    for (const n of far) if (near.length < discoverCount && !near.includes(n)) near.push(n)
    return near
  }
  /**
   * `leastUseful`: the neighbour that held what this node asked for least recently
   * (never, first), oldest connection first; not one of `keep`. Every neighbour is idle
   * between the simulation's requests.
   */
  const leastUseful = (
    slot: number,
    keep: readonly number[],
    openedBefore = Number.POSITIVE_INFINITY,
  ): number => {
    let victim = -1
    let victimUseful = Number.POSITIVE_INFINITY
    for (const [n, link] of neighbours[slot]!) {
      if (link.useful < victimUseful && link.opened < openedBefore && !keep.includes(n)) {
        victim = n
        victimUseful = link.useful
      }
    }
    return victim
  }
  const close = (a: number, b: number) => {
    neighbours[a]!.delete(b)
    neighbours[b]!.delete(a)
    events.meshNeighboursClosed++
  }
  /** `trim`: past the high watermark, the least useful neighbours out of their grace period go. */
  const trimmed: number[] = []
  const trimNeighbours = (slot: number) => {
    const own = neighbours[slot]!
    if (!trim || own.size <= maxNeighbours + haveFanOut) return
    trimmed.length = 0
    const openedBefore = now - neighbourGraceMs
    let young = false
    for (const link of own.values()) if (link.opened >= openedBefore) young = true
    while (own.size > maxNeighbours) {
      const victim = leastUseful(slot, trimmed, openedBefore)
      // a neighbour that held what this node asked for waits for the young ones to be judged
      if (victim < 0 || (young && own.get(victim)!.useful >= 0)) break
      close(slot, victim)
      trimmed.push(victim)
    }
  }
  /**
   * `addPeers`: dials peers while the node has room (its own count, inbound included),
   * `extra` more for the holders of a CID being fetched, never past twice the limit;
   * with `room`, closes the least useful neighbour for each peer that finds none. A peer
   * at libp2p's `maxConnections` refuses the dial.
   */
  let roomLimited = false
  const addPeers = (slot: number, peers: readonly number[], extra = 0, room = false): number[] => {
    const dialled: number[] = []
    const own = neighbours[slot]!
    const limit = Math.min(maxNeighbours + extra, maxNeighbours * 2)
    roomLimited = false
    for (const p of peers) {
      if (p === slot || state[p] !== UP || own.has(p)) continue
      if (own.size + dialled.length >= limit) {
        const victim = room && makeRoom ? leastUseful(slot, peers) : -1
        if (victim < 0) {
          roomLimited = true
          break
        }
        close(slot, victim)
      }
      if (neighbours[p]!.size >= maxConnections) {
        events.meshDialsRefused++
        continue
      }
      dialled.push(p)
    }
    for (const p of dialled) {
      own.set(p, { opened: now, useful: -1 })
      neighbours[p]!.set(slot, { opened: now, useful: -1 })
      trimNeighbours(p)
    }
    return dialled
  }
  /** At start: the tracker's selection for a random CID (in the node's region) as first neighbours. */
  let bootstraps = 0
  const bootstrap = (slot: number) => {
    const root = new Uint8Array(32)
    new DataView(root.buffer).setFloat64(0, random.next())
    new DataView(root.buffer).setUint32(8, bootstraps++)
    const cid = formatCid({ chunkSize: config.chunkBytes, size: 1, root })
    addPeers(slot, discover(slot, cid))
  }

  /**
   * Where a node that misses gets the object, and the delay to its first verified chunk,
   * as `findHolder` and the content service do it: ask `haveFanOut` random neighbours
   * (warm connections; the first yes wins, all no takes the slowest answer); if none
   * holds it, ask the tracker for the CID's nodes (no region), dial them (up to the
   * fan-out past the neighbour limit) and ask those; else the origin, over a cold connection, whose
   * body is checked whole against the CID before its first byte is served.
   */
  let missSource = -1
  const hasIt = (peer: number, obj: number) => state[peer] === UP && caches[peer]?.peek(obj) !== undefined
  const fetchFrom = (slot: number, peer: number, obj: number) =>
    nodeRtt(slot, peer) +
    lat.nodeServiceMs +
    queueDelay(peer, obj) +
    (firstChunk(obj) * 1000) / Math.min(uplink[peer]!, uplink[slot]! * config.downlinkFactor)
  const askAll = (slot: number, peers: readonly number[], obj: number): number => {
    let firstYes = Number.POSITIVE_INFINITY
    let allNo = 0
    missSource = -1
    for (const p of peers) {
      const d = nodeRtt(slot, p)
      if (hasIt(p, obj)) {
        if (d < firstYes) {
          firstYes = d
          missSource = p
        }
      } else allNo = Math.max(allNo, d)
    }
    // the first yes marks its neighbour useful (`markUseful`)
    const link = missSource >= 0 ? neighbours[slot]!.get(missSource) : undefined
    if (link !== undefined) link.useful = now
    return missSource >= 0 ? firstYes : allNo
  }
  const asked: number[] = []
  const missDelay = (slot: number, obj: number): number => {
    // 1. a random few neighbours
    asked.length = 0
    for (const n of neighbours[slot]!.keys()) asked.push(n)
    for (let i = 0; i < Math.min(haveFanOut, asked.length); i++) {
      const j = i + random.int(asked.length - i)
      const t = asked[i]!
      asked[i] = asked[j]!
      asked[j] = t
    }
    if (asked.length > haveFanOut) asked.length = haveFanOut
    let t = askAll(slot, asked, obj)
    if (missSource >= 0) {
      events.meshNeighbourHits++
      return t + fetchFrom(slot, missSource, obj)
    }
    // 2. the tracker's nodes for the CID, dialled even past the neighbour limit (by the
    // fan-out), then in place of the least useful neighbours; each asked as soon as its
    // connection is up (one already connected but not asked above, at once): the first
    // yes wins, all no waits for the slowest
    t += nodeAccess[slot]! + trackerRtt[nodeRegion[slot]!]! + lat.trackerServiceMs
    const found = discover(slot, catalogue.cids[obj]!)
    let firstYes = Number.POSITIVE_INFINITY
    let allNo = 0
    missSource = -1
    const answer = (p: number, at: number) => {
      if (!hasIt(p, obj)) allNo = Math.max(allNo, at)
      else if (at < firstYes) {
        firstYes = at
        missSource = p
      }
    }
    for (const p of found) {
      if (p !== slot && neighbours[slot]!.has(p) && !asked.includes(p)) answer(p, nodeRtt(slot, p))
    }
    for (const p of addPeers(slot, found, haveFanOut, true)) {
      answer(p, (lat.setupRtts + 2) * nodeRtt(slot, p))
    }
    if (missSource >= 0) {
      neighbours[slot]!.get(missSource)!.useful = now
      events.meshDiscoveredHits++
      return t + firstYes + fetchFrom(slot, missSource, obj)
    }
    t += allNo
    if (roomLimited) events.meshDiscoveryFull++
    // 3. the origin: a cold connection, the whole body verified before the first byte
    const size = catalogue.sizes[obj]!
    return (
      t +
      (lat.setupRtts + 1) * originRttFrom(slot) +
      lat.originServiceMs +
      (size * 1000) / (uplink[slot]! * config.downlinkFactor)
    )
  }

  const attemptAnswer = new Float64Array(config.selectCount)
  const attemptHit = new Uint8Array(config.selectCount)
  const attemptSource = new Int32Array(config.selectCount)
  const attemptStart = new Float64Array(config.selectCount)

  const request = (client: number, obj: number) => {
    const r = clientRegion[client]!
    const counted = now >= warmupEnd
    const size = catalogue.sizes[obj]!
    const seenBefore = markSeen(r, obj)
    // direct to the origin: a cold connection, as the client's connection to a node is
    const direct =
      (lat.setupRtts + 1) * (clientAccess[client]! + rtt[r * R + originRegion]! + lat.datacenterAccessMs) +
      lat.originServiceMs

    let trackerMs = 0
    if (
      !config.prefetchSelection &&
      (clientLastObject[client] !== obj || now - clientLastSelect[client]! > config.selectTtlMs)
    ) {
      trackerMs = (lat.setupRtts + 1) * (clientAccess[client]! + trackerRtt[r]!) + lat.trackerServiceMs
      clientLastObject[client] = obj
      clientLastSelect[client] = now
    }
    const selected = index.select({ cid: catalogue.cids[obj]!, count: config.selectCount, region: names[r] })
    const n = selected.length
    if (n === 0) {
      // no node anywhere: the SDK falls back to the origin
      events.noNodeFallbacks++
      if (counted) {
        requests++
        bytes += size
        originBytes += size
        regionRequests[r]!++
        meshSamples[r]!.push(trackerMs + direct)
        directSamples[r]!.push(direct)
      }
      return
    }
    for (let i = 0; i < n; i++) candidates[i] = selected[i]!.meta!

    // The SDK's race: first candidate at 0; a hedge to the next after hedgeDelayMs if no
    // answer yet (two in flight at most); a failed candidate is replaced at once.
    const attempt = (i: number, startAt: number) => {
      const slot = candidates[i]!
      attemptStart[i] = startAt
      if (state[slot] !== UP) {
        attemptAnswer[i] = Number.POSITIVE_INFINITY
        return startAt + config.ttfbTimeoutMs
      }
      const path = clientAccess[client]! + nodeAccess[slot]! + rtt[r * R + nodeRegion[slot]!]!
      const base = (lat.setupRtts + 1) * path + lat.nodeServiceMs + queueDelay(slot, obj)
      const hit = caches[slot]!.peek(obj) !== undefined
      attemptHit[i] = hit ? 1 : 0
      // an object of more than one chunk: the SDK asks for its leaves first, then the body
      // (on the now warm connection); a miss is filled while the leaves are asked for
      const body = size > config.chunkBytes ? path + lat.nodeServiceMs : 0
      attemptAnswer[i] = startAt + (hit ? base : base + missDelay(slot, obj)) + body
      attemptSource[i] = hit ? slot : missSource
      return Number.POSITIVE_INFINITY
    }
    let running0 = 0
    let running1 = -1
    let fail0 = attempt(0, 0)
    let fail1 = Number.POSITIVE_INFINITY
    let next = 1
    let winner = -1
    let ttfb = Number.POSITIVE_INFINITY
    let hedged = false
    const hedgeAfter = hedgeDelay(client)
    for (;;) {
      const a0 = running0 >= 0 ? attemptAnswer[running0]! : Number.POSITIVE_INFINITY
      const a1 = running1 >= 0 ? attemptAnswer[running1]! : Number.POSITIVE_INFINITY
      const hedgeAt = !hedged && running1 < 0 && next < n ? hedgeAfter : Number.POSITIVE_INFINITY
      const firstAnswer = Math.min(a0, a1)
      const firstFail = Math.min(fail0, fail1)
      const t = Math.min(firstAnswer, hedgeAt, firstFail)
      if (t === Number.POSITIVE_INFINITY) break
      if (t === firstAnswer) {
        winner = a0 <= a1 ? running0 : running1
        ttfb = firstAnswer
        break
      }
      if (t === hedgeAt) {
        hedged = true
        events.hedges++
        running1 = next++
        fail1 = attempt(running1, t)
        continue
      }
      // a failure: report it, start the next candidate in its place
      events.failovers++
      const failed = fail0 <= fail1 ? 0 : 1
      const failedSlot = candidates[failed === 0 ? running0 : running1]!
      if (registered[failedSlot] === 1) index.applyReport(addresses[failedSlot]!, { ok: false, weight: 1 })
      if (next < n) {
        const i = next++
        if (failed === 0) {
          running0 = i
          fail0 = attempt(i, t)
        } else {
          running1 = i
          fail1 = attempt(i, t)
        }
      } else if (failed === 0) {
        running0 = -1
        fail0 = Number.POSITIVE_INFINITY
      } else {
        running1 = -1
        fail1 = Number.POSITIVE_INFINITY
      }
    }

    if (winner < 0) {
      // every selected node failed: the SDK falls back to the origin
      events.noNodeFallbacks++
      const t = Math.min(fail0, fail1, config.ttfbTimeoutMs * n)
      if (counted) {
        requests++
        bytes += size
        originBytes += size
        regionRequests[r]!++
        meshSamples[r]!.push(trackerMs + t + direct)
        directSamples[r]!.push(direct)
      }
      return
    }
    // effects: the winner serves the object (a miss fills its cache); a hedged loser
    // that had the object counts an access
    const slot = candidates[winner]!
    // the SDK records each node's TTFB from its own start
    recordTtfb(client, ttfb - attemptStart[winner]!)
    const cache = caches[slot]!
    const hit = attemptHit[winner] === 1
    const source = attemptSource[winner]!
    if (hit) cache.get(obj)
    else {
      if (source >= 0) caches[source]!.get(obj)
      cache.set(obj, 1, { size })
    }
    // the hedged loser: a hit counts an access; a miss goes on filling, as an edge node's
    // fill belongs to the node, not to the request (content-service.ts), and costs its
    // source the bytes (the origin's count against offload)
    const other = winner === running0 ? running1 : running0
    let loserOriginBytes = 0
    if (other >= 0 && state[candidates[other]!] === UP) {
      const loser = candidates[other]!
      if (attemptHit[other] === 1) caches[loser]!.get(obj)
      else if (caches[loser]!.peek(obj) === undefined) {
        caches[loser]!.set(obj, 1, { size })
        const from = attemptSource[other]!
        if (from >= 0) windowBytes[from]! += size
        else loserOriginBytes = size
      }
    }
    windowBytes[slot]! += size
    if (source >= 0 && !hit) windowBytes[source]! += size
    index.applyReport(addresses[slot]!, { ok: true, weight: 1, throughput: uplink[slot]! })
    ledger?.deliver({
      time: now,
      epoch: Math.floor(now / config.epochMs),
      node: addresses[slot]!,
      client,
      bytes: size,
      delivered: true,
      selected: selected.map((s) => addresses[s.meta!]!),
    })
    if (counted) {
      requests++
      bytes += size
      originBytes += loserOriginBytes
      hedgeLoserOriginBytes += loserOriginBytes
      regionRequests[r]!++
      if (hit) {
        hits++
        hitBytes += size
        regionHits[r]!++
      } else {
        misses++
        if (!seenBefore) missFirst++
        else if (winner !== 0) missNotFirst++
        if (source >= 0) peerServed++
        else originBytes += size
      }
      meshSamples[r]!.push(trackerMs + ttfb)
      directSamples[r]!.push(direct)
    }
  }

  // ---- prefill: the network has been running; replay requests into the caches of the
  // nodes clients would have been sent to (the first live candidate). Nothing changes the
  // index meanwhile, so each (object, region) is selected once.
  probeRound()
  for (let slot = 0; slot < nodeCount; slot++) if (state[slot] === UP) bootstrap(slot)
  const prefillTarget = new Map<number, number>()
  for (let i = 0; i < config.prefillRequests; i++) {
    const region = clientRegion[random.int(config.clients)]!
    const obj = catalogue.rankToObject[random.pick(catalogue.popularity)]!
    markSeen(region, obj)
    const key = obj * R + region
    let slot = prefillTarget.get(key)
    if (slot === undefined) {
      slot = -1
      for (const s of index.select({
        cid: catalogue.cids[obj]!,
        count: config.selectCount,
        region: names[region],
      })) {
        if (state[s.meta!] === UP) {
          slot = s.meta!
          break
        }
      }
      prefillTarget.set(key, slot)
    }
    if (slot < 0) continue
    const cache = caches[slot]!
    if (cache.get(obj) === undefined) cache.set(obj, 1, { size: catalogue.sizes[obj]! })
  }

  // ---- the event loop
  const demandMax = 1 + DEMAND_AMPLITUDE
  const arrivalMean = config.durationMs / (config.requests * demandMax)
  let nextArrival = random.exp(arrivalMean)
  let nextProbe = config.probeIntervalMs
  let nextPublish = PUBLISH_EVERY_MS
  let publishDue = 0
  const publishRate =
    config.catalogue.objects * config.catalogue.turnoverPerHour * (PUBLISH_EVERY_MS / 3_600_000)
  let nextEpoch = config.epochMs
  let nextProgress = config.durationMs / 20
  for (;;) {
    const churnAt = queue.peek()?.t ?? Number.POSITIVE_INFINITY
    const t = Math.min(nextArrival, nextProbe, nextEpoch, churnAt, nextPublish)
    if (t >= config.durationMs) break
    now = t
    if (t === nextPublish) {
      publishDue += publishRate
      publish(config, random, catalogue, Math.floor(publishDue))
      publishDue -= Math.floor(publishDue)
      nextPublish += PUBLISH_EVERY_MS
    } else if (t === nextProbe) {
      probeRound()
      nextProbe += config.probeIntervalMs
    } else if (t === churnAt) {
      handleChurn(queue.pop()!)
    } else if (t === nextEpoch) {
      ledger?.endEpoch(Math.floor(now / config.epochMs) - 1, now)
      nextEpoch += config.epochMs
    } else {
      nextArrival += random.exp(arrivalMean)
      const client = random.int(config.clients)
      // thinning: accept by the client region's demand at this hour
      if (
        random.next() * demandMax <
        demand(T0 + now, regions[clientRegion[client]!]!.utcOffset, DEMAND_AMPLITUDE)
      ) {
        request(client, catalogue.rankToObject[random.pick(catalogue.popularity)]!)
      }
    }
    if (now >= nextProgress) {
      plugins.onProgress?.(now / config.durationMs)
      nextProgress += config.durationMs / 20
    }
  }
  now = config.durationMs
  ledger?.endEpoch(Math.ceil(config.durationMs / config.epochMs) - 1, now)

  // ---- report
  const byRegion: Record<string, RegionReport> = {}
  const samples: SimReport['samples'] = {}
  const allMesh = new Samples()
  const allDirect = new Samples()
  for (let r = 0; r < R; r++) {
    const mesh = meshSamples[r]!.sorted()
    const direct = directSamples[r]!.sorted()
    for (const v of mesh) allMesh.push(v)
    for (const v of direct) allDirect.push(v)
    samples[names[r]!] = { mesh, direct }
    byRegion[names[r]!] = {
      mesh: quantilesOf(mesh),
      direct: quantilesOf(direct),
      hitRatio: regionRequests[r]! === 0 ? 0 : regionHits[r]! / regionRequests[r]!,
    }
  }
  const stats = index.stats()
  return {
    requests,
    hitRatio: requests === 0 ? 0 : hits / requests,
    byteHitRatio: bytes === 0 ? 0 : hitBytes / bytes,
    originOffload: bytes === 0 ? 0 : 1 - originBytes / bytes,
    peerShareOfMisses: misses === 0 ? 0 : peerServed / misses,
    hedgeLoserOriginShare: originBytes === 0 ? 0 : hedgeLoserOriginBytes / originBytes,
    missCauses: {
      firstInRegion: requests === 0 ? 0 : missFirst / requests,
      notFirstCandidate: requests === 0 ? 0 : missNotFirst / requests,
      placementOrEviction: requests === 0 ? 0 : (misses - missFirst - missNotFirst) / requests,
    },
    ttfb: { mesh: quantilesOf(allMesh.sorted()), direct: quantilesOf(allDirect.sorted()), byRegion },
    samples,
    events,
    index: { nodes: stats.nodes, byStatus: { ...stats.byStatus } },
    catalogueBytes: catalogue.totalBytes,
    cacheBytesPerNode: cacheBytes,
    wallSeconds: (performance.now() - started) / 1000,
    ...(ledger ? { settlement: ledger.figures() } : {}),
  }
}
