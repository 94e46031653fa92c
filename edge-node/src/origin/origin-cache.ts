/**
 * The edge node as a shared HTTP cache in front of an origin (RFC 9111, RFC 9110,
 * RFC 5861). See `docs/origin-cache.md` for every rule and the choices made.
 */
import { randomBytes } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { STATUS_CODES, validateHeaderName, validateHeaderValue } from 'node:http'
import { performance } from 'node:perf_hooks'
import type { Readable } from 'node:stream'
import {
  InvalidArgumentError,
  MethodNotAllowedError,
  RangeNotSatisfiableError,
  UpstreamError,
  UpstreamTimeoutError,
} from '@shoal/protocol'
import type { Logger } from 'pino'
import { contentRange, parseRange, unsatisfiedRange } from '../http/range.ts'
import { sendError } from '../http/respond.ts'
import type { EdgeMetrics } from '../metrics.ts'
import type { ObjectStore, ObjectWriter, StoreEntry } from '../store/index.ts'
import type { UpstreamRequest, UpstreamResponse } from '../upstream/http-upstream.ts'
import { has, parseCacheControl } from './cache-control.ts'
import { type ClientConditionals, ifRangeAllows, notModified } from './conditional.ts'
import {
  DEFAULT_COLLAPSE_TIMEOUT_MS,
  DEFAULT_DETACHED_FILL_MAX_BYTES,
  DEFAULT_HEURISTIC_FRACTION,
  DEFAULT_HEURISTIC_MAX_SECONDS,
  DEFAULT_VIA_NAME,
} from './constants.ts'
import { createFillRegistry, type Fill } from './fills.ts'
import {
  appendVia,
  endToEndResponseHeaders,
  forwardRequestHeaders,
  headerValue,
  normalizeAcceptEncoding,
  normalizeVaryValue,
  parseVary,
} from './headers.ts'
import { baseKey, isVariantOf, purgeMatcher, variantKey } from './keys.ts'
import {
  ageAt,
  createPolicyClass,
  evaluate,
  isResponseMeta,
  isVaryMeta,
  type PolicyHeaders,
  type Prepared,
  preparePolicy,
  type RequestDirectives,
  type ResponseMeta,
  requestDirectives,
  staleIfErrorAllows,
  type VaryMeta,
} from './policy.ts'

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
  upstream: { request(url: string | URL, init: UpstreamRequest): Promise<UpstreamResponse> }
  logger?: OriginLogger
  metrics?: OriginMetrics
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
   * Resolves when no fill is in flight: misses still being written to the store after
   * their client was answered, stale-while-revalidate refreshes, detached fills. For a
   * graceful shutdown, and for tests.
   */
  idle(): Promise<void>
}

type XCache = 'HIT' | 'MISS' | 'STALE' | 'REVALIDATED' | 'BYPASS'

interface ReadRequest {
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
interface Found {
  key: string
  marker?: VaryMeta
  entry?: StoreEntry
  prepared?: Prepared
}

interface Hit extends Found {
  entry: StoreEntry
  prepared: Prepared
}

interface FillJob {
  r: ReadRequest
  /** The client to answer; absent for a background refresh. */
  res: ServerResponse | undefined
  found: Found
  stale: Hit | undefined
  fill: Fill | undefined
}

type ClientMode =
  | { kind: 'none' }
  | { kind: 'done' }
  | { kind: 'full' }
  | { kind: 'slice'; start: number; end: number }

type StoragePlan =
  | { store: false; reason: string }
  | {
      store: true
      policy: InstanceType<ReturnType<typeof createPolicyClass>>
      stored: PolicyHeaders
      vary: string[]
      length: number | undefined
    }

interface PumpResult {
  complete: boolean
  bytes: number
  writerOk: boolean
  error?: unknown
}

const NO_DIRECTIVES: RequestDirectives = Object.freeze({
  noCache: false,
  noStore: false,
  onlyIfCached: false,
})
/** Fields a 304 does not carry over to the stored response (its body is unchanged). */
const NOT_UPDATED_BY_304 = new Set([
  'content-length',
  'content-encoding',
  'content-range',
  'transfer-encoding',
  'set-cookie',
])
const EMPTY = new Uint8Array(0)
const noop = (): void => {}

function positive(name: string, value: number | undefined, fallback: number, allowZero = false): number {
  const v = value ?? fallback
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (!allowZero && v === 0)) {
    throw new InvalidArgumentError(`${name} must be a ${allowZero ? 'non-negative' : 'positive'} number`)
  }
  return v
}

function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : undefined
}

/** Content-Length of a response, when present and well-formed. */
function contentLengthOf(headers: Record<string, string | string[]>): number | undefined {
  const value = headers['content-length']
  if (typeof value !== 'string' || !/^\d+$/.test(value.trim())) return undefined
  const n = Number(value.trim())
  return Number.isSafeInteger(n) ? n : undefined
}

