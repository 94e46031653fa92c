/**
 * `createClient`: fetch through the Shoal mesh. `client.fetch(input, init)` is shaped like
 * `fetch` and returns a standard `Response` whose body streams only verified bytes.
 *
 * Composition: a request pipeline (`observe` → `timeouts` → `httpDispatch`) reaches one
 * source; `race` hedges across sources; `createContentFetcher` verifies (in one place,
 * `verifyStream`) and fails over mid-stream; `createSiteResolver` turns site paths into
 * verified manifest entries; `createNodeDirectory` says which nodes to ask.
 */
import {
  AbortError,
  type Cid,
  InvalidArgumentError,
  MethodNotAllowedError,
  type RecordSigner,
  UnavailableError,
} from '@shoal/protocol'
import type { Address } from 'viem'
import { createContentFetcher, createFetchState, type IntegrityFailure } from './content.ts'
import { failureOf, infoOf } from './errors.ts'
import type { ClientEvent } from './events.ts'
import { parseTarget, type Target } from './input.ts'
import { createLeavesCache } from './leaves.ts'
import { createNodeStats, type NodeStats } from './node-stats.ts'
import { createNodeDirectory } from './nodes.ts'
import { type ClientInit, type ResolvedClientOptions, resolveClientOptions } from './options.ts'
import { fetchOriginPull } from './origin-pull.ts'
import { compose, type Dispatch, type Interceptor } from './pipeline/dispatch.ts'
import { httpDispatch } from './pipeline/http.ts'
import { observe } from './pipeline/observe.ts'
import { timeouts } from './pipeline/timeouts.ts'
import { parseRange } from './range.ts'
import { createPayments, type FetchPayment, type PaymentChannel, type Payments } from './receipts/payments.ts'
import { createTicketBook } from './receipts/tickets.ts'
import { randomNonce, signNodeReport } from './reports.ts'
import { type BodyStream, bodyStream } from './response.ts'
import { createSiteResolver } from './sites.ts'
import { createTrackerClient, type TrackerClient } from './tracker-client.ts'

/** Sends mesh-only sources to the mesh dispatch, the others to `base`. */
function meshAware(base: Dispatch, mesh: Dispatch | undefined): Dispatch {
  if (mesh === undefined) return base
  return (request) => (request.source.mesh !== undefined ? mesh(request) : base(request))
}

/** Parsed `shoal://<cid>` texts a client keeps. */
const MAX_CACHED_TARGETS = 1_024

/**
 * Runs `fn` on the event loop's next turn, after the microtasks in which a `fetch` just
 * started writes its request (undici does), so that work not depending on the answer
 * overlaps the wait for it; at once where there is no `setImmediate` (browsers, whose
 * fetch runs off the page's thread).
 */
const whileOut: (fn: () => void) => void =
  typeof globalThis.setImmediate === 'function' ? (fn) => void globalThis.setImmediate(fn) : (fn) => fn()

/** `Cache-Control` of `shoal://<cid>` responses: content ids never change. */
export const IMMUTABLE = 'public, max-age=31536000, immutable'

export interface ShoalRequestInit extends RequestInit {
  /** Called as verified bytes are handed to the body: `loaded` of `total` bytes. */
  onProgress?: (progress: { loaded: number; total: number }) => void
}

export interface ShoalClient {
  /**
   * Fetches `shoal://<cid>`, `shoal://<site>/<path>` or an `http(s)://` URL. For Shoal URLs
   * the promise resolves once the first verified bytes are in hand; it rejects with a
   * typed error (`error.code`) when nothing can serve, and the body errors the same way
   * when every source fails later. `GET` and `HEAD` only.
   */
  fetch(input: string | URL | Request, init?: ShoalRequestInit): Promise<Response>
  /** Idempotent; a client is usable right after `createClient`. After `stop()`, starts it again. */
  start(): Promise<void>
  /** Aborts every fetch in flight, waits for pending reports, clears caches. */
  stop(): Promise<void>
  /** The tracker client, when the client has a tracker. */
  readonly tracker: TrackerClient | undefined
  /** What the client has observed of nodes (TTFBs, failures). */
  readonly stats: NodeStats
  readonly options: Readonly<ResolvedClientOptions>
}

