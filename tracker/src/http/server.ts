/**
 * The tracker's HTTP server on `node:http`: a small route table (static paths in a
 * map, a few patterns with parameters), per-IP token buckets per route group, bounded
 * heads and bodies, timeouts, the shared JSON error body for everything (malformed
 * requests included), metrics per route, and a graceful stop.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import {
  errorBody,
  MethodNotAllowedError,
  NotFoundError,
  RateLimitedError,
  toErrorResponse,
  UnavailableError,
} from '@shoal/protocol'
import type { Logger } from 'pino'
import type { TrackerMetrics } from '../metrics.ts'
import type { RateLimits } from '../options.ts'
import { clientIp, createKeyedRateLimiter, type KeyedRateLimiter } from './rate-limit.ts'
import { sendError } from './respond.ts'

export interface RequestContext {
  req: IncomingMessage
  res: ServerResponse
  /** Path parameters (`:name` segments), decoded. */
  params: Record<string, string>
  /** The raw query string (without `?`), `''` when none. */
  query: string
  ip: string
  /** Aborted when the client goes away before the answer is sent. */
  signal: AbortSignal
}

export interface Route {
  method: 'GET' | 'POST'
  /** `/v1/nodes/:address`: segments starting with `:` are parameters. */
  path: string
  /** Metric label. */
  name: string
  limit: keyof RateLimits
  /**
   * A public route web pages may call from any origin (CORS: `*`, no credentials):
   * its answers (errors included) carry `Access-Control-Allow-Origin` and `OPTIONS`
   * on its path answers the preflight. Node-facing and operator routes leave it unset.
   */
  cors?: boolean
  handle(ctx: RequestContext): Promise<void> | void
}

/** Request headers a page may send to public routes (beyond the CORS-safelisted ones). */
export const CORS_ALLOW_HEADERS = 'content-type, accept'
/** Response headers a page may read (beyond the safelisted ones). */
export const CORS_EXPOSE_HEADERS = 'content-length, retry-after, allow'
/** How long a browser may cache a preflight answer. */
export const CORS_MAX_AGE_SECONDS = 86_400
const CORS_HEADERS = {
  'access-control-allow-origin': '*',
  'access-control-expose-headers': CORS_EXPOSE_HEADERS,
} as const

export interface ApiServerInit {
  host: string
  port: number
  rateLimits: RateLimits
  rateLimitKeys: number
  trustProxy: boolean
  maxHeaderBytes: number
  headersTimeoutMs: number
  requestTimeoutMs: number
}

export interface ApiServerComponents {
  routes: readonly Route[]
  logger?: Logger
  metrics?: TrackerMetrics
}

export interface ApiServer {
  readonly server: Server
  /** `http://host:port`, once listening. */
  readonly url: string
  listen(): Promise<void>
  /** Stops accepting, answers new requests on open connections with 503, waits up to `graceMs`. */
  close(graceMs: number): Promise<void>
}

interface Compiled {
  route: Route
  segments: string[]
}

function compile(routes: readonly Route[]) {
  const exact = new Map<string, Map<string, Route>>()
  const patterns: Compiled[] = []
  for (const route of routes) {
    if (route.path.includes('/:')) {
      patterns.push({ route, segments: route.path.split('/') })
    } else {
      let byMethod = exact.get(route.path)
      if (byMethod === undefined) {
        byMethod = new Map()
        exact.set(route.path, byMethod)
      }
      byMethod.set(route.method, route)
    }
  }
  return (
    method: string,
    path: string,
  ): { route: Route; params: Record<string, string> } | { allow: string[]; cors: string[] } => {
    const byMethod = exact.get(path)
    if (byMethod !== undefined) {
      const route = byMethod.get(method === 'HEAD' ? 'GET' : method)
      if (route !== undefined) return { route, params: {} }
      const routes = [...byMethod.values()]
      return { allow: routes.map((r) => r.method), cors: routes.filter((r) => r.cors).map((r) => r.method) }
    }
    const parts = path.split('/')
    const allow: string[] = []
    const cors: string[] = []
    for (const { route, segments } of patterns) {
      if (segments.length !== parts.length) continue
      const params: Record<string, string> = {}
      let ok = true
      for (let i = 0; i < segments.length && ok; i++) {
        const s = segments[i]!
        const p = parts[i]!
        if (s.startsWith(':')) {
          if (p === '') ok = false
          else {
            try {
              params[s.slice(1)] = decodeURIComponent(p)
            } catch {
              ok = false
            }
          }
        } else if (s !== p) ok = false
      }
      if (!ok) continue
      if (route.method === method || (method === 'HEAD' && route.method === 'GET')) return { route, params }
      allow.push(route.method)
      if (route.cors === true) cors.push(route.method)
    }
    return { allow, cors }
  }
}

/** `204` to an `OPTIONS` (a CORS preflight) on a public route's path. */
function preflight(res: ServerResponse, methods: string[]): void {
  const allowed = [...new Set(methods.flatMap((m) => (m === 'GET' ? ['GET', 'HEAD'] : [m])))].join(', ')
  res.writeHead(204, {
    ...CORS_HEADERS,
    allow: `${allowed}, OPTIONS`,
    'access-control-allow-methods': allowed,
    'access-control-allow-headers': CORS_ALLOW_HEADERS,
    'access-control-max-age': String(CORS_MAX_AGE_SECONDS),
    'content-length': '0',
  })
  res.end()
}

