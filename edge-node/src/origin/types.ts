/**
 * Types of the origin cache: its options, components and API, and the context its
 * modules share.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Logger } from 'pino'
import type { FastPathResponse } from '../http/fast-path-stream.ts'
import type { EdgeMetrics } from '../metrics.ts'
import type { ObjectStore, StoreEntry } from '../store/index.ts'
import type { UpstreamRequest, UpstreamResponse } from '../upstream/http-upstream.ts'
import type { ClientConditionals } from './conditional.ts'
import type { FillRegistry } from './fills.ts'
import type { PolicyClass, Prepared, RequestDirectives, ResponseMeta, VaryMeta } from './policy.ts'

export interface OriginCacheInit {
  /** Name in `Via` (`1.1 <viaName>`). Default `shoal`. */
  viaName?: string
  /** Heuristic freshness as a share of the time since `Last-Modified`. Default 0.1. */
  heuristicFraction?: number
  /** Cap of heuristic freshness in seconds. Default one day. */
  heuristicMaxSeconds?: number
  /** How long a request waits for a fill of the same object in flight. Default 5 s. */
  collapseTimeoutMs?: number
  /** Bytes a fill may still read once its client is gone. Default 64 MiB. */
  detachedFillMaxBytes?: number
  /** Largest object cached; larger ones pass through. Default: the disk tier's limit. */
  maxObjectBytes?: number
  /**
   * When a pulled object goes to disk. `second-use` (default): an object that fits in
   * memory is held in memory only, and written to disk (off the
   * response path) when it is asked for again; an object asked for once never touches
   * the disk (nginx `proxy_cache_min_uses 2`, but served from memory meanwhile).
   * `first-use`: every stored object is written to disk as it is pulled.
   */
  diskAdmission?: 'first-use' | 'second-use'
  /** Append the client's address to `X-Forwarded-For` towards the origin. Default false. */
  forwardClientIp?: boolean
  /**
   * Honour the client's `Cache-Control` (`no-cache`, `max-age`, `min-fresh`,
   * `max-stale`, `only-if-cached`, `no-store`) and `Pragma: no-cache`. Default true.
   */
  honorRequestCacheControl?: boolean
  /** Wall clock in ms. Default `Date.now`; tests pass virtual time. */
  now?: () => number
}

/** The parts of the object store the origin cache uses. */
export type OriginStore = Pick<
  ObjectStore,
  'memory' | 'disk' | 'get' | 'put' | 'createWriter' | 'updateMeta' | 'delete' | 'keys'
>

export type OriginLogger = Pick<Logger, 'debug' | 'info' | 'warn'>

export type OriginMetrics = Pick<
  EdgeMetrics,
  'cacheHits' | 'cacheMisses' | 'upstreamSeconds' | 'upstreamBytes'
>

export interface OriginCacheComponents {
  store: OriginStore
  /** The upstream HTTP client (`createHttpUpstream`): no redirects followed, typed errors. */
  upstream: OriginUpstream
  logger?: OriginLogger
  metrics?: OriginMetrics
  /**
   * The client for misses taken on the fast path (`createRawHttpUpstream`: plain `http:`
   * origins, `GET`/`HEAD`). Without it `missResponder` takes none.
   */
  fastUpstream?: OriginUpstream
}

/** What `missResponder` sees of a fast-path request (valid during the call only). */
export interface FastMissRequest {
  readonly method: 'GET' | 'HEAD'
  /** Every header by lowercase name, as node:http's `req.headers` holds them. */
  headers(): Record<string, string>
  readonly remoteAddress: string | undefined
}

/** Where a request goes: a site, its origin and the path to append. */
export interface OriginTarget {
  site: string
  /** Base URL of the origin, no trailing slash. */
  origin: string
  /** Encoded path and query appended to `origin`; starts with `/`. */
  path: string
}

export interface PurgeSpec {
  site: string
  /** Exact decoded paths: every query string and variant of each is removed. */
  paths: readonly string[]
  /** Decoded path prefixes (string prefixes; `/` is the whole site). */
  prefixes: readonly string[]
}

/**
 * A prepared answer to a fresh memory-tier hit, in the shape of the fast path's
 * `PreparedResponse` (`src/http/fast-path-response.ts`).
 */