export interface ClientComponents {
  /** Extra interceptors, outermost first, stacked on top of the built-in ones. */
  interceptors?: Interceptor[]
  /** The base dispatch (default `httpDispatch(fetch)`). */
  dispatch?: Dispatch
  /**
   * The dispatch for nodes reachable only through the mesh (`createMeshDispatch` of
   * `@shoal/client-sdk/node`). With it the client also asks the tracker for mesh-only
   * nodes (`mesh=1`) and fetches from them over the mesh chunk protocol; their bytes are
   * verified, raced and failed over like any node's. When it carries `payments` (as
   * `createMeshDispatch`'s does), a client with an account pays those nodes over the mesh.
   */
  mesh?: Dispatch & { payments?: PaymentChannel }
  stats?: NodeStats
}

/**
 * @example
 * const client = createClient({ tracker: 'https://tracker.example' })
 * const res = await client.fetch('shoal://blog/index.html')
 * console.log(res.headers.get('content-type'), await res.text())
 */
export function createClient(init: ClientInit, components: ClientComponents = {}): ShoalClient {
  const options = resolveClientOptions(init)
  const doFetch = init.fetch ?? globalThis.fetch.bind(globalThis)
  if (typeof doFetch !== 'function') throw new InvalidArgumentError('fetch must be a function')
  const tracker: TrackerClient | undefined =
    init.tracker === undefined
      ? undefined
      : typeof init.tracker === 'string'
        ? createTrackerClient({ url: init.tracker, fetch: doFetch, timeoutMs: options.trackerMs })
        : init.tracker
  if (tracker !== undefined && (typeof tracker !== 'object' || typeof tracker.select !== 'function'))
    throw new InvalidArgumentError('tracker must be a URL or a tracker client')
  const account: RecordSigner | undefined = init.account
  const onEvent = init.onEvent
  const emit = (event: ClientEvent) => {
    if (onEvent === undefined) return
    try {
      onEvent(event)
    } catch {
      // a listener's error is not the fetch's
    }
  }

  const stats = components.stats ?? createNodeStats()
  const dispatch = compose(
    ...(components.interceptors ?? []),
    observe({ stats }),
    timeouts({ ttfbMs: options.ttfbMs, stallMs: options.stallMs }),
  )(meshAware(components.dispatch ?? httpDispatch(doFetch), components.mesh))
  const directory = createNodeDirectory(
    {
      nodes: options.nodes,
      selectCount: options.selectCount,
      selectTtlMs: options.selectTtlMs,
      region: options.region,
      ...(components.mesh !== undefined ? { mesh: true } : {}),
    },
    { tracker, stats },
  )
  const leavesCache = createLeavesCache(options.leavesBytes)
  const sites = createSiteResolver({ pins: options.sites, ttlMs: options.siteTtlMs }, { tracker })

  const pendingReports = new Set<Promise<void>>()
  const report = (failure: IntegrityFailure) => {
    const { source, cid, chunk, badHash } = failure
    const address: Address | undefined = source.address
    emit({
      type: 'integrity-failure',
      cid: cid.text,
      node: source.url,
      ...(address === undefined ? {} : { address }),
      chunk,
      badHash,
    })
    const skipped = (reason: string) =>
      emit({ type: 'report', cid: cid.text, node: source.url, chunk, outcome: 'skipped', reason })
    if (account === undefined) return skipped('the client has no account to sign reports')
    if (tracker === undefined) return skipped('the client has no tracker')
    if (address === undefined) return skipped("the node's address is unknown")
    const filing = (async () => {
      const signed = await signNodeReport(account, {
        client: account.address,
        node: address,
        nonce: randomNonce(),
        timestamp: Math.floor(Date.now() / 1000),
        requests: 1,
        failures: 1,
        bytes: failure.bytes,
        ttfbMs: Math.min(600_000, Math.round(failure.ttfbMs)),
        throughput: 0,
        cid: cid.text,
        chunk,
        badHash,
      })
      await tracker.report(signed, { signal: AbortSignal.timeout(options.trackerMs) })
    })().then(
      () => emit({ type: 'report', cid: cid.text, node: source.url, chunk, outcome: 'filed' }),
      (err: unknown) =>
        emit({
          type: 'report',
          cid: cid.text,
          node: source.url,
          chunk,
          outcome: 'failed',
          reason: `${infoOf(err).code}: ${infoOf(err).message}`,
        }),
    )
    pendingReports.add(filing)
    void filing.finally(() => pendingReports.delete(filing))
  }

  // a client with an account and a tracker pays for what it verifies (docs/receipts.md)
  const tickets =
    account === undefined || tracker === undefined
      ? undefined
      : createTicketBook({ tracker, client: account.address })
  const payments: Payments | undefined =
    account === undefined || tickets === undefined
      ? undefined
      : createPayments(
          { receiptEveryBytes: options.receiptEveryBytes, timeoutMs: options.trackerMs },
          {
            account,
            tickets,
            fetch: doFetch,
            emit,
            ...(components.mesh?.payments === undefined ? {} : { mesh: components.mesh.payments }),
          },
        )

  const content = createContentFetcher(
    { hedge: options.hedge, originBufferBytes: options.originBufferBytes },
    { dispatch, directory, stats, leavesCache, emit, onIntegrityFailure: report },
  )

  // `shoal://<cid>` texts parsed once (the hot path of a warm client)
  const cidTargets = new Map<string, Target>()
  const targetOf = (url: string): Target => {
    const hit = cidTargets.get(url)
    if (hit !== undefined) return hit
    const target = parseTarget(url)
    if (target.kind === 'cid') {
      if (cidTargets.size >= MAX_CACHED_TARGETS) cidTargets.delete(cidTargets.keys().next().value as string)
      cidTargets.set(url, target)
    }
    return target
  }

  let stopping = new AbortController()

  const fetchShoal = async (
    target: Exclude<Target, { kind: 'http' }>,
    method: string,
    rangeHeader: string | null,
    signal: AbortSignal,
    onProgress: ShoalRequestInit['onProgress'],
    done: () => void,
  ): Promise<Response> => {
    let cid: Cid
    let contentType = 'application/octet-stream'
    let cacheControl = IMMUTABLE
    let origin: string | undefined
    if (target.kind === 'site') {
      const resolved = await sites.resolve(target.site, target.path, { signal })
      cid = resolved.cid
      contentType = resolved.entry.contentType
      cacheControl = resolved.entry.cacheControl
      if (resolved.header.origin !== '') origin = originUrl(resolved.header.origin, target.path)
    } else {
      cid = target.cid
    }
    const range = parseRange(rangeHeader, cid.size)
    const start = range?.start ?? 0
    const end = range?.end ?? cid.size
    // a plain record: Response copies it once into its own Headers
    const out: Record<string, string> = {
      'content-type': contentType,
      'content-length': String(end - start),
      etag: `"${cid.text}"`,
      'accept-ranges': 'bytes',
    }
    if (cacheControl !== '') out['cache-control'] = cacheControl
    if (range !== undefined) out['content-range'] = `bytes ${start}-${end - 1}/${cid.size}`
    const status = range === undefined ? 200 : 206
    if (method === 'HEAD') {
      done()
      return new Response(null, { status, headers: out })
    }
    const state = createFetchState()
    const payment: FetchPayment | undefined = payments?.forFetch(
      target.kind === 'site' ? { site: target.site } : { cid: cid.text },
    )
    const via = { ...(origin === undefined ? {} : { origin }), ...(payment === undefined ? {} : { payment }) }
    let first: IteratorResult<Uint8Array, void>
    let gen: AsyncGenerator<Uint8Array, void, undefined> | undefined
    // The response does not depend on the bytes: it is built while the request is out
    // (the request is started synchronously when nothing is to be awaited before it).
    let body: BodyStream | undefined
    let response: Response | undefined
    const prepare = () => {
      if (body !== undefined) return
      body = bodyStream()
      response = new Response(body.stream, { status, headers: out })
    }
    try {
      const leaves =
        cid.size === 0
          ? undefined
          : (leavesCache.get(cid) ?? (await content.leaves(cid, { signal, state, ...via })))
      if (cid.size > 0 && Math.floor(start / cid.chunkSize) === Math.floor((end - 1) / cid.chunkSize)) {
        // within one chunk (every small object): verified whole, handed over as one piece
        const bytes = content.small({ cid, leaves, start, end, signal, state, ...via })
        whileOut(prepare)
        first = { done: false, value: await bytes }
      } else {
        gen = content.body({ cid, leaves, start, end, signal, state, ...via })
        const next = gen.next()
        whileOut(prepare)
        first = await next
      }
    } catch (err) {
      await gen?.return(undefined).catch(() => {})
      payment?.end()
      throw err
    }
    prepare()
    let loaded = 0
    const total = end - start
    body!.attach(gen, {
      first,
      signal,
      onDone:
        payment === undefined
          ? done
          : () => {
              payment.end()
              done()
            },
      ...(onProgress === undefined
        ? {}
        : {
            onBytes: (n: number) => {
              loaded += n
              onProgress({ loaded, total })
            },
          }),
    })
    return response!
  }

  const clientFetch = async (
    input: string | URL | Request,
    init: ShoalRequestInit = {},
  ): Promise<Response> => {
    if (stopping.signal.aborted) throw new UnavailableError('the client is stopped')
    const request =
      typeof input === 'object' && input !== null && 'url' in input && !(input instanceof URL)
        ? input
        : undefined
    const url = request?.url ?? String(input)
    const method = (init.method ?? request?.method ?? 'GET').toUpperCase()
    const userSignal = init.signal ?? request?.signal ?? undefined
    if (userSignal?.aborted === true)
      throw new AbortError('the operation was aborted', { cause: userSignal.reason })
    const target = targetOf(url)
    if (target.kind === 'http') {
      return fetchOriginPull(target.url, input, init, {
        fetch: doFetch,
        site: options.originSites.get(target.url.origin),
        nodes: options.nodes ?? [],
        ttfbMs: options.ttfbMs,
        stats,
        emit,
        stopSignal: stopping.signal,
      })
    }
    if (method !== 'GET' && method !== 'HEAD')
      throw new MethodNotAllowedError(`${method} is not allowed on ${url.slice(0, 100)}: use GET or HEAD`)
    const rawHeaders = init.headers ?? request?.headers
    const range = rawHeaders === undefined ? null : new Headers(rawHeaders).get('range')

    // The fetch's signal: stop()'s own when the app gives none; else one aborted by either.
    const stopSignal = stopping.signal
    let signal = stopSignal
    let done = () => {}
    if (userSignal != null) {
      const controller = new AbortController()
      const onAbort = () => controller.abort(userSignal.aborted ? userSignal.reason : stopSignal.reason)
      userSignal.addEventListener('abort', onAbort, { once: true })
      stopSignal.addEventListener('abort', onAbort, { once: true })
      signal = controller.signal
      let released = false
      done = () => {
        if (released) return
        released = true
        userSignal.removeEventListener('abort', onAbort)
        stopSignal.removeEventListener('abort', onAbort)
      }
    }
    try {
      return await fetchShoal(target, method, range, signal, init.onProgress, done)
    } catch (err) {
      done()
      if (signal.aborted) throw failureOf(err, signal, 'aborted')
      throw err
    }
  }

  return {
    fetch: clientFetch,
    tracker,
    stats,
    options,
    async start() {
      if (stopping.signal.aborted) stopping = new AbortController()
    },
    async stop() {
      // every fetch in flight listens to this signal
      if (!stopping.signal.aborted) stopping.abort(new AbortError('the client stopped'))
      await Promise.allSettled([...pendingReports, payments?.flush()])
      directory.clear()
      sites.clear()
      payments?.clear()
      tickets?.clear()
      leavesCache.clear()
    },
  }
}

/** The URL of a site path at the site's origin: the origin's path, then the entry's path, percent-encoded. */
export function originUrl(origin: string, path: string): string {
  const encoded = path
    .split('/')
    .map((segment) => encodeURIComponent(segment).replace(/%40/g, '@').replace(/%3A/g, ':'))
    .join('/')
  return `${origin.replace(/\/$/, '')}${encoded}`
}
