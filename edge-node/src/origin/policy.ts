/**
 * Cache policy of stored origin responses: `http-cache-semantics` (shared-cache mode)
 * decides what may be stored and keeps the policy object that is stored beside each
 * body; a small subclass corrects where that library departs from RFC 9111 or from
 * what the best reverse proxies do (see `docs/origin-cache.md`):
 *
 * - `Cache-Control` is parsed with quoted strings and case-insensitive names;
 * - heuristic freshness (10% of the time since `Last-Modified`) applies only to
 *   heuristically cacheable statuses or `public` responses, and is capped;
 * - `immutable` gives no freshness of its own (RFC 8246);
 * - `proxy-revalidate` forbids serving stale (like `must-revalidate`) instead of
 *   making a fresh response stale at once;
 * - freshness is evaluated here (`evaluate`): `must-revalidate` only matters once
 *   stale, and `stale-while-revalidate`/`stale-if-error` never apply under it.
 */
import CachePolicy from 'http-cache-semantics'
import { type Directives, deltaSeconds, has, parseCacheControl } from './cache-control.ts'
import { appendVia, parseVary } from './headers.ts'

/** Statuses a cache may give heuristic freshness (RFC 9110 §15.1). */
export const HEURISTICALLY_CACHEABLE = new Set([200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501])

/** The parts of `http-cache-semantics` 4.x the subclass reads and corrects. */
interface PolicyInternals {
  _rescc: Directives
  _reqcc: Directives
  _resHeaders: Record<string, string>
  _status: number
}

export interface PolicyOptions {
  now: () => number
  heuristicFraction: number
  heuristicMaxSeconds: number
}

export type PolicyHeaders = Record<string, string>

/** A policy class bound to a clock and to the heuristic settings of one origin cache. */
export type PolicyClass = {
  new (
    req: { url?: string; method?: string; headers: PolicyHeaders },
    res: { status: number; headers: PolicyHeaders },
  ): CachePolicy
  fromObject(obj: CachePolicy.CachePolicyObject): CachePolicy
}

/**
 * Builds the policy class for one origin cache. The clock is injected (tests run on
 * virtual time) and every policy made from a stored one (`fromObject`) uses it too.
 */
export function createPolicyClass(options: PolicyOptions): PolicyClass {
  const { now, heuristicFraction, heuristicMaxSeconds } = options
  const libraryOptions = { shared: true, cacheHeuristic: heuristicFraction, immutableMinTimeToLive: 0 }

  class OriginPolicy extends CachePolicy {
    constructor(
      req: CachePolicy.HttpRequest | undefined,
      res: CachePolicy.HttpResponse | undefined,
      opts?: CachePolicy.Options,
    ) {
      super(req as CachePolicy.HttpRequest, res as CachePolicy.HttpResponse, opts ?? libraryOptions)
      if (req === undefined || res === undefined) return // fromObject
      const self = this as unknown as PolicyInternals
      const resHeaders = res.headers as PolicyHeaders
      const rescc = { ...parseCacheControl(resHeaders['cache-control']) }
      if (resHeaders['cache-control'] === undefined && /no-cache/i.test(resHeaders.pragma ?? '')) {
        rescc['no-cache'] = true
      }
      self._rescc = rescc
      self._reqcc = { ...parseCacheControl((req.headers as PolicyHeaders)['cache-control']) }
    }

    now(): number {
      return now()
    }

    override maxAge(): number {
      const self = this as unknown as PolicyInternals
      const cc = self._rescc
      if (!this.storable() || has(cc, 'no-cache')) return 0
      const sMaxAge = deltaSeconds(cc, 's-maxage')
      if (sMaxAge !== undefined) return sMaxAge
      const maxAge = deltaSeconds(cc, 'max-age')
      if (maxAge !== undefined) return maxAge
      const date = this.date()
      const expires = self._resHeaders.expires
      if (expires !== undefined) {
        const at = Date.parse(expires)
        // An invalid date, "0" included, means already expired (RFC 9111 §5.3).
        if (Number.isNaN(at) || at <= date) return 0
        return (at - date) / 1000
      }
      if (!HEURISTICALLY_CACHEABLE.has(self._status) && !has(cc, 'public')) return 0
      const lastModified = Date.parse(self._resHeaders['last-modified'] ?? '')
      if (!Number.isFinite(lastModified) || lastModified >= date) return 0
      return Math.min(((date - lastModified) / 1000) * heuristicFraction, heuristicMaxSeconds)
    }
  }
  return OriginPolicy as unknown as PolicyClass
}

