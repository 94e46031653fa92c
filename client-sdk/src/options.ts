/**
 * The client's options: plain data with named defaults, validated once by `createClient`
 * (`InvalidArgumentError` naming the option).
 */
import { InvalidArgumentError, type RecordSigner } from '@shoal/protocol'
import { type Address, getAddress, isAddress } from 'viem'
import type { ClientEvent } from './events.ts'
import type { TrackerClient } from './tracker-client.ts'

/** Time to first byte allowed to one node before it is given up (ms). */
export const DEFAULT_TTFB_TIMEOUT_MS = 5_000
/** Longest silence allowed in the middle of a body before the node is given up (ms). */
export const DEFAULT_STALL_TIMEOUT_MS = 5_000
/** Per-request timeout of tracker calls (ms). */
export const DEFAULT_TRACKER_CALL_TIMEOUT_MS = 5_000
/** Nodes asked of the tracker per CID. */
export const DEFAULT_SELECT_COUNT = 3
/** The quantile of a node's recent TTFBs after which a hedged request starts. */
export const DEFAULT_HEDGE_QUANTILE = 0.9
/** Floor of the hedge delay (ms): no hedge before this, however fast the nodes. */
export const DEFAULT_HEDGE_MIN_DELAY_MS = 10
/** Ceiling of the hedge delay (ms). */
export const DEFAULT_HEDGE_MAX_DELAY_MS = 2_000
/** Hedge delay before enough TTFBs have been observed (ms). */
export const DEFAULT_HEDGE_INITIAL_DELAY_MS = 250
/**
 * TTFBs observed (of a node, else of all nodes) before their quantile replaces the
 * initial delay: a quantile of one or two samples hedges on noise (a quarter of requests
 * in the simulation), and a losing hedge still fills its node from the origin.
 */
export const DEFAULT_HEDGE_MIN_SAMPLES = 8
/** Requests in flight at once for one piece of content (the first, plus hedges). */
export const DEFAULT_HEDGE_MAX_PARALLEL = 2
/** Bytes of verified leaf lists kept per client. */
export const DEFAULT_LEAVES_CACHE_BYTES = 16 * 2 ** 20
/** How long a tracker's node selection for a CID is reused (ms). */
export const DEFAULT_SELECT_TTL_MS = 30_000
/** How long a verified site entry is reused before the tracker is asked again (ms). */
export const DEFAULT_SITE_TTL_MS = 10_000
/**
 * Largest object fetched from an origin when no node could give its leaves: such bytes
 * are held until the whole object matched its CID, so this bounds the memory used.
 */
export const DEFAULT_ORIGIN_BUFFER_BYTES = 64 * 2 ** 20

/** Verified bytes from one node between two receipts (a client with an account). */
export const DEFAULT_RECEIPT_EVERY_BYTES = 2 ** 20

/** A node given directly (tests, private deployments). */
export interface StaticNode {
  /** Base URL of the node's HTTP edge. */
  url: string
  /** The node's address, if known: integrity reports name it. */
  address?: Address
}

export interface TimeoutOptions {
  /** Time to first byte allowed to one node (ms). Default 5 s. */
  ttfbMs?: number
  /** Longest pause in a body (ms). Default 5 s. */
  stallMs?: number
  /** Per-call timeout of tracker requests (ms). Default 5 s. */
  trackerMs?: number
}

export interface HedgeOptions {
  /** Hedge at all (default true). With `false`, a node is replaced only when it fails or times out. */
  enabled?: boolean
  /** Quantile of the node's recent TTFBs to wait before hedging (default 0.9). */
  quantile?: number
  minDelayMs?: number
  maxDelayMs?: number
  initialDelayMs?: number
  /** TTFBs observed before their quantile replaces `initialDelayMs` (default 8). */
  minSamples?: number
  /** Requests in flight at once (default 2). */
  maxParallel?: number
}

export interface CacheOptions {
  leavesBytes?: number
  selectTtlMs?: number
  siteTtlMs?: number
}