/**
 * @example
 * const api = createApiServer({ host: '127.0.0.1', port: 0, … }, { routes })
 * await api.listen()
 */
export function createApiServer(init: ApiServerInit, components: ApiServerComponents): ApiServer {
  const { logger, metrics } = components
  const match = compile(components.routes)
  const limiters = new Map<keyof RateLimits, KeyedRateLimiter>()
  for (const [group, limit] of Object.entries(init.rateLimits) as [
    keyof RateLimits,
    RateLimits['default'],
  ][]) {
    limiters.set(group, createKeyedRateLimiter(limit, { maxKeys: init.rateLimitKeys }))
  }
  let stopping = false
  let url = ''
  const counters = new Map<string, { inc(): void }>()
  const timers = new Map<string, { observe(v: number): void }>()
  const sockets = new Set<Socket>()

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const started = performance.now()
    const rawUrl = req.url ?? '/'
    const q = rawUrl.indexOf('?')
    const path = q === -1 ? rawUrl : rawUrl.slice(0, q)
    const query = q === -1 ? '' : rawUrl.slice(q + 1)
    let name = 'unmatched'
    // The abort signal is made on first use: most requests (heartbeats, selections) never need one.
    let controller: AbortController | undefined
    const onClose = () => {
      if (!res.writableFinished) controller?.abort()
    }
    const ctx = {
      req,
      res,
      params: {} as Record<string, string>,
      query,
      ip: '',
      get signal(): AbortSignal {
        if (controller === undefined) {
          controller = new AbortController()
          res.once('close', onClose)
        }
        return controller.signal
      },
    }
    try {
      if (stopping) {
        res.setHeader('connection', 'close')
        throw new UnavailableError('the tracker is shutting down')
      }
      const method = req.method ?? 'GET'
      const m = match(method, path)
      if ('allow' in m) {
        if (m.allow.length === 0) throw new NotFoundError(`no route for ${path}`)
        if (method === 'OPTIONS' && m.cors.length > 0) {
          name = 'preflight'
          preflight(res, m.cors)
          return
        }
        res.setHeader('allow', m.allow.join(', '))
        throw new MethodNotAllowedError(`use ${m.allow.join(' or ')} ${path}`)
      }
      name = m.route.name
      if (m.route.cors === true) for (const [k, v] of Object.entries(CORS_HEADERS)) res.setHeader(k, v)
      const ip = clientIp(req, init.trustProxy)
      ctx.params = m.params
      ctx.ip = ip
      const limiter = limiters.get(m.route.limit)!
      if (!limiter.take(ip)) {
        metrics?.rateLimited.inc({ limit: m.route.limit })
        res.setHeader('retry-after', String(limiter.retryAfter(ip)))
        throw new RateLimitedError('too many requests from this address; retry later')
      }
      await m.route.handle(ctx)
    } catch (err) {
      const code = (err as { code?: string }).code
      if (code === 'SHOAL_ERR_TOO_LARGE') res.setHeader('connection', 'close')
      if (toErrorResponse(err).status >= 500) {
        logger?.error(
          { route: name, err: (err as Error).message, stack: (err as Error).stack },
          'request failed',
        )
      }
      sendError(res, err)
    } finally {
      if (controller !== undefined) res.off('close', onClose)
      if (metrics !== undefined) {
        // labelled children are cached: label hashing per request is measurable at 10k req/s
        const key = `${name} ${res.statusCode}`
        let counter = counters.get(key)
        if (counter === undefined) {
          counter = metrics.requests.labels({ route: name, status: String(res.statusCode) })
          counters.set(key, counter)
        }
        counter.inc()
        let timer = timers.get(name)
        if (timer === undefined) {
          timer = metrics.requestSeconds.labels({ route: name })
          timers.set(name, timer)
        }
        timer.observe((performance.now() - started) / 1000)
      }
    }
  }

  const server = createServer(
    {
      maxHeaderSize: init.maxHeaderBytes,
      requestTimeout: init.requestTimeoutMs,
      headersTimeout: init.headersTimeoutMs,
    },
    (req, res) => {
      void handle(req, res)
    },
  )
  server.keepAliveTimeout = 65_000
  server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  // Requests node:http refuses before a handler runs still get the shared JSON error.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (!socket.writable || (err as { code?: string }).code === 'ECONNRESET') {
      socket.destroy()
      return
    }
    const [status, code, message] =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'SHOAL_ERR_HEADERS_TOO_LARGE', 'the request head is too large']
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? [408, 'SHOAL_ERR_TIMEOUT', 'the request took too long to arrive']
          : [400, 'SHOAL_ERR_INVALID_FORMAT', 'malformed HTTP request']
    const body = JSON.stringify(errorBody(code, message))
    socket.end(
      `HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : status === 408 ? 'Request Timeout' : 'Bad Request'}\r\n` +
        `content-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    )
  })

  return {
    server,
    get url() {
      return url
    },
    listen() {
      return new Promise((resolve, reject) => {
        server.once('error', reject)
        server.listen(init.port, init.host, () => {
          server.off('error', reject)
          const a = server.address() as AddressInfo
          url = `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`
          resolve()
        })
      })
    },
    async close(graceMs) {
      stopping = true
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      server.closeIdleConnections()
      const timer = setTimeout(() => {
        for (const s of sockets) s.destroy()
      }, graceMs)
      timer.unref()
      await closed
      clearTimeout(timer)
    },
  }
}
