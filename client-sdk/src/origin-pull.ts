/**
 * `http(s)://` URLs. They have no content id, so nothing can verify their bytes against
 * one; the client therefore fetches them directly from the origin by default, with the
 * app's own trust in TLS — exactly what `fetch` would do. For origins listed in
 * `originSites`, `GET`/`HEAD` go through the static nodes' origin-pull route
 * (`<node>/s/<site>/<path>`: the node is a shared HTTP cache in front of the origin, and
 * is trusted like one), racing and failing over like content requests, and straight to
 * the origin when every node fails. Responses say where they came from in
 * `x-shoal-source` (`origin` or the node's URL).
 */
import { UpstreamTimeoutError } from '@shoal/protocol'
import { errorOfResponse, failureOf, infoOf, isAbort } from './errors.ts'
import type { ClientEvent } from './events.ts'
import type { NodeStats } from './node-stats.ts'
import type { StaticNode } from './options.ts'
import { race } from './race.ts'

export interface OriginPullContext {
  fetch: typeof globalThis.fetch
  /** The site nodes serve this origin under, when it is an origin-pull site. */
  site: string | undefined
  nodes: readonly StaticNode[]
  ttfbMs: number
  stats: NodeStats
  emit(event: ClientEvent): void
  stopSignal: AbortSignal
}

/** Copies a response with one more header (`Response.headers` of a fetched response is immutable). */
function marked(res: Response, source: string): Response {
  const headers = new Headers(res.headers)
  headers.set('x-shoal-source', source)
  return new Response(res.body, { status: res.status, statusText: res.statusText, headers })
}

async function direct(
  url: URL,
  input: string | URL | Request,
  init: RequestInit,
  ctx: OriginPullContext,
  signal: AbortSignal,
): Promise<Response> {
  try {
    const res = await ctx.fetch(typeof input === 'string' || input instanceof URL ? url : input, {
      ...init,
      signal,
    })
    return marked(res, 'origin')
  } catch (err) {
    throw failureOf(err, signal, `origin ${url.origin} did not answer`)
  }
}

/**
 * @example
 * const res = await fetchOriginPull(new URL('https://www.example.org/a.css'), input, init, ctx)
 */
export async function fetchOriginPull(
  url: URL,
  input: string | URL | Request,
  init: RequestInit,
  ctx: OriginPullContext,
): Promise<Response> {
  const userSignal = init.signal ?? (input instanceof Request ? input.signal : undefined)
  const signal = userSignal == null ? ctx.stopSignal : AbortSignal.any([userSignal, ctx.stopSignal])
  const method = (init.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase()
  if (ctx.site === undefined || ctx.nodes.length === 0 || (method !== 'GET' && method !== 'HEAD'))
    return direct(url, input, init, ctx, signal)
  const path = `${url.pathname}${url.search}`
  const nodes = ctx.stats.rank(ctx.nodes, (n) => n.url)
  try {
    const won = await race<StaticNode, Response>({
      next: () => nodes.shift(),
      nameOf: (n) => n.url,
      async start(node, attempt) {
        const both = AbortSignal.any([attempt, signal])
        const limit = new AbortController()
        const ttfb = setTimeout(
          () =>
            limit.abort(new UpstreamTimeoutError(`node ${node.url} sent no answer within ${ctx.ttfbMs} ms`)),
          ctx.ttfbMs,
        )
        const started = performance.now()
        try {
          const res = await ctx.fetch(`${node.url}s/${ctx.site}${path}`, {
            ...init,
            method,
            redirect: 'manual',
            signal: AbortSignal.any([both, limit.signal]),
          })
          // the node's own failures (5xx with a Shoal error body) move on; the origin's answers pass through
          if (res.status >= 500 && (res.headers.get('content-type') ?? '').includes('json'))
            throw await errorOfResponse(res, `node ${node.url}`)
          ctx.stats.recordTtfb(node.url, performance.now() - started)
          return res
        } catch (err) {
          const failure = failureOf(
            err,
            limit.signal.aborted ? limit.signal : both,
            `node ${node.url} did not answer`,
          )
          if (!isAbort(failure)) ctx.stats.recordFailure(node.url, 'error')
          throw failure
        } finally {
          clearTimeout(ttfb)
        }
      },
      delayFor: () => Number.POSITIVE_INFINITY,
      maxParallel: 1,
      signal,
      what: `no node could serve ${url.origin}`,
      onError: (node, error) =>
        ctx.emit({ type: 'node-error', cid: '', node: node.url, error: infoOf(error) }),
      dispose: (res) => void res.body?.cancel().catch(() => {}),
    })
    // the request's own signal already follows the caller's (AbortSignal.any above)
    won.release()
    return marked(won.result, won.candidate.url)
  } catch (err) {
    if (isAbort(err)) throw err
    return direct(url, input, init, ctx, signal)
  }
}