/** What is stored beside an origin response body. */
export interface ResponseMeta {
  v: 1
  kind: 'response'
  /** `CachePolicy.toObject()`: status, end-to-end headers, time of receipt. */
  policy: CachePolicy.CachePolicyObject
}

/** Stored at an object's base key when its responses vary: which request fields select a variant. */
export interface VaryMeta {
  v: 1
  kind: 'vary'
  /** Lowercased, sorted field names. */
  fields: string[]
  /** Random per marker, part of every variant key: a new marker orphans the old variants. */
  gen: string
}

/** A stored response made ready to evaluate and serve; built once per stored metadata object. */
export interface Prepared {
  policy: CachePolicy
  status: number
  /** End-to-end headers as stored (lowercase names). */
  headers: Readonly<PolicyHeaders>
  /** Freshness lifetime in seconds. */
  lifetime: number
  /** `Age` the response had when it was received, in seconds. */
  initialAge: number
  /** When it was received (ms, the cache's clock). */
  responseTime: number
  /** When it turns stale (ms, the cache's clock). */
  freshUntil: number
  /** `no-cache` (or `Pragma: no-cache` without `Cache-Control`): always revalidate. */
  noCache: boolean
  /** `must-revalidate` or `proxy-revalidate`: never served stale. */
  mustRevalidate: boolean
  /**
   * `s-maxage`, which implies `proxy-revalidate` (RFC 9111 §5.2.2.10): not served stale
   * because a client allows it (`max-stale`); the origin's own `stale-while-revalidate`
   * and `stale-if-error` still apply, as every CDN reads `s-maxage=1, stale-while-revalidate`.
   */
  sharedMaxAge: boolean
  staleWhileRevalidate: number
  staleIfError: number
  /** `public`, `s-maxage` or `must-revalidate`: may answer requests carrying `Authorization`. */
  sharedWithAuth: boolean
  etag: string | undefined
  lastModified: number | undefined
  /** Headers served on a hit, without `Age` and `X-Cache`. */
  serveHeaders: Readonly<Record<string, string>>
  /** Vary field names of the response (empty when it does not vary). */
  vary: string[]
  /**
   * The fast path's answer (head, body), rebuilt when the age in seconds changes: the
   * same object is returned to every hit of that second.
   */
  fastHead?: { age: number; hit: { readonly head: Buffer; readonly body: Buffer; readonly date: false } }
}

/** True when `meta` looks like a stored response of this version. */
export function isResponseMeta(meta: unknown): meta is ResponseMeta {
  const m = meta as Partial<ResponseMeta> | null
  return (
    typeof m === 'object' &&
    m !== null &&
    m.v === 1 &&
    m.kind === 'response' &&
    typeof m.policy === 'object' &&
    m.policy !== null &&
    typeof m.policy.resh === 'object' &&
    typeof m.policy.st === 'number' &&
    typeof m.policy.t === 'number'
  )
}

/** True when `meta` is a vary marker of this version. */
export function isVaryMeta(meta: unknown): meta is VaryMeta {
  const m = meta as Partial<VaryMeta> | null
  return (
    typeof m === 'object' &&
    m !== null &&
    m.v === 1 &&
    m.kind === 'vary' &&
    Array.isArray(m.fields) &&
    m.fields.every((f) => typeof f === 'string') &&
    typeof m.gen === 'string'
  )
}