export interface ClientInit {
  /** The tracker: its base URL, or a tracker client. Needed for `shoal://<site>/…` and node selection. */
  tracker?: string | TrackerClient
  /** Static nodes, used instead of the tracker's selection (tests, private deployments). */
  nodes?: readonly (string | StaticNode)[]
  /** A fetch implementation (e.g. undici's); defaults to the global one. */
  fetch?: typeof globalThis.fetch
  /** The client's region, passed to the tracker's selection. */
  region?: string
  /**
   * The client's key: signs integrity reports and, with a tracker, bandwidth receipts. With
   * an account the client asks the tracker for tickets and pays the nodes it reads from.
   */
  account?: RecordSigner
  /** Verified bytes from one node between two receipts (default 1 MiB). */
  receiptEveryBytes?: number
  /** Publishers trusted per site; a site not listed trusts the first publisher it sees. */
  sites?: Readonly<Record<string, { publisher: Address }>>
  /**
   * Origin-pull sites reachable through the static nodes: origin URL (e.g.
   * `https://www.example.org`) → the site name nodes serve it under (`/s/<site>/…`). An
   * `https://` URL of another origin is fetched directly.
   */
  originSites?: Readonly<Record<string, string>>
  /** Nodes asked of the tracker per CID (default 3). */
  selectCount?: number
  timeouts?: TimeoutOptions
  hedge?: HedgeOptions
  cache?: CacheOptions
  /** Largest object verified whole from an origin when no node gave its leaves (default 64 MiB). */
  originBufferBytes?: number
  /** Told about hedges, failovers, integrity failures, reports and origin fallbacks. */
  onEvent?: (event: ClientEvent) => void
}

export interface ResolvedClientOptions {
  nodes: StaticNode[] | undefined
  region: string | undefined
  sites: Map<string, Address>
  originSites: Map<string, string>
  selectCount: number
  ttfbMs: number
  stallMs: number
  trackerMs: number
  hedge: Required<HedgeOptions>
  leavesBytes: number
  selectTtlMs: number
  siteTtlMs: number
  originBufferBytes: number
  receiptEveryBytes: number
}

const SITE_RE = /^[a-z0-9][a-z0-9-]{0,62}$/
const REGION_RE = /^[a-z0-9][a-z0-9-]{0,31}$/

