/**
 * The edge node's options: plain data with named defaults, validated once at
 * construction. Flags, env vars and config files are turned into these in `bin/`.
 */
import { InvalidArgumentError } from '@shoal/protocol'
import type { MeshOptions } from './mesh/options.ts'
import { type RelayOptions, type ResolvedRelayOptions, resolveRelayOptions } from './relay/options.ts'

export const DEFAULT_HOST = '127.0.0.1'
export const DEFAULT_PORT = 7480
export const DEFAULT_MEMORY_CACHE_BYTES = 64 * 2 ** 20
/**
 * The memory tier's eviction policy. S3-FIFO wins on hit ratio on skewed and scanned
 * traces and costs no clear hit throughput (benchmarks/results/edge.json,
 * `s3fifo_vs_lru`), but in the network simulation at the configuration (Zipf 1.0,
 * caches of 1 %) it hit no more (0.957 either way) and offloaded less of the origin (0.919
 * against LRU's 0.947; docs/simulation.md), so LRU stays the default;
 * `--memory-policy s3-fifo` chooses the other.
 */
export const DEFAULT_MEMORY_POLICY: 'lru' | 's3-fifo' = 'lru'
export const DEFAULT_DISK_CACHE_BYTES = 2 * 2 ** 30
/** Largest object the node caches or accepts in a push. */
export const DEFAULT_MAX_OBJECT_BYTES = 4 * 2 ** 30
export const DEFAULT_MAX_HEADER_BYTES = 16 * 1024
export const DEFAULT_HEADERS_TIMEOUT_MS = 10_000
export const DEFAULT_REQUEST_TIMEOUT_MS = 5 * 60_000
export const DEFAULT_KEEP_ALIVE_TIMEOUT_MS = 5_000
/** A client that takes no bytes of a fast-path response for this long is dropped (nginx's `send_timeout`). */
export const DEFAULT_SEND_TIMEOUT_MS = 60_000
export const DEFAULT_UPSTREAM_CONNECT_TIMEOUT_MS = 5_000
export const DEFAULT_UPSTREAM_HEADERS_TIMEOUT_MS = 15_000
export const DEFAULT_UPSTREAM_BODY_TIMEOUT_MS = 30_000
export const DEFAULT_SHUTDOWN_GRACE_MS = 10_000
export const DEFAULT_PURGE_MAX_AGE_SECONDS = 300
/** Seconds per epoch when the tracker does not say (docs/receipts.md). */
export const DEFAULT_EPOCH_SECONDS = 3600
/** Payment sessions open at once. */
export const DEFAULT_MAX_SESSIONS = 100_000
/** The site name the `--origin` site is cached and purged under. */
export const DEFAULT_ORIGIN_SITE = 'default'

/** A site served by pulling from an HTTP origin, as a shared HTTP cache. */
export interface OriginSite {
  name: string
  /** Absolute http(s) URL; request paths are appended to its path. */
  origin: string
  /** Publisher address allowed to purge this site (optional for origin-only sites). */
  publisher?: `0x${string}`
}

export interface EdgeNodeOptions {
  /** Listen address. Tests and the devnet use 127.0.0.1 and port 0. */
  host?: string
  port?: number
  /** Where the disk cache, the node key and the receipt book live. */
  dataDir: string
  memoryCacheBytes?: number
  /** Eviction policy of the memory tier: `lru` (default) or `s3-fifo` (scan-resistant). */
  memoryPolicy?: 'lru' | 's3-fifo'
  /**
   * When an origin object goes to disk: at its `second-use` (default; objects asked for
   * once stay in memory only) or at its `first-use`. See docs/operator.md.
   */
  diskAdmission?: 'first-use' | 'second-use'
  /**
   * Take plain first misses of `http:` origins on the fast path (raw socket in, raw
   * keep-alive client out; see docs/operator.md). Default true; false sends every miss
   * through node:http and undici.
   */
  fastMiss?: boolean
  diskCacheBytes?: number
  maxObjectBytes?: number
  /** Global egress cap in bytes per second; unlimited when absent. */
  egressBytesPerSecond?: number
  /** Origin-pull sites served at `/s/<name>/…`. */
  sites?: OriginSite[]
  /** One origin served at `/` as a plain reverse-proxy edge (`--origin URL`). */
  defaultOrigin?: string
  /** Publisher allowed to purge the `--origin` site (purged as site `default`). */
  defaultOriginPublisher?: `0x${string}`
  /** Tracker base URL, for manifests and registration. */
  trackerUrl?: string
  /**
   * The tracker's ticket-signing address: the only issuer whose tickets open sessions.
   * When absent, the node asks `trackerUrl` (`GET /v1/epochs/current`, field `issuer`).
   */
  trackerAddress?: `0x${string}`
  /** Seconds per epoch (must match the tracker's; the tracker's answer wins when it gives one). Default 3600. */
  epochSeconds?: number
  /** Payment sessions open at once (default 100 000); more are refused with 429. */
  maxSessions?: number
  /** PEM certificate and key: the node then speaks HTTPS. */
  tls?: { cert: string | Buffer; key: string | Buffer }
  maxHeaderBytes?: number
  headersTimeoutMs?: number
  requestTimeoutMs?: number
  keepAliveTimeoutMs?: number
  /**
   * A client that takes none of a fast-path response's bytes for this long (hits and
   * first misses) is dropped, so a reader that stopped cannot hold its connection
   * forever. Default 60 s.
   */
  sendTimeoutMs?: number
  upstreamConnectTimeoutMs?: number
  upstreamHeadersTimeoutMs?: number
  upstreamBodyTimeoutMs?: number
  shutdownGraceMs?: number
  /** Oldest accepted purge request, in seconds. */
  purgeMaxAgeSeconds?: number
  /** Name shown in `Via`; defaults to `shoal`. */
  viaName?: string
  /**
   * Which `PUT /c/<cid>` pushes are stored: `manifests` (default) only CIDs named by a
   * site manifest the node holds, so strangers cannot fill the disk and evict what is
   * hot; `any` for private deployments and tests.
   */
  acceptPushes?: 'manifests' | 'any'
  /**
   * The relay (bandwidth sharing, docs/operator.md): an HTTP forward proxy and CONNECT
   * tunnels on their own port for clients with a relay ticket. Off when absent.
   */
  relay?: RelayOptions
  /** The libp2p mesh between nodes (docs/mesh.md); on by default, `false` turns it off. */
  mesh?: MeshOptions | false
}