/** Builds the serving view of a policy. */
export function preparePolicy(policy: CachePolicy, viaName: string): Prepared {
  const obj = policy.toObject()
  const headers = obj.resh as PolicyHeaders
  const cc = parseCacheControl(headers['cache-control'])
  const pragmaNoCache = headers['cache-control'] === undefined && /no-cache/i.test(headers.pragma ?? '')
  const lifetime = policy.maxAge()
  const initialAge = deltaSeconds({ age: headers.age ?? '0' }, 'age') ?? 0
  const responseTime = obj.t
  const serveHeaders: Record<string, string> = {}
  for (const [name, value] of Object.entries(headers)) {
    if (name === 'age' || name === 'via') continue
    serveHeaders[name] = value
  }
  serveHeaders.via = appendVia(headers.via, viaName)
  if (obj.st === 200 && serveHeaders['accept-ranges'] === undefined) serveHeaders['accept-ranges'] = 'bytes'
  const lastModified = Date.parse(headers['last-modified'] ?? '')
  return {
    policy,
    status: obj.st,
    headers,
    lifetime,
    initialAge,
    responseTime,
    freshUntil: responseTime + (lifetime - initialAge) * 1000,
    noCache: has(cc, 'no-cache') || pragmaNoCache,
    mustRevalidate: has(cc, 'must-revalidate') || has(cc, 'proxy-revalidate'),
    sharedMaxAge: has(cc, 's-maxage'),
    staleWhileRevalidate: deltaSeconds(cc, 'stale-while-revalidate') ?? 0,
    staleIfError: deltaSeconds(cc, 'stale-if-error') ?? 0,
    sharedWithAuth: has(cc, 'public') || has(cc, 's-maxage') || has(cc, 'must-revalidate'),
    etag: headers.etag,
    lastModified: Number.isFinite(lastModified) ? lastModified : undefined,
    serveHeaders,
    vary: parseVary(headers.vary),
  }
}

/** Age of a prepared response at `now`, in seconds (RFC 9111 §4.2.3, without trusting `Date`). */
export function ageAt(prepared: Prepared, now: number): number {
  return prepared.initialAge + Math.max(0, now - prepared.responseTime) / 1000
}

/** The request's cache directives that matter to the evaluation. */
export interface RequestDirectives {
  noCache: boolean
  noStore: boolean
  onlyIfCached: boolean
  maxAge?: number
  minFresh?: number
  /** `Infinity` for a bare `max-stale`. */
  maxStale?: number
  staleIfError?: number
}

/** Reads the request's `Cache-Control` (or `Pragma: no-cache` when there is none). */
export function requestDirectives(cacheControl: string | undefined, pragma: string | undefined) {
  const cc = parseCacheControl(cacheControl)
  const maxStale = cc['max-stale']
  const out: RequestDirectives = {
    noCache: has(cc, 'no-cache') || (cacheControl === undefined && /no-cache/i.test(pragma ?? '')),
    noStore: has(cc, 'no-store'),
    onlyIfCached: has(cc, 'only-if-cached'),
  }
  const maxAge = deltaSeconds(cc, 'max-age')
  if (maxAge !== undefined) out.maxAge = maxAge
  const minFresh = deltaSeconds(cc, 'min-fresh')
  if (minFresh !== undefined) out.minFresh = minFresh
  if (maxStale !== undefined)
    out.maxStale = maxStale === true ? Number.POSITIVE_INFINITY : deltaSeconds(cc, 'max-stale')
  const staleIfError = deltaSeconds(cc, 'stale-if-error')
  if (staleIfError !== undefined) out.staleIfError = staleIfError
  return out
}

/**
 * What to do with a stored response for a request (RFC 9111 §4, RFC 5861):
 * - `fresh`: serve it;
 * - `stale`: serve it stale, the client allows it (`max-stale`);
 * - `stale-while-revalidate`: serve it stale and refresh it in the background;
 * - `revalidate`: ask the origin first.
 */
export type Freshness = 'fresh' | 'stale' | 'stale-while-revalidate' | 'revalidate'

export function evaluate(prepared: Prepared, request: RequestDirectives, now: number): Freshness {
  const age = ageAt(prepared, now)
  const { lifetime } = prepared
  if (request.noCache || prepared.noCache) return 'revalidate'
  if (request.maxAge !== undefined && age > request.maxAge) return 'revalidate'
  if (request.minFresh !== undefined && lifetime - age < request.minFresh) return 'revalidate'
  if (age < lifetime) return 'fresh'
  if (prepared.mustRevalidate) return 'revalidate'
  const staleness = age - lifetime
  if (request.maxStale !== undefined && !prepared.sharedMaxAge && staleness <= request.maxStale)
    return 'stale'
  if (staleness < prepared.staleWhileRevalidate) return 'stale-while-revalidate'
  return 'revalidate'
}

/** True when a stored response may be served because the origin failed (`stale-if-error`). */
export function staleIfErrorAllows(prepared: Prepared, request: RequestDirectives, now: number): boolean {
  if (prepared.mustRevalidate || prepared.noCache) return false
  const staleness = ageAt(prepared, now) - prepared.lifetime
  const window = Math.max(prepared.staleIfError, request.staleIfError ?? 0)
  return window > 0 && staleness <= window
}
