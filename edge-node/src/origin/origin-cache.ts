/**
 * The edge node as a shared HTTP cache in front of an origin (RFC 9111, RFC 9110,
 * RFC 5861). See `docs/origin-cache.md` for every rule and the choices made.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { STATUS_CODES } from 'node:http'
import { InvalidArgumentError, MethodNotAllowedError, UpstreamTimeoutError } from '@shoal/protocol'
import { sendError } from '../http/respond.ts'
import type { StoreEntry } from '../store/index.ts'
import {
  DEFAULT_COLLAPSE_TIMEOUT_MS,
  DEFAULT_DETACHED_FILL_MAX_BYTES,
  DEFAULT_HEURISTIC_FRACTION,
  DEFAULT_HEURISTIC_MAX_SECONDS,
  DEFAULT_VIA_NAME,
} from './constants.ts'
import { createFiller } from './filler.ts'
import { createFillRegistry } from './fills.ts'
import { headerValue, normalizeAcceptEncoding, normalizeVaryValue } from './headers.ts'
import { baseKey, isVariantOf, purgeMatcher, variantKey } from './keys.ts'
import { createPassThrough } from './pass-through.ts'
import {
  ageAt,
  createPolicyClass,
  evaluate,
  isResponseMeta,
  isVaryMeta,
  type Prepared,
  preparePolicy,
  type RequestDirectives,
  requestDirectives,
  staleIfErrorAllows,
  type VaryMeta,
} from './policy.ts'
import { createServeCached } from './serve.ts'
import { createPump } from './stream.ts'
import type {
  Found,
  Hit,
  OriginCache,
  OriginCacheComponents,
  OriginCacheInit,
  OriginContext,
  OriginTarget,
  ReadRequest,
} from './types.ts'
import { bodyless, errorCode } from './util.ts'

export type {
  FastHit,
  FastMissRequest,
  HeaderLookup,
  OriginCache,
  OriginCacheComponents,
  OriginCacheInit,
  OriginLogger,
  OriginMetrics,
  OriginStore,
  OriginTarget,
  OriginUpstream,
  PurgeSpec,
} from './types.ts'

const NO_DIRECTIVES: RequestDirectives = Object.freeze({
  noCache: false,
  noStore: false,
  onlyIfCached: false,
})
function positive(name: string, value: number | undefined, fallback: number, allowZero = false): number {
  const v = value ?? fallback
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (!allowZero && v === 0)) {
    throw new InvalidArgumentError(`${name} must be a ${allowZero ? 'non-negative' : 'positive'} number`)
  }
  return v
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
  const { store, upstream, logger, metrics, fastUpstream } = components ?? ({} as OriginCacheComponents)
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
  const diskAdmission = init.diskAdmission ?? 'second-use'
  if (diskAdmission !== 'first-use' && diskAdmission !== 'second-use') {
    throw new InvalidArgumentError('diskAdmission must be "first-use" or "second-use"')
  }
  const forwardClientIp = init.forwardClientIp === true
  const honorRequestCacheControl = init.honorRequestCacheControl !== false
  const now = init.now ?? Date.now
  if (typeof now !== 'function') throw new InvalidArgumentError('now must be a function')

  const preparedByMeta = new WeakMap<object, Prepared>()
  const aeMemo = new Map<string, string>()
  const memoryHits = metrics?.cacheHits.labels({ tier: 'memory' })
  const Policy = createPolicyClass({ now, heuristicFraction, heuristicMaxSeconds })

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

  const ctx: OriginContext = {
    store,
    upstream,
    logger,
    metrics,
    viaName,
    now,
    collapseTimeoutMs,
    detachedFillMaxBytes,
    maxObjectBytes,
    admitOnReuse: diskAdmission === 'second-use',
    forwardClientIp,
    honorRequestCacheControl,
    Policy,
    fills: createFillRegistry(),
    prepare(meta) {
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
    },
    acceptEncodingOf,
    varyValues: (fields, header) =>
      fields.map((field) =>
        field === 'accept-encoding'
          ? acceptEncodingOf(header(field))
          : normalizeVaryValue(field, header(field)),
      ),
  }
  const { fills, prepare, varyValues } = ctx
  const pump = createPump(ctx)
  const serveCached = createServeCached(ctx, pump)
  const passThrough = createPassThrough(ctx, pump)
  const filler = createFiller(ctx, { pump, serveCached, passThrough })

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
          if (freshness === 'stale-while-revalidate') filler.refreshInBackground(r, usable)
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
      return filler.lead({ r, res, found, stale: usable, fill })
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
      if (fast === undefined || fast.age !== age || fast.hit.body !== entry.body) {
        fast = { age, hit: { head: buildHead(prepared, age, entry.size), body: entry.body, date: false } }
        prepared.fastHead = fast
      }
      memoryHits?.inc()
      return fast.hit
    },

    missResponder(target, view) {
      if (fastUpstream === undefined || !target.origin.startsWith('http://')) {
        return undefined
      }
      const base = baseKey(target.site, target.path)
      // Anything known about the object (an entry, stale or not, a vary marker, a fill in
      // flight) is the full path's to weigh: only a plain first miss is taken here.
      if (store.memory.has(base) || store.disk.has(base) || fills.has(base)) return undefined
      const headers = view.headers()
      // The fill and pass-through code read the request's headers and address only (no
      // body, no range here); the address (a getpeername call) only when it is forwarded.
      const socket = {
        get remoteAddress() {
          return view.remoteAddress
        },
      }
      const req = { headers, socket } as unknown as IncomingMessage
      if (view.method === 'HEAD') {
        // As in `read`: a HEAD with nothing cached is passed through, not stored.
        return (res) => {
          metrics?.cacheMisses.inc({ kind: 'origin' })
          const client = res as unknown as ServerResponse
          passThrough(req, client, target, 'HEAD', 'MISS', false, fastUpstream).catch((err: unknown) => {
            logger?.debug(
              { site: target.site, code: errorCode(err) },
              'origin request answered with an error',
            )
            if (!res.destroyed) sendError(client, err, { via: `1.1 ${viaName}` })
          })
        }
      }
      const fill = fills.start(base)
      return (res) => {
        const r: ReadRequest = {
          req,
          method: 'GET',
          target,
          url: `${target.origin}${target.path}`,
          base,
          directives: NO_DIRECTIVES,
          conditionals: { ifNoneMatch: undefined, ifModifiedSince: undefined },
          range: undefined,
          ifRange: undefined,
          auth: false,
          acceptEncoding: acceptEncodingOf(headers['accept-encoding']),
        }
        const client = res as unknown as ServerResponse
        filler
          .lead({ r, res: client, found: { key: base }, stale: undefined, fill, upstream: fastUpstream })
          .catch((err: unknown) => {
            logger?.debug(
              { site: target.site, code: errorCode(err) },
              'origin request answered with an error',
            )
            if (!res.destroyed) sendError(client, err, { via: `1.1 ${viaName}` })
          })
      }
    },

    idle: () => filler.idle(),
  }
}