export interface FastHit {
  /**
   * Status line and header lines, each ending in CRLF, without the empty line that ends
   * the head. Carries the stored `Date`, `Age`, `Via`, `X-Cache: HIT` and a
   * `Content-Length` equal to `body.length`; no `Connection` or other framing field.
   */
  readonly head: Buffer
  readonly body: Buffer
  /** Always false: the head carries the origin's `Date` (RFC 9110 §6.6.1). */
  readonly date: false
}

/** Reads a request header by lowercase name (the fast path's parsed headers). */
export type HeaderLookup = (name: string) => string | undefined

export interface OriginCache {
  /** Answers one request for `target`: from the cache, or through the origin. Never rejects. */
  handle(req: IncomingMessage, res: ServerResponse, target: OriginTarget): Promise<void>
  /** Removes every cached response (all variants) of `paths` and under `prefixes`; returns how many. */
  purge(spec: PurgeSpec): Promise<number>
  /**
   * The fast path's hit: a prepared response when the stored response is in the memory
   * tier, fresh, needs no revalidation and is not a 204; `undefined` otherwise (the
   * request then goes through `handle`). The caller guarantees a plain `GET` or `HEAD`:
   * no `Authorization`, `Cache-Control`, `Pragma`, `Range` or conditional field (the
   * fast path's header allowlist does), and `header` returns the fields a `Vary` may
   * name. Synchronous; allocates nothing when the head of the current second is built.
   */
  peekHit(target: Pick<OriginTarget, 'site' | 'path'>, header: HeaderLookup): FastHit | undefined
  /**
   * The fast path's miss: when `peekHit` found nothing and the request is for an object
   * the cache knows nothing about (nothing stored under its key in memory or on disk, no
   * fill in flight) on an `http:` origin, returns the function that answers it as
   * `handle` would, over `fastUpstream`, on the fast path's streamed response: for a
   * `GET`, the fill is registered at once (later requests coalesce onto it) and is the
   * same fill `handle` runs (same header, storage, `Vary`, admission, metrics and log
   * rules); a `HEAD` is passed through, as `handle` does. `undefined` otherwise:
   * the request then goes through `handle`. Same guarantees asked of the caller as
   * `peekHit`. Synchronous.
   */
  missResponder(target: OriginTarget, req: FastMissRequest): ((res: FastPathResponse) => void) | undefined
  /**
   * Resolves when no fill is in flight: misses still being written to the store after
   * their client was answered, stale-while-revalidate refreshes, detached fills. For a
   * graceful shutdown, and for tests.
   */
  idle(): Promise<void>
}

/** What the origin cache needs of an upstream client. */
export interface OriginUpstream {
  request(url: string | URL, init: UpstreamRequest): Promise<UpstreamResponse>
}

export type XCache = 'HIT' | 'MISS' | 'STALE' | 'REVALIDATED' | 'BYPASS'

export interface ReadRequest {
  req: IncomingMessage
  method: 'GET' | 'HEAD'
  target: OriginTarget
  url: string
  base: string
  directives: RequestDirectives
  conditionals: ClientConditionals
  range: string | undefined
  ifRange: string | undefined
  auth: boolean
  acceptEncoding: string
}

/** What a lookup found: the key a response is (or would be) stored under, and maybe one. */
export interface Found {
  key: string
  marker?: VaryMeta
  entry?: StoreEntry
  prepared?: Prepared
}

export interface Hit extends Found {
  entry: StoreEntry
  prepared: Prepared
}

/** The resolved options and shared parts every module of the origin cache works with. */
export interface OriginContext {
  store: OriginStore
  upstream: OriginUpstream
  logger: OriginLogger | undefined
  metrics: OriginMetrics | undefined
  viaName: string
  now: () => number
  collapseTimeoutMs: number
  detachedFillMaxBytes: number
  maxObjectBytes: number
  /** `diskAdmission` is `second-use`. */
  admitOnReuse: boolean
  forwardClientIp: boolean
  honorRequestCacheControl: boolean
  Policy: PolicyClass
  fills: FillRegistry
  /** The serving view of stored metadata, built once per metadata object. */
  prepare(meta: ResponseMeta): Prepared | undefined
  /** Normalised `Accept-Encoding` (memoised). */
  acceptEncodingOf(raw: string | undefined): string
  /** Normalised values of the fields a `Vary` names. */
  varyValues(fields: readonly string[], header: HeaderLookup): string[]
}
