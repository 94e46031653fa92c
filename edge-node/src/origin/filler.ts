/**
 * Cache fills: one upstream request for a miss or a revalidation, what follows from its
 * answer (a 304 updating the stored headers, stale-if-error, a new entry streamed to
 * the client and the store at once), and background refreshes.
 */
import { randomBytes } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { performance } from 'node:perf_hooks'
import { RangeNotSatisfiableError, UpstreamError } from '@shoal/protocol'
import type CachePolicy from 'http-cache-semantics'
import { contentRange, parseRange, unsatisfiedRange } from '../http/range.ts'
import { sendError } from '../http/respond.ts'
import type { ObjectWriter } from '../store/index.ts'
import type { UpstreamResponse } from '../upstream/http-upstream.ts'
import { has, parseCacheControl } from './cache-control.ts'
import { ifRangeAllows, notModified } from './conditional.ts'
import type { Fill } from './fills.ts'
import {
  appendVia,
  endToEndResponseHeaders,
  forwardRequestHeaders,
  headerValue,
  parseVary,
} from './headers.ts'
import { variantKey } from './keys.ts'
import type { PassThrough } from './pass-through.ts'
import {
  type PolicyHeaders,
  preparePolicy,
  type ResponseMeta,
  staleIfErrorAllows,
  type VaryMeta,
} from './policy.ts'
import type { ServeCached } from './serve.ts'
import type { ClientMode, Pump } from './stream.ts'
import type { Found, Hit, OriginContext, OriginUpstream, ReadRequest } from './types.ts'
import { bodyless, checkHeaders, contentLengthOf, discard, errorCode, noop, withoutLength } from './util.ts'

export interface FillJob {
  r: ReadRequest
  /** The client to answer; absent for a background refresh. */
  res: ServerResponse | undefined
  found: Found
  stale: Hit | undefined
  fill: Fill | undefined
  /** The client for this fill instead of the cache's (the fast path's raw one). */
  upstream?: OriginUpstream
}

type StoragePlan =
  | { store: false; reason: string }
  | {
      store: true
      policy: CachePolicy
      stored: PolicyHeaders
      vary: string[]
      length: number | undefined
    }

/** Fields a 304 does not carry over to the stored response (its body is unchanged). */
const NOT_UPDATED_BY_304 = new Set([
  'content-length',
  'content-encoding',
  'content-range',
  'transfer-encoding',
  'set-cookie',
])
const EMPTY = new Uint8Array(0)

export interface Filler {
  /** Runs a fill (its client, if any, is answered); tracked until it ends. */
  lead(job: FillJob): Promise<void>
  /** Starts a background revalidation of `hit` unless one is in flight. */
  refreshInBackground(r: ReadRequest, hit: Hit): void
  /** Resolves when no fill runs. */
  idle(): Promise<void>
}

export interface FillerParts {
  pump: Pump
  serveCached: ServeCached
  passThrough: PassThrough
}

export function createFiller(ctx: OriginContext, parts: FillerParts): Filler {
  const { store, upstream, logger, metrics, viaName, now, fills, Policy } = ctx
  const { detachedFillMaxBytes, maxObjectBytes, honorRequestCacheControl, forwardClientIp } = ctx
  const { pump, serveCached, passThrough } = parts
  const running = new Set<Promise<void>>()
  const clientIpOf = (req: IncomingMessage): string | undefined =>
    forwardClientIp ? req.socket?.remoteAddress : undefined
  const varyValues = ctx.varyValues

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
      up = await (job.upstream ?? upstream).request(r.url, { method: 'GET', headers })
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
        plan.length === undefined
          ? { admitOnReuse: ctx.admitOnReuse }
          : { expectedSize: plan.length, admitOnReuse: ctx.admitOnReuse },
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
    // The metadata given to the writer stands unless the body's length was not declared.
    const lengthLearned = !bodyless(status) && plan.length !== result.bytes
    if (lengthLearned) plan.stored['content-length'] = String(result.bytes)
    try {
      if (marker !== undefined) await writeMarker(r.base, marker, job.found.marker)
      await writer.commit(
        lengthLearned ? { meta: { v: 1, kind: 'response', policy: plan.policy.toObject() } } : {},
      )
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

  return {
    lead,
    refreshInBackground,
    async idle() {
      while (running.size > 0) await Promise.all(Array.from(running))
    },
  }
}