function int(name: string, value: number | undefined, fallback: number, min: number, max = 2 ** 31): number {
  const v = value ?? fallback
  if (!Number.isSafeInteger(v) || v < min || v > max)
    throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}, got ${String(v)}`)
  return v
}

/** A node's base URL, canonical with a trailing `/`. */
export function nodeBase(url: string, name = 'node url'): string {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new InvalidArgumentError(`${name} "${url}" is not an absolute URL`)
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
    throw new InvalidArgumentError(`${name} must be http or https, got ${parsed.protocol}`)
  if (parsed.search !== '' || parsed.hash !== '')
    throw new InvalidArgumentError(`${name} must not have a query or fragment`)
  return parsed.href.endsWith('/') ? parsed.href : `${parsed.href}/`
}

/** An origin URL as a key: scheme, host and port (`new URL(u).origin`). */
export function originKey(url: string): string {
  return new URL(url).origin
}

/**
 * @example
 * const options = resolveClientOptions({ nodes: ['http://127.0.0.1:7480'] })
 */
export function resolveClientOptions(init: ClientInit): ResolvedClientOptions {
  if (typeof init !== 'object' || init === null)
    throw new InvalidArgumentError('client options must be an object')
  if (init.tracker === undefined && (init.nodes === undefined || init.nodes.length === 0))
    throw new InvalidArgumentError('a client needs a tracker or at least one static node')
  const nodes = init.nodes?.map((n, i) => {
    if (typeof n === 'string') return { url: nodeBase(n, `nodes[${i}]`) }
    if (typeof n !== 'object' || n === null) throw new InvalidArgumentError(`nodes[${i}] must be a URL`)
    if (n.address !== undefined && !isAddress(n.address, { strict: false }))
      throw new InvalidArgumentError(`nodes[${i}].address is not an address`)
    return {
      url: nodeBase(n.url, `nodes[${i}].url`),
      ...(n.address === undefined ? {} : { address: getAddress(n.address) }),
    }
  })
  if (init.region !== undefined && !REGION_RE.test(init.region))
    throw new InvalidArgumentError(`region must match ${REGION_RE.source}`)
  const sites = new Map<string, Address>()
  for (const [site, pin] of Object.entries(init.sites ?? {})) {
    if (!SITE_RE.test(site)) throw new InvalidArgumentError(`sites: "${site}" is not a site name`)
    if (!isAddress(pin?.publisher ?? '', { strict: false }))
      throw new InvalidArgumentError(`sites.${site}.publisher is not an address`)
    sites.set(site, getAddress(pin.publisher))
  }
  const originSites = new Map<string, string>()
  for (const [origin, site] of Object.entries(init.originSites ?? {})) {
    if (!SITE_RE.test(site)) throw new InvalidArgumentError(`originSites: "${site}" is not a site name`)
    originSites.set(originKey(nodeBase(origin, 'originSites key')), site)
  }
  if (originSites.size > 0 && nodes === undefined)
    throw new InvalidArgumentError('originSites are served by static nodes: give `nodes` too')
  const t = init.timeouts ?? {}
  const h = init.hedge ?? {}
  const c = init.cache ?? {}
  const quantile = h.quantile ?? DEFAULT_HEDGE_QUANTILE
  if (typeof quantile !== 'number' || !(quantile > 0 && quantile <= 1))
    throw new InvalidArgumentError('hedge.quantile must be in (0, 1]')
  const minDelayMs = int('hedge.minDelayMs', h.minDelayMs, DEFAULT_HEDGE_MIN_DELAY_MS, 0)
  const maxDelayMs = int('hedge.maxDelayMs', h.maxDelayMs, DEFAULT_HEDGE_MAX_DELAY_MS, minDelayMs)
  if (init.onEvent !== undefined && typeof init.onEvent !== 'function')
    throw new InvalidArgumentError('onEvent must be a function')
  return {
    nodes,
    region: init.region,
    sites,
    originSites,
    selectCount: int('selectCount', init.selectCount, DEFAULT_SELECT_COUNT, 1, 64),
    ttfbMs: int('timeouts.ttfbMs', t.ttfbMs, DEFAULT_TTFB_TIMEOUT_MS, 1),
    stallMs: int('timeouts.stallMs', t.stallMs, DEFAULT_STALL_TIMEOUT_MS, 1),
    trackerMs: int('timeouts.trackerMs', t.trackerMs, DEFAULT_TRACKER_CALL_TIMEOUT_MS, 1),
    hedge: {
      enabled: h.enabled ?? true,
      quantile,
      minDelayMs,
      maxDelayMs,
      initialDelayMs: int('hedge.initialDelayMs', h.initialDelayMs, DEFAULT_HEDGE_INITIAL_DELAY_MS, 0),
      minSamples: int('hedge.minSamples', h.minSamples, DEFAULT_HEDGE_MIN_SAMPLES, 1, 64),
      maxParallel: int('hedge.maxParallel', h.maxParallel, DEFAULT_HEDGE_MAX_PARALLEL, 1, 16),
    },
    leavesBytes: int(
      'cache.leavesBytes',
      c.leavesBytes,
      DEFAULT_LEAVES_CACHE_BYTES,
      0,
      Number.MAX_SAFE_INTEGER,
    ),
    selectTtlMs: int('cache.selectTtlMs', c.selectTtlMs, DEFAULT_SELECT_TTL_MS, 0),
    siteTtlMs: int('cache.siteTtlMs', c.siteTtlMs, DEFAULT_SITE_TTL_MS, 0),
    receiptEveryBytes: int(
      'receiptEveryBytes',
      init.receiptEveryBytes,
      DEFAULT_RECEIPT_EVERY_BYTES,
      1,
      Number.MAX_SAFE_INTEGER,
    ),
    originBufferBytes: int(
      'originBufferBytes',
      init.originBufferBytes,
      DEFAULT_ORIGIN_BUFFER_BYTES,
      0,
      Number.MAX_SAFE_INTEGER,
    ),
  }
}