/** Options that stay optional once resolved (no default: absent means "none"). */
type UnsetByDefault =
  | 'egressBytesPerSecond'
  | 'defaultOrigin'
  | 'defaultOriginPublisher'
  | 'trackerUrl'
  | 'trackerAddress'
  | 'tls'

export type ResolvedEdgeNodeOptions = Required<Omit<EdgeNodeOptions, UnsetByDefault | 'relay' | 'mesh'>> &
  Pick<EdgeNodeOptions, UnsetByDefault> & { relay?: ResolvedRelayOptions; mesh: MeshOptions | false }

const SITE_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/

function positiveInt(name: string, value: number | undefined, fallback: number, min = 1): number {
  const v = value ?? fallback
  if (!Number.isSafeInteger(v) || v < min)
    throw new InvalidArgumentError(`${name} must be an integer ≥ ${min}, got ${v}`)
  return v
}

/** Checks an origin URL: absolute http(s), no credentials, no query or fragment. */
export function checkOriginUrl(name: string, value: string): string {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new InvalidArgumentError(`${name} must be an absolute http(s) URL, got "${value}"`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidArgumentError(`${name} must use http or https, got ${url.protocol}`)
  }
  if (url.username !== '' || url.password !== '')
    throw new InvalidArgumentError(`${name} must not carry credentials`)
  if (url.search !== '' || url.hash !== '')
    throw new InvalidArgumentError(`${name} must not have a query or fragment`)
  return url.href.replace(/\/$/, '')
}

/**
 * Fills in defaults and validates; throws `InvalidArgumentError`
 * (`SHOAL_ERR_INVALID_ARGUMENT`) naming the bad option.
 *
 * @example
 * const options = resolveOptions({ dataDir: '/var/lib/shoal', defaultOrigin: 'https://example.org' })
 */