/** Throws `UpstreamError` when the origin sent a field the node cannot forward as is. */
function checkHeaders(headers: Record<string, string | string[]>): void {
  try {
    for (const [name, value] of Object.entries(headers)) {
      validateHeaderName(name)
      if (typeof value === 'string') validateHeaderValue(name, value)
      else for (const item of value) validateHeaderValue(name, item)
    }
  } catch (err) {
    throw new UpstreamError('the origin sent a malformed response header', { cause: err })
  }
}

/** Lets go of a response body: drained when small (the connection is kept), else destroyed. */
function discard(up: UpstreamResponse): void {
  const body = up.body as Readable & { dump?: (opts?: { limit: number }) => Promise<void> }
  if (typeof body.dump === 'function') body.dump({ limit: 64 * 1024 }).catch(noop)
  else body.destroy()
}

/** Resolves when `res` can take more, or is closed. */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done)
      res.off('close', done)
      resolve()
    }
    res.on('drain', done)
    res.on('close', done)
  })
}

/** Headers without the representation's length and range (a 304, a 416). */
function withoutLength(headers: Record<string, string | string[]>): Record<string, string | string[]> {
  const out = { ...headers }
  delete out['content-length']
  delete out['content-range']
  return out
}

function bodyless(status: number): boolean {
  return status === 204 || status === 304 || (status >= 100 && status < 200)
}

/**
 * @example
 * const cache = createOriginCache({ viaName: 'node-7' }, { store, upstream, logger, metrics })
 * server.on('request', (req, res) =>
 *   cache.handle(req, res, { site: 'blog', origin: 'https://blog.example', path: req.url ?? '/' }),
 * )
 */
