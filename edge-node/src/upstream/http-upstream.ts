/**
 * The node's HTTP client to origins and other nodes: one undici Agent with bounded
 * connect, header and body timeouts, no redirects followed (an origin's redirect is
 * a response to cache or pass on, never a hop the node takes by itself), and typed
 * errors: `UpstreamTimeoutError` (504) and `UpstreamError` (502).
 */
import type { IncomingHttpHeaders } from 'node:http'
import type { Readable } from 'node:stream'
import { AbortError, UpstreamError, UpstreamTimeoutError } from '@shoal/protocol'
import { Agent, type Dispatcher, errors } from 'undici'

export interface HttpUpstreamInit {
  connectTimeoutMs: number
  headersTimeoutMs: number
  bodyTimeoutMs: number
  /** Connections kept per origin. */
  connections?: number
}

export interface UpstreamResponse {
  status: number
  headers: IncomingHttpHeaders
  body: Readable & AsyncIterable<Buffer>
}

export interface UpstreamRequest {
  method: string
  headers?: Record<string, string | string[]>
  body?: Readable | Uint8Array | string | null
  signal?: AbortSignal
}

export interface HttpUpstream {
  request(url: string | URL, init: UpstreamRequest): Promise<UpstreamResponse>
  close(): Promise<void>
  readonly dispatcher: Dispatcher
}

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT'])

/** Maps undici's and the socket layer's errors to Shoal's typed upstream errors. */
export function toUpstreamError(err: unknown, what: string): Error {
  if (err instanceof AbortError || (err as { code?: string }).code === 'SHOAL_ERR_ABORTED')
    return err as Error
  const code = (err as { code?: unknown }).code
  if (err instanceof errors.RequestAbortedError || (err as Error).name === 'AbortError') {
    return new AbortError(`${what} was aborted`, { cause: err })
  }
  if (typeof code === 'string' && TIMEOUT_CODES.has(code)) {
    return new UpstreamTimeoutError(`${what} timed out (${code})`, { cause: err })
  }
  return new UpstreamError(`${what} failed${typeof code === 'string' ? ` (${code})` : ''}`, { cause: err })
}

/**
 * @example
 * const upstream = createHttpUpstream({ connectTimeoutMs: 5000, headersTimeoutMs: 15000, bodyTimeoutMs: 30000 })
 * const res = await upstream.request('https://origin.example/a.css', { method: 'GET', signal })
 */
export function createHttpUpstream(init: HttpUpstreamInit): HttpUpstream {
  const agent = new Agent({
    connectTimeout: init.connectTimeoutMs,
    headersTimeout: init.headersTimeoutMs,
    bodyTimeout: init.bodyTimeoutMs,
    connections: init.connections ?? 64,
    keepAliveTimeout: 10_000,
  })
  return {
    dispatcher: agent,
    async request(url, req) {
      const target = typeof url === 'string' ? new URL(url) : url
      try {
        const res = await agent.request({
          origin: target.origin,
          path: `${target.pathname}${target.search}`,
          method: req.method as Dispatcher.HttpMethod,
          headers: req.headers,
          body: req.body ?? null,
          signal: req.signal,
        })
        return {
          status: res.statusCode,
          headers: res.headers as IncomingHttpHeaders,
          body: res.body as unknown as UpstreamResponse['body'],
        }
      } catch (err) {
        throw toUpstreamError(err, `${req.method} ${target.origin}`)
      }
    },
    close: () => agent.close(),
  }
}