export function resolveOptions(init: EdgeNodeOptions): ResolvedEdgeNodeOptions {
  if (typeof init !== 'object' || init === null)
    throw new InvalidArgumentError('edge node options must be an object')
  if (typeof init.dataDir !== 'string' || init.dataDir === '')
    throw new InvalidArgumentError('dataDir is required')
  const port = init.port ?? DEFAULT_PORT
  if (!Number.isSafeInteger(port) || port < 0 || port > 65535) {
    throw new InvalidArgumentError(`port must be 0..65535, got ${port}`)
  }
  const memoryCacheBytes = positiveInt(
    'memoryCacheBytes',
    init.memoryCacheBytes,
    DEFAULT_MEMORY_CACHE_BYTES,
    0,
  )
  const memoryPolicy = init.memoryPolicy ?? DEFAULT_MEMORY_POLICY
  if (memoryPolicy !== 'lru' && memoryPolicy !== 's3-fifo')
    throw new InvalidArgumentError(`memoryPolicy must be lru or s3-fifo, got ${String(memoryPolicy)}`)
  const diskAdmission = init.diskAdmission ?? 'second-use'
  if (diskAdmission !== 'first-use' && diskAdmission !== 'second-use')
    throw new InvalidArgumentError(
      `diskAdmission must be first-use or second-use, got ${String(diskAdmission)}`,
    )
  const fastMiss = init.fastMiss ?? true
  if (typeof fastMiss !== 'boolean') throw new InvalidArgumentError('fastMiss must be true or false')
  const diskCacheBytes = positiveInt('diskCacheBytes', init.diskCacheBytes, DEFAULT_DISK_CACHE_BYTES)
  const maxObjectBytes = positiveInt('maxObjectBytes', init.maxObjectBytes, DEFAULT_MAX_OBJECT_BYTES)
  if (init.egressBytesPerSecond !== undefined)
    positiveInt('egressBytesPerSecond', init.egressBytesPerSecond, 0)
  const seen = new Set<string>()
  const sites = (init.sites ?? []).map((site) => {
    if (!SITE_NAME.test(site.name)) {
      throw new InvalidArgumentError(`site name "${site.name}" must match ${SITE_NAME.source}`)
    }
    if (seen.has(site.name)) throw new InvalidArgumentError(`site "${site.name}" is configured twice`)
    if (site.name === DEFAULT_ORIGIN_SITE && init.defaultOrigin !== undefined) {
      throw new InvalidArgumentError(`site name "${DEFAULT_ORIGIN_SITE}" is taken by --origin`)
    }
    if (site.publisher !== undefined && !/^0x[0-9a-fA-F]{40}$/.test(site.publisher)) {
      throw new InvalidArgumentError(`publisher of site ${site.name} must be an 0x address`)
    }
    seen.add(site.name)
    return { ...site, origin: checkOriginUrl(`origin of site ${site.name}`, site.origin) }
  })
  const defaultOrigin =
    init.defaultOrigin === undefined ? undefined : checkOriginUrl('defaultOrigin', init.defaultOrigin)
  const trackerUrl = init.trackerUrl === undefined ? undefined : checkOriginUrl('trackerUrl', init.trackerUrl)
  if (init.trackerAddress !== undefined && !/^0x[0-9a-fA-F]{40}$/.test(init.trackerAddress))
    throw new InvalidArgumentError('trackerAddress must be an 0x address')
  if (init.tls !== undefined && (init.tls.cert === undefined || init.tls.key === undefined)) {
    throw new InvalidArgumentError('tls needs both cert and key')
  }
  return {
    host: init.host ?? DEFAULT_HOST,
    port,
    dataDir: init.dataDir,
    memoryCacheBytes,
    memoryPolicy,
    diskAdmission,
    fastMiss,
    diskCacheBytes,
    maxObjectBytes,
    egressBytesPerSecond: init.egressBytesPerSecond,
    sites,
    defaultOrigin,
    defaultOriginPublisher: init.defaultOriginPublisher,
    trackerUrl,
    trackerAddress: init.trackerAddress,
    epochSeconds: positiveInt('epochSeconds', init.epochSeconds, DEFAULT_EPOCH_SECONDS),
    maxSessions: positiveInt('maxSessions', init.maxSessions, DEFAULT_MAX_SESSIONS),
    tls: init.tls,
    maxHeaderBytes: positiveInt('maxHeaderBytes', init.maxHeaderBytes, DEFAULT_MAX_HEADER_BYTES, 1024),
    headersTimeoutMs: positiveInt('headersTimeoutMs', init.headersTimeoutMs, DEFAULT_HEADERS_TIMEOUT_MS),
    requestTimeoutMs: positiveInt('requestTimeoutMs', init.requestTimeoutMs, DEFAULT_REQUEST_TIMEOUT_MS),
    keepAliveTimeoutMs: positiveInt(
      'keepAliveTimeoutMs',
      init.keepAliveTimeoutMs,
      DEFAULT_KEEP_ALIVE_TIMEOUT_MS,
    ),
    sendTimeoutMs: positiveInt('sendTimeoutMs', init.sendTimeoutMs, DEFAULT_SEND_TIMEOUT_MS),
    upstreamConnectTimeoutMs: positiveInt(
      'upstreamConnectTimeoutMs',
      init.upstreamConnectTimeoutMs,
      DEFAULT_UPSTREAM_CONNECT_TIMEOUT_MS,
    ),
    upstreamHeadersTimeoutMs: positiveInt(
      'upstreamHeadersTimeoutMs',
      init.upstreamHeadersTimeoutMs,
      DEFAULT_UPSTREAM_HEADERS_TIMEOUT_MS,
    ),
    upstreamBodyTimeoutMs: positiveInt(
      'upstreamBodyTimeoutMs',
      init.upstreamBodyTimeoutMs,
      DEFAULT_UPSTREAM_BODY_TIMEOUT_MS,
    ),
    shutdownGraceMs: positiveInt('shutdownGraceMs', init.shutdownGraceMs, DEFAULT_SHUTDOWN_GRACE_MS, 0),
    purgeMaxAgeSeconds: positiveInt(
      'purgeMaxAgeSeconds',
      init.purgeMaxAgeSeconds,
      DEFAULT_PURGE_MAX_AGE_SECONDS,
    ),
    viaName: init.viaName ?? 'shoal',
    acceptPushes: checkPushes(init.acceptPushes),
    ...(init.relay !== undefined ? { relay: resolveRelayOptions(init.relay) } : {}),
    mesh: init.mesh ?? {},
  }
}

function checkPushes(value: EdgeNodeOptions['acceptPushes']): 'manifests' | 'any' {
  if (value === undefined) return 'manifests'
  if (value !== 'manifests' && value !== 'any')
    throw new InvalidArgumentError('acceptPushes must be "manifests" or "any"')
  return value
}