export function createOriginCache(init: OriginCacheInit, components: OriginCacheComponents): OriginCache {
  if (init == null || typeof init !== 'object')
    throw new InvalidArgumentError('origin cache options are required')
  const { store, upstream, logger, metrics } = components ?? ({} as OriginCacheComponents)
  if (store == null || typeof store.createWriter !== 'function') {
    throw new InvalidArgumentError('the origin cache needs a store')
  }
  if (upstream == null || typeof upstream.request !== 'function') {
    throw new InvalidArgumentError('the origin cache needs an upstream client')
  }
  const viaName = init.viaName ?? DEFAULT_VIA_NAME
  if (typeof viaName !== 'string' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(viaName)) {
    throw new InvalidArgumentError('viaName must be an HTTP token')
  }
  const heuristicFraction = positive(
    'heuristicFraction',
    init.heuristicFraction,
    DEFAULT_HEURISTIC_FRACTION,
    true,
  )
  const heuristicMaxSeconds = positive(
    'heuristicMaxSeconds',
    init.heuristicMaxSeconds,
    DEFAULT_HEURISTIC_MAX_SECONDS,
    true,
  )
  const collapseTimeoutMs = positive(
    'collapseTimeoutMs',
    init.collapseTimeoutMs,
    DEFAULT_COLLAPSE_TIMEOUT_MS,
    true,
  )
  const detachedFillMaxBytes = positive(
    'detachedFillMaxBytes',
    init.detachedFillMaxBytes,
    DEFAULT_DETACHED_FILL_MAX_BYTES,
    true,
  )
  const maxObjectBytes = Math.min(
    positive('maxObjectBytes', init.maxObjectBytes, store.disk.maxObjectBytes),
    store.disk.maxObjectBytes,
  )
  const forwardClientIp = init.forwardClientIp === true
  const honorRequestCacheControl = init.honorRequestCacheControl !== false
  const now = init.now ?? Date.now
  if (typeof now !== 'function') throw new InvalidArgumentError('now must be a function')

  const Policy = createPolicyClass({ now, heuristicFraction, heuristicMaxSeconds })
  const fills = createFillRegistry()
  const running = new Set<Promise<void>>()
  const preparedByMeta = new WeakMap<object, Prepared>()
  const aeMemo = new Map<string, string>()
  const memoryHits = metrics?.cacheHits.labels({ tier: 'memory' })

  const prepare = (meta: ResponseMeta): Prepared | undefined => {
    let p = preparedByMeta.get(meta)
    if (p === undefined) {
      try {
        p = preparePolicy(Policy.fromObject(meta.policy), viaName)
      } catch {
        return undefined
      }
      preparedByMeta.set(meta, p)
    }
    return p
  }

  const acceptEncodingOf = (raw: string | undefined): string => {
    if (raw === undefined) return 'identity'
    let value = aeMemo.get(raw)
    if (value === undefined) {
      value = normalizeAcceptEncoding(raw)
      if (aeMemo.size >= 256) aeMemo.clear()
      aeMemo.set(raw, value)
    }
    return value
  }

  const varyValues = (fields: readonly string[], header: HeaderLookup): string[] =>
    fields.map((field) =>
      field === 'accept-encoding'
        ? acceptEncodingOf(header(field))
        : normalizeVaryValue(field, header(field)),
    )

  const clientIpOf = (req: IncomingMessage): string | undefined =>
    forwardClientIp ? req.socket?.remoteAddress : undefined

  // ---------------------------------------------------------------- lookup

  const withEntry = (key: string, entry: StoreEntry | undefined, marker: VaryMeta | undefined): Found => {
    const found: Found = marker === undefined ? { key } : { key, marker }
    if (entry === undefined || !isResponseMeta(entry.meta)) return found
    const prepared = prepare(entry.meta)
    if (prepared === undefined) return found
    found.entry = entry
    found.prepared = prepared
    return found
  }

  const lookup = async (r: ReadRequest): Promise<Found> => {
    const top = store.memory.get(r.base) ?? (await store.get(r.base))
    if (top === undefined) return { key: r.base }
    if (!isVaryMeta(top.meta)) return withEntry(r.base, top, undefined)
    const marker = top.meta
    const key = variantKey(
      r.base,
      marker.gen,
      marker.fields,
      varyValues(marker.fields, (name) => headerValue(r.req.headers, name)),
    )
    return withEntry(key, store.memory.get(key) ?? (await store.get(key)), marker)
  }

  const isHit = (found: Found): found is Hit => found.entry !== undefined && found.prepared !== undefined

  // ---------------------------------------------------------------- serving from the cache

  /** Answers from a stored response; false when its body vanished before anything was sent. */
  const serveCached = async (
    r: ReadRequest,
    res: ServerResponse,
    hit: Hit,
    xCache: XCache,
  ): Promise<boolean> => {
    const { entry, prepared } = hit
    if (xCache === 'HIT' || xCache === 'STALE') metrics?.cacheHits.inc({ tier: entry.tier })
    const headers: Record<string, string> = {
      ...prepared.serveHeaders,
      age: String(Math.floor(ageAt(prepared, now()))),
      'x-cache': xCache,
    }
    const { status } = prepared
    if (status >= 200 && status < 300 && notModified(r.conditionals, prepared)) {
      res.writeHead(304, withoutLength(headers))
      res.end()
      return true
    }
    let start = 0
    let end = entry.size
    let outStatus = status
    if (status === 200 && r.range !== undefined && ifRangeAllows(r.ifRange, prepared)) {
      const range = parseRange(r.range, entry.size)
      if (range.kind === 'unsatisfiable') {
        sendError(
          res,
          new RangeNotSatisfiableError(`the range is not within the ${entry.size} bytes of the object`),
          { ...withoutLength(headers), 'content-range': unsatisfiedRange(entry.size) } as Record<
            string,
            string
          >,
        )
        return true
      }
      if (range.kind === 'range') {
        outStatus = 206
        start = range.range.start
        end = range.range.end
        headers['content-range'] = contentRange(range.range, entry.size)
      }
    }
    if (!bodyless(outStatus)) headers['content-length'] = String(end - start)
    else delete headers['content-length']
    if (r.method === 'HEAD' || bodyless(outStatus)) {
      res.writeHead(outStatus, headers)
      res.end()
      return true
    }
    if (entry.tier === 'memory') {
      res.writeHead(outStatus, headers)
      res.end(start === 0 && end === entry.size ? entry.body : entry.body.subarray(start, end))
      return true
    }
    let stream: Readable
    try {
      stream = await entry.open({ start, end })
    } catch (err) {
      if (errorCode(err) === 'SHOAL_ERR_NOT_FOUND') return false
      throw err
    }
    res.writeHead(outStatus, headers)
    await pump(stream, res, { kind: 'full' }, undefined, undefined, false)
    return true
  }

  // ---------------------------------------------------------------- streaming

  /**
   * Streams `body` to the client per `mode` and to `writer`, with backpressure from
   * both. Once the client is gone or served, the fill goes on only while what is left
   * to read stays within `detachedFillMaxBytes`.
   */
  const pump = async (
    body: AsyncIterable<Buffer>,
    res: ServerResponse | undefined,
    mode: ClientMode,
    writer: ObjectWriter | undefined,
    length: number | undefined,
    countUpstream: boolean,
  ): Promise<PumpResult> => {
    let offset = 0
    let writerOk = writer !== undefined
    let clientDone = res === undefined || mode.kind === 'none' || mode.kind === 'done'
    let clientGone = false
    let detachedAt: number | undefined = clientDone ? 0 : undefined
    const onClose = (): void => {
      if (res !== undefined && !res.writableFinished) clientGone = true
    }
    if (res !== undefined && !clientDone) res.on('close', onClose)
    const mayGoOn = (): boolean => {
      if (!writerOk) return false
      if (length !== undefined) return length - offset <= detachedFillMaxBytes
      return offset - (detachedAt ?? offset) <= detachedFillMaxBytes
    }
    const stop = async (): Promise<void> => {
      if (writer !== undefined && writerOk) {
        writerOk = false
        await writer.abort(new UpstreamError('the fill was abandoned'))
      }
    }
    try {
      if (clientDone && !mayGoOn()) {
        await stop()
        return { complete: false, bytes: 0, writerOk: false }
      }
      for await (const chunk of body) {
        if (countUpstream) metrics?.upstreamBytes.inc({ upstream: 'origin' }, chunk.byteLength)
        const writing = writerOk && writer !== undefined ? writer.write(chunk) : undefined
        if (!clientDone && !clientGone && res !== undefined) {
          let piece: Buffer | undefined = chunk
          if (mode.kind === 'slice') {
            const from = Math.max(mode.start - offset, 0)
            const to = Math.min(mode.end - offset, chunk.byteLength)
            piece = to > from ? chunk.subarray(from, to) : undefined
          }
          if (piece !== undefined && !res.write(piece)) await drained(res)
          if (mode.kind === 'slice' && offset + chunk.byteLength >= mode.end) {
            res.end()
            clientDone = true
          }
        }
        if (writing !== undefined) {
          try {
            await writing
          } catch (err) {
            logger?.debug({ code: errorCode(err) }, 'cache write stopped')
            writerOk = false
            await writer?.abort(err)
          }
        }
        offset += chunk.byteLength
        if (clientDone || clientGone) {
          detachedAt ??= offset
          if (!mayGoOn()) {
            await stop()
            return { complete: false, bytes: offset, writerOk: false }
          }
        }
      }
    } catch (err) {
      if (res !== undefined && !clientDone && !res.destroyed) res.destroy()
      return { complete: false, bytes: offset, writerOk, error: err }
    } finally {
      res?.off('close', onClose)
    }
    if (res !== undefined && !clientDone && !clientGone) res.end()
    return { complete: true, bytes: offset, writerOk }
  }

  // ---------------------------------------------------------------- filling

  const policyRequest = (r: ReadRequest) => {
    const headers: PolicyHeaders = { host: new URL(r.target.origin).host }
    const cc = headerValue(r.req.headers, 'cache-control')
    if (cc !== undefined && honorRequestCacheControl) headers['cache-control'] = cc
    if (r.auth) headers.authorization = 'present'
    return { url: r.target.path, method: 'GET', headers }
  }

  const storagePlan = (
    r: ReadRequest,
    status: number,
    received: Record<string, string | string[]>,
  ): StoragePlan => {
    if (r.directives.noStore) return { store: false, reason: 'request no-store' }
    const cc = parseCacheControl(headerValue(received, 'cache-control'))
    if (received['set-cookie'] !== undefined && !has(cc, 'public'))
      return { store: false, reason: 'set-cookie' }
    const vary = parseVary(headerValue(received, 'vary'))
    if (vary[0] === '*') return { store: false, reason: 'vary *' }
    const length = contentLengthOf(received)
    if (length !== undefined && length > maxObjectBytes) return { store: false, reason: 'too large' }
    const stored: PolicyHeaders = {}
    for (const [name, value] of Object.entries(received)) {
      if (name !== 'set-cookie' && typeof value === 'string') stored[name] = value
    }
    if (stored.date === undefined) stored.date = new Date(now()).toUTCString()
    const policy = new Policy(policyRequest(r), { status, headers: stored })
    if (!policy.storable()) return { store: false, reason: 'not storable' }
    const p = preparePolicy(policy, viaName)
    if (
      p.lifetime <= 0 &&
      p.etag === undefined &&
      p.lastModified === undefined &&
      p.staleIfError === 0 &&
      p.staleWhileRevalidate === 0
    ) {
      return { store: false, reason: 'neither fresh nor revalidatable' }
    }
    return { store: true, policy, stored, vary, length }
  }

  /** A compressed response without `Vary: Accept-Encoding` is treated as if it had it. */
  const fixCompressionVary = (received: Record<string, string | string[]>): void => {
    const encoding = headerValue(received, 'content-encoding')?.trim().toLowerCase()
    if (encoding === undefined || encoding === '' || encoding === 'identity') return
    const vary = parseVary(headerValue(received, 'vary'))
    if (vary.includes('accept-encoding') || vary[0] === '*') return
    const current = headerValue(received, 'vary')
    received.vary =
      current === undefined || current.trim() === '' ? 'Accept-Encoding' : `${current}, Accept-Encoding`
  }

  const writeMarker = async (base: string, marker: VaryMeta, known: VaryMeta | undefined): Promise<void> => {
    if (known !== undefined && known.gen === marker.gen) return
    await store.put(base, marker, EMPTY)
  }

  const sameFields = (a: readonly string[], b: readonly string[]): boolean =>
    a.length === b.length && a.every((field, i) => field === b[i])

  /** After a 304: the stored headers updated from it, the body kept (RFC 9111 §4.3.4). */
  const revalidated = async (job: FillJob, stale: Hit, received: Record<string, string | string[]>) => {
    const { r, res, fill } = job
    const newTag = headerValue(received, 'etag')
    if (
      newTag !== undefined &&
      stale.prepared.etag !== undefined &&
      newTag.replace(/^W\//, '') !== stale.prepared.etag.replace(/^W\//, '')
    ) {
      // The 304 is about another representation: it must not update this one.
      await store.delete(stale.key).catch(noop)
      return fetchAndFill({ ...job, stale: undefined })
    }
    const merged: PolicyHeaders = {}
    for (const [name, value] of Object.entries(stale.prepared.headers))
      if (name !== 'age') merged[name] = value
    for (const [name, value] of Object.entries(received)) {
      if (!NOT_UPDATED_BY_304.has(name) && typeof value === 'string') merged[name] = value
    }
    if (received.date === undefined) merged.date = new Date(now()).toUTCString()
    const policy = new Policy(policyRequest(r), { status: stale.prepared.status, headers: merged })
    const prepared = preparePolicy(policy, viaName)
    let outcome: 'stored' | 'not-stored' = 'not-stored'
    if (policy.storable() && !r.directives.noStore && fill?.invalidated !== true) {
      const meta: ResponseMeta = { v: 1, kind: 'response', policy: policy.toObject() }
      try {
        if (await store.updateMeta(stale.key, meta)) outcome = 'stored'
      } catch (err) {
        logger?.warn({ site: r.target.site, code: errorCode(err) }, 'cache metadata update failed')
      }
    } else {
      await store.delete(stale.key).catch(noop)
    }
    fill?.finish({ kind: outcome })
    if (res === undefined) return
    if (!(await serveCached(r, res, { ...stale, prepared }, 'REVALIDATED'))) {
      return fetchAndFill({ ...job, stale: undefined, fill: undefined })
    }
  }

  /** The client's part of a fetched response, or a decision to forward its range instead. */
  const clientMode = (
    r: ReadRequest,
    res: ServerResponse | undefined,
    status: number,
    received: Record<string, string | string[]>,
    plan: StoragePlan,
  ): ClientMode | { kind: 'pass-range' } | { kind: '304' } | { kind: '416'; length: number } => {
    if (res === undefined) return { kind: 'none' }
    if (r.method === 'HEAD') return { kind: 'done' }
    const lastModified = Date.parse(headerValue(received, 'last-modified') ?? '')
    const validators = {
      etag: headerValue(received, 'etag'),
      lastModified: Number.isFinite(lastModified) ? lastModified : undefined,
    }
    if (status >= 200 && status < 300 && notModified(r.conditionals, validators)) return { kind: '304' }
    if (status !== 200 || r.range === undefined || !ifRangeAllows(r.ifRange, validators))
      return { kind: 'full' }
    const length = contentLengthOf(received)
    if (length === undefined) return { kind: 'full' }
    const range = parseRange(r.range, length)
    if (range.kind === 'none') return { kind: 'full' }
    if (!plan.store) return { kind: 'pass-range' }
    if (range.kind === 'unsatisfiable') return { kind: '416', length }
    const { start, end } = range.range
    if (start > detachedFillMaxBytes || length - end > detachedFillMaxBytes) return { kind: 'pass-range' }
    return { kind: 'slice', start, end }
  }

  /** One upstream request for a miss or a revalidation, and what follows from its answer. */
  const fetchAndFill = async (job: FillJob): Promise<void> => {
    const { r, res, stale, fill } = job
    const headers = forwardRequestHeaders(r.req.headers, {
      viaName,
      fill: true,
      acceptEncoding: r.acceptEncoding,
      clientIp: clientIpOf(r.req),
    })
    if (stale !== undefined) {
      if (stale.prepared.etag !== undefined) headers['if-none-match'] = stale.prepared.etag
      const lastModified = stale.prepared.headers['last-modified']
      if (lastModified !== undefined) headers['if-modified-since'] = lastModified
    }
    metrics?.cacheMisses.inc({ kind: stale === undefined ? 'origin' : 'origin-revalidate' })
    const started = performance.now()
    let up: UpstreamResponse
    let received: Record<string, string | string[]>
    try {
      up = await upstream.request(r.url, { method: 'GET', headers })
      received = endToEndResponseHeaders(up.headers)
      try {
        checkHeaders(received)
      } catch (err) {
        up.body.destroy()
        throw err
      }
    } catch (err) {
      fill?.finish({ kind: 'failed', error: err })
      logger?.warn({ site: r.target.site, code: errorCode(err) }, 'origin request failed')
      if (res === undefined) return
      if (stale !== undefined && staleIfErrorAllows(stale.prepared, r.directives, now())) {
        if (await serveCached(r, res, stale, 'STALE')) return
      }
      throw err
    }
    metrics?.upstreamSeconds.observe({ upstream: 'origin' }, (performance.now() - started) / 1000)
    const { status } = up
    logger?.debug({ site: r.target.site, status, revalidation: stale !== undefined }, 'origin answered')

    if (status === 304 && stale !== undefined) {
      discard(up)
      fill?.storing(true)
      return revalidated(job, stale, received)
    }
    if (status >= 500 && stale !== undefined && staleIfErrorAllows(stale.prepared, r.directives, now())) {
      discard(up)
      fill?.finish({ kind: 'failed', error: new UpstreamError(`the origin answered ${status}`) })
      if (res !== undefined && (await serveCached(r, res, stale, 'STALE'))) return
      if (res !== undefined) throw new UpstreamError(`the origin answered ${status}`)
      return
    }

    fixCompressionVary(received)
    const plan = storagePlan(r, status, received)
    // A stored response superseded by one that is not stored goes (a storable one replaces it below).
    if (stale !== undefined && status < 500 && !plan.store) await store.delete(stale.key).catch(noop)
    const mode = clientMode(r, res, status, received, plan)
    if (mode.kind === 'pass-range') {
      discard(up)
      fill?.finish({ kind: 'not-stored' })
      if (res !== undefined) await passThrough(r.req, res, r.target, 'GET', 'MISS', false)
      return
    }
    fill?.storing(plan.store)
    if (!plan.store) logger?.debug({ site: r.target.site, reason: plan.reason }, 'response not stored')

    // The client's head first: what it may not get (a malformed header) is not stored either.
    const clientHeaders: Record<string, string | string[]> = {
      ...received,
      via: appendVia(received.via, viaName),
      'x-cache': 'MISS',
    }
    let pumpMode: ClientMode
    if (res === undefined || mode.kind === 'none') {
      pumpMode = { kind: 'none' }
    } else if (mode.kind === '304') {
      res.writeHead(304, withoutLength(clientHeaders))
      res.end()
      pumpMode = { kind: 'done' }
    } else if (mode.kind === '416') {
      sendError(
        res,
        new RangeNotSatisfiableError(`the range is not within the ${mode.length} bytes of the object`),
        {
          ...withoutLength(clientHeaders),
          'content-range': unsatisfiedRange(mode.length),
        } as Record<string, string>,
      )
      pumpMode = { kind: 'done' }
    } else if (mode.kind === 'slice') {
      const length = contentLengthOf(received) as number
      res.writeHead(206, {
        ...clientHeaders,
        'content-range': contentRange(mode, length),
        'content-length': String(mode.end - mode.start),
      })
      pumpMode = mode
    } else {
      res.writeHead(status, clientHeaders)
      if (mode.kind === 'done') res.end()
      pumpMode = mode
    }
    if (bodyless(status) && pumpMode.kind === 'full' && res !== undefined) {
      res.end()
      pumpMode = { kind: 'done' }
    }

    if (!plan.store) {
      fill?.finish({ kind: 'not-stored' })
      if (pumpMode.kind === 'full' || pumpMode.kind === 'slice') {
        await pump(up.body, res, pumpMode, undefined, undefined, true)
      } else {
        discard(up)
      }
      return
    }

    let writeKey = r.base
    let marker: VaryMeta | undefined
    if (plan.vary.length > 0) {
      const known = job.found.marker
      const gen =
        known !== undefined && sameFields(known.fields, plan.vary)
          ? known.gen
          : randomBytes(9).toString('base64url')
      marker = { v: 1, kind: 'vary', fields: plan.vary, gen }
      writeKey = variantKey(
        r.base,
        gen,
        plan.vary,
        varyValues(plan.vary, (name) => headerValue(r.req.headers, name)),
      )
    }
    let writer: ObjectWriter | undefined
    try {
      const meta: ResponseMeta = { v: 1, kind: 'response', policy: plan.policy.toObject() }
      writer = store.createWriter(
        writeKey,
        meta,
        plan.length === undefined ? {} : { expectedSize: plan.length },
      )
    } catch (err) {
      logger?.debug({ code: errorCode(err) }, 'cache writer refused')
    }
    const result = await pump(up.body, res, pumpMode, writer, plan.length, true)
    if (writer === undefined || !result.complete || !result.writerOk || fill?.invalidated === true) {
      if (writer !== undefined)
        await writer.abort(result.error ?? new UpstreamError('the fill did not complete'))
      if (result.error !== undefined) {
        logger?.warn({ site: r.target.site, code: errorCode(result.error) }, 'origin body failed')
      }
      fill?.finish({ kind: 'not-stored' })
      return
    }
    if (!bodyless(status)) plan.stored['content-length'] = String(result.bytes)
    try {
      if (marker !== undefined) await writeMarker(r.base, marker, job.found.marker)
      await writer.commit({ meta: { v: 1, kind: 'response', policy: plan.policy.toObject() } })
      fill?.finish({ kind: 'stored' })
    } catch (err) {
      logger?.warn({ site: r.target.site, code: errorCode(err) }, 'cache commit failed')
      await writer.abort(err)
      fill?.finish({ kind: 'not-stored' })
    }
  }

  /** Runs a fill; every one in flight is tracked so that `idle()` can wait for it. */
  const lead = (job: FillJob): Promise<void> => {
    const task = (async () => {
      try {
        await fetchAndFill(job)
      } catch (err) {
        job.fill?.finish({ kind: 'failed', error: err })
        throw err
      } finally {
        job.fill?.finish({ kind: 'not-stored' })
      }
    })()
    const tracked = task.then(noop, noop)
    running.add(tracked)
    void tracked.finally(() => running.delete(tracked))
    return task
  }

  const refreshInBackground = (r: ReadRequest, hit: Hit): void => {
    if (fills.has(hit.key)) return
    const fill = fills.start(hit.key)
    void lead({ r, res: undefined, found: hit, stale: hit, fill }).catch((err: unknown) => {
      logger?.debug({ site: r.target.site, code: errorCode(err) }, 'background refresh failed')
    })
  }

  // ---------------------------------------------------------------- pass-through

  /** Keys of the target and of same-origin `Location`/`Content-Location` (RFC 9111 §4.4). */
  const invalidate = async (target: OriginTarget, received: Record<string, string | string[]>) => {
    const keys = new Set([baseKey(target.site, target.path)])
    const origin = new URL(target.origin)
    const basePath = origin.pathname.replace(/\/$/, '')
    for (const name of ['location', 'content-location']) {
      const value = headerValue(received, name)
      if (value === undefined) continue
      let url: URL
      try {
        url = new URL(value, `${target.origin}${target.path}`)
      } catch {
        continue
      }
      if (url.origin !== origin.origin || !url.pathname.startsWith(`${basePath}/`)) continue
      keys.add(baseKey(target.site, `${url.pathname.slice(basePath.length)}${url.search}`))
    }
    for (const key of keys) {
      for (const [fillKey, fill] of fills.entries()) {
        if (fillKey === key || isVariantOf(fillKey, key)) fill.invalidated = true
      }
      // The marker of a varying object goes with it: its variants are unreachable from then on.
      await store.delete(key).catch(noop)
    }
  }

  const passThrough = async (
    req: IncomingMessage,
    res: ServerResponse,
    target: OriginTarget,
    method: string,
    xCache: XCache,
    invalidateAfter: boolean,
  ): Promise<void> => {
    const declared = req.headers['content-length']
    const hasBody =
      method !== 'GET' &&
      method !== 'HEAD' &&
      (declared !== undefined ? declared !== '0' : req.headers['transfer-encoding'] !== undefined)
    const headers = forwardRequestHeaders(req.headers, {
      viaName,
      fill: false,
      hasBody,
      clientIp: clientIpOf(req),
    })
    const controller = new AbortController()
    const onClose = (): void => {
      if (!res.writableFinished) controller.abort()
    }
    res.on('close', onClose)
    try {
      const started = performance.now()
      let up: UpstreamResponse
      try {
        up = await upstream.request(`${target.origin}${target.path}`, {
          method,
          headers,
          body: hasBody ? req : null,
          signal: controller.signal,
        })
      } catch (err) {
        if (controller.signal.aborted) return
        logger?.warn({ site: target.site, code: errorCode(err) }, 'origin request failed')
        throw err
      }
      metrics?.upstreamSeconds.observe({ upstream: 'origin' }, (performance.now() - started) / 1000)
      const received = endToEndResponseHeaders(up.headers)
      try {
        checkHeaders(received)
      } catch (err) {
        up.body.destroy()
        throw err
      }
      if (invalidateAfter && up.status >= 200 && up.status < 400) await invalidate(target, received)
      res.writeHead(up.status, { ...received, via: appendVia(received.via, viaName), 'x-cache': xCache })
      if (method === 'HEAD' || bodyless(up.status)) {
        discard(up)
        res.end()
        return
      }
      await pump(up.body, res, { kind: 'full' }, undefined, undefined, true)
    } finally {
      res.off('close', onClose)
    }
  }

  // ---------------------------------------------------------------- reads

  const readRequest = (req: IncomingMessage, target: OriginTarget, method: 'GET' | 'HEAD') => {
    const h = req.headers
    const r: ReadRequest = {
      req,
      method,
      target,
      url: `${target.origin}${target.path}`,
      base: baseKey(target.site, target.path),
      directives: honorRequestCacheControl
        ? requestDirectives(headerValue(h, 'cache-control'), headerValue(h, 'pragma'))
        : NO_DIRECTIVES,
      conditionals: {
        ifNoneMatch: headerValue(h, 'if-none-match'),
        ifModifiedSince: headerValue(h, 'if-modified-since'),
      },
      range: h.range,
      ifRange: headerValue(h, 'if-range'),
      auth: h.authorization !== undefined,
      acceptEncoding: acceptEncodingOf(headerValue(h, 'accept-encoding')),
    }
    return r
  }

  const read = async (
    req: IncomingMessage,
    res: ServerResponse,
    target: OriginTarget,
    method: 'GET' | 'HEAD',
  ): Promise<void> => {
    // Preconditions the cache does not evaluate go to the origin.
    if (req.headers['if-match'] !== undefined || req.headers['if-unmodified-since'] !== undefined) {
      return passThrough(req, res, target, method, 'BYPASS', false)
    }
    const r = readRequest(req, target, method)
    for (let attempt = 0; attempt < 3; attempt++) {
      const found = await lookup(r)
      const usable = isHit(found) && (!r.auth || found.prepared.sharedWithAuth) ? found : undefined
      if (usable !== undefined) {
        const freshness = evaluate(usable.prepared, r.directives, now())
        if (freshness !== 'revalidate') {
          if (freshness === 'stale-while-revalidate') refreshInBackground(r, usable)
          if (await serveCached(r, res, usable, freshness === 'fresh' ? 'HIT' : 'STALE')) return
          continue
        }
      }
      if (r.directives.onlyIfCached) {
        throw new UpstreamTimeoutError('no usable response in the cache (only-if-cached)')
      }
      const coalesce = !r.auth && !r.directives.noStore
      const inFlight = coalesce ? fills.get(found.key) : undefined
      if (usable === undefined && method === 'HEAD' && (inFlight === undefined || attempt > 0)) {
        metrics?.cacheMisses.inc({ kind: 'origin' })
        return passThrough(req, res, target, 'HEAD', 'MISS', false)
      }
      if (inFlight !== undefined && attempt === 0) {
        const outcome = await fills.follow(inFlight, collapseTimeoutMs)
        if (outcome.kind === 'stored') continue
        if (outcome.kind === 'failed') {
          if (usable !== undefined && staleIfErrorAllows(usable.prepared, r.directives, now())) {
            if (await serveCached(r, res, usable, 'STALE')) return
          }
          throw outcome.error
        }
        if (outcome.kind === 'timeout') {
          metrics?.cacheMisses.inc({ kind: 'origin' })
          return passThrough(req, res, target, method, 'MISS', false)
        }
      }
      const fill = coalesce && !fills.has(found.key) ? fills.start(found.key) : undefined
      return lead({ r, res, found, stale: usable, fill })
    }
    return passThrough(req, res, target, method, 'MISS', false)
  }

  // ---------------------------------------------------------------- fast path

  /** The fast path's head: status line and header lines, without the final empty line. */
  const buildHead = (prepared: Prepared, age: number, size: number): Buffer => {
    const { status } = prepared
    let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n`
    for (const [name, value] of Object.entries(prepared.serveHeaders)) {
      if (name !== 'content-length') head += `${name}: ${value}\r\n`
    }
    head += `age: ${age}\r\nx-cache: HIT\r\ncontent-length: ${size}\r\n`
    return Buffer.from(head, 'latin1')
  }

  return {
    async handle(req, res, target) {
      const method = req.method ?? 'GET'
      try {
        if (typeof target?.path !== 'string' || !target.path.startsWith('/')) {
          throw new InvalidArgumentError('the target path must start with "/"')
        }
        if (method === 'GET' || method === 'HEAD') await read(req, res, target, method)
        else if (method === 'CONNECT' || method === 'TRACE') {
          throw new MethodNotAllowedError(`${method} is not served for origin sites`)
        } else await passThrough(req, res, target, method, 'BYPASS', method !== 'OPTIONS')
      } catch (err) {
        logger?.debug({ site: target?.site, code: errorCode(err) }, 'origin request answered with an error')
        if (!res.destroyed) sendError(res, err, { via: `1.1 ${viaName}` })
      }
    },

    async purge({ site, paths, prefixes }) {
      if (typeof site !== 'string' || !Array.isArray(paths) || !Array.isArray(prefixes)) {
        throw new InvalidArgumentError('purge needs a site, paths and prefixes')
      }
      const matches = purgeMatcher(site, paths, prefixes)
      for (const [key, fill] of fills.entries()) if (matches(key)) fill.invalidated = true
      const keys = store.keys().filter(matches).sort()
      let removed = 0
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i] as string
        // A vary marker sorts right before its variants; it is not a response.
        const next = keys[i + 1]
        const marker = next !== undefined && isVariantOf(next, key)
        if ((await store.delete(key)) && !marker) removed++
      }
      logger?.info({ site, paths: paths.length, prefixes: prefixes.length, removed }, 'origin cache purged')
      return removed
    },

    peekHit(target, header) {
      const base = baseKey(target.site, target.path)
      let entry = store.memory.get(base)
      if (entry === undefined) return undefined
      if (isVaryMeta(entry.meta)) {
        const { fields, gen } = entry.meta
        entry = store.memory.get(variantKey(base, gen, fields, varyValues(fields, header)))
        if (entry === undefined) return undefined
      }
      if (!isResponseMeta(entry.meta)) return undefined
      const prepared = prepare(entry.meta)
      if (prepared === undefined || prepared.noCache || bodyless(prepared.status)) return undefined
      const t = now()
      if (t >= prepared.freshUntil) return undefined
      const age = Math.floor(ageAt(prepared, t))
      let fast = prepared.fastHead
      if (fast === undefined || fast.age !== age) {
        fast = { age, head: buildHead(prepared, age, entry.size) }
        prepared.fastHead = fast
      }
      memoryHits?.inc()
      return { head: fast.head, body: entry.body, date: false }
    },

    async idle() {
      while (running.size > 0) await Promise.all(Array.from(running))
    },
  }
}
