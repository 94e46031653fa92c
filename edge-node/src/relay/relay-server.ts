/**
 * The relay: an HTTP forward proxy on its own port, for clients holding a relay ticket.
 *
 * - `GET http://host/path` (absolute form) is forwarded with `http-proxy` to the
 *   address the egress policy checked (the `Host` header keeps the name);
 * - `CONNECT host:port` opens a TCP tunnel to the checked address (https and anything
 *   else over TLS).
 *
 * Order of checks: ticket (407) → per-client slots (429) → egress policy (403) → connect.
 * Every relay-made answer is JSON `{"error":{code,message}}` with a `shoal-relay-error`
 * header naming the code, so a client tells the relay's refusals from the destination's
 * answers. Redirects are passed to the client as they are, never followed. Bytes are
 * metered both ways per (client, ticket) and throttled by per-client and relay-wide
 * buckets; a tunnel or exchange idle for `idleTimeoutMs` is closed.
 */
import { once } from 'node:events'
import http, { type IncomingMessage, type ServerResponse } from 'node:http'
import net, { type AddressInfo, type Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { RELAY_ERROR_HEADER } from '@shoal/client-sdk'
import {
  InvalidArgumentError,
  isShoalError,
  MethodNotAllowedError,
  RateLimitedError,
  toErrorResponse,
  UpstreamError,
  UpstreamTimeoutError,
} from '@shoal/protocol'
import httpProxy from 'http-proxy'
import pino, { type Logger } from 'pino'
import type { Registry } from 'prom-client'
import { createTokenBucket, type TokenBucket } from '../limits/token-bucket.ts'
import { answerPayment } from '../receipts/http.ts'
import type { Sessions } from '../receipts/sessions.ts'
import { createEgressPolicy, type EgressPolicyComponents, egressRefused, refusalOf } from './egress-policy.ts'
import { createClientLimits } from './limits.ts'
import { createRelayMeter, type RelayMeter } from './meter.ts'
import { createRelayMetrics, type RelayMetrics } from './metrics.ts'
import {
  type RelayOptions,
  type ResolvedRelayOptions,
  relayMultiaddr,
  resolveRelayOptions,
} from './options.ts'
import { meteredPipe, meteredThrottle } from './pipe.ts'
import { authFailure, createTicketAuth, type RelayClient, TICKET_SCHEME } from './ticket-auth.ts'
import { meteredTunnel, tunnelDownstream } from './tunnel.ts'
import { createUpstreamAgent } from './upstream-agent.ts'

/** Header on every answer the relay itself makes (not the destination's). */
export { RELAY_ERROR_HEADER }

/** The request header naming the client's relay payment session (docs/receipts.md). */
export const SESSION_HEADER = 'shoal-session'

/** Request headers that concern the hop to the relay, never forwarded. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authorization',
  'proxy-authenticate',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  // names the client's relay payment session: for this relay, never the destination
  SESSION_HEADER,
])

export interface RelayComponents extends EgressPolicyComponents {
  logger?: Logger
  registry?: Registry
  /** Extra buckets every relayed byte goes through (e.g. the node's egress cap). */
  buckets?: TokenBucket[]
  meter?: RelayMeter
  /**
   * The node's payment sessions: with them the relay answers `POST /v1/sessions` and
   * `POST /v1/receipts` on its port and meters relayed bytes into the relay session
   * (kind 1) a request names in `shoal-session`.
   */
  sessions?: Pick<Sessions, 'open' | 'accept' | 'meterRelay'>
}

export interface Relay {
  readonly options: ResolvedRelayOptions
  /** `http://host:port` once started. */
  readonly url: string
  /** The URL announced to the tracker (`publicUrl` or `url`). */
  readonly publicUrl: string
  /** The node-record multiaddr announcing this relay (`/ip4/…/tcp/…/http`). */
  readonly multiaddr: string
  /** Per-(client, ticket) byte counters: what relay receipts are checked against. */
  readonly meter: RelayMeter
  readonly metrics: RelayMetrics | undefined
  start(): Promise<void>
  /** Closes the port and every tunnel and exchange in flight. */
  stop(): Promise<void>
}

/** Who a refusal or connection concerns, short enough for `info` logs. */
const short = (address: string) => `${address.slice(0, 6)}…${address.slice(-4)}`

/**
 * @example
 * const relay = createRelay({ port: 7481, issuers: [trackerAddress] }, { logger })
 * await relay.start()
 * // clients: new ProxyAgent({ uri: relay.url, token: relayAuthorization(ticket) })
 */
export function createRelay(init: RelayOptions, components: RelayComponents = {}): Relay {
  const options = resolveRelayOptions(init)
  const logger = components.logger ?? pino({ level: 'silent' })
  const policy = createEgressPolicy(options.egress, components)
  const auth = createTicketAuth({ issuers: options.issuers })
  const meter = components.meter ?? createRelayMeter()
  const metrics = components.registry === undefined ? undefined : createRelayMetrics(components.registry)
  const shared = [...(components.buckets ?? [])]
  if (options.bytesPerSecond !== undefined) shared.push(createTokenBucket({ rate: options.bytesPerSecond }))
  const limits = createClientLimits(
    {
      maxConcurrentPerClient: options.maxConcurrentPerClient,
      ...(options.clientBytesPerSecond !== undefined
        ? { clientBytesPerSecond: options.clientBytesPerSecond }
        : {}),
    },
    shared,
  )
  // its sockets read into a reused buffer each (upstream-agent.ts)
  const upstreamAgent = createUpstreamAgent({
    keepAlive: true,
    maxSockets: 256,
    timeout: options.idleTimeoutMs,
  })
  const proxy = httpProxy.createProxyServer({
    xfwd: false,
    followRedirects: false,
    selfHandleResponse: true,
    agent: upstreamAgent,
    proxyTimeout: options.idleTimeoutMs,
    timeout: options.idleTimeoutMs,
  })
  // bound once: these are counted on every chunk
  const upBytes = metrics?.bytes.labels({ direction: 'up' })
  const downBytes = metrics?.bytes.labels({ direction: 'down' })
  const sessions = components.sessions
  /** Meters relayed bytes: per ticket, in the metric, and in the named payment session. */
  const counter = (who: RelayClient, session: string | undefined, direction: 'up' | 'down') => {
    const total = direction === 'up' ? upBytes : downBytes
    return (n: number) => {
      meter.add(who, direction, n)
      total?.inc(n)
      sessions?.meterRelay(session, who.ticket, n)
    }
  }
  const sessionOf = (req: IncomingMessage): string | undefined => {
    const v = req.headers[SESSION_HEADER]
    return typeof v === 'string' ? v : undefined
  }
  const sockets = new Set<Duplex>()
  let url = ''
  let stopping = false

  const errorText = (err: unknown) => {
    const { status, body } = toErrorResponse(err)
    return { status: isAuthError(err) ? 407 : status, body, code: body.error.code }
  }

  const refusal = (err: unknown, what: { kind: string; host?: string; port?: number; who?: RelayClient }) => {
    const { status, code } = errorText(err)
    const reason = refusalOf(err) ?? code
    metrics?.refusals.inc({ status: String(status), reason: reason.startsWith('range:') ? 'range' : reason })
    const fields = {
      kind: what.kind,
      status,
      reason,
      ...(what.host !== undefined ? { host: what.host, port: what.port } : {}),
      ...(what.who !== undefined ? { client: short(what.who.client) } : {}),
    }
    if (status === 403) logger.info(fields, 'relay refused a destination')
    else logger.debug(fields, 'relay refused a request')
  }

  const answer = (res: ServerResponse, err: unknown) => {
    if (res.headersSent) {
      res.destroy()
      return
    }
    const { status, body, code } = errorText(err)
    const text = JSON.stringify(body)
    res.writeHead(status, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(text),
      'cache-control': 'no-store',
      [RELAY_ERROR_HEADER]: code,
      ...(status === 407 ? { 'proxy-authenticate': `${TICKET_SCHEME} realm="shoal-relay"` } : {}),
      connection: 'close',
    })
    res.end(text)
  }

  const answerSocket = (socket: Duplex, err: unknown) => {
    const { status, body, code } = errorText(err)
    const text = JSON.stringify(body)
    const extra = status === 407 ? `proxy-authenticate: ${TICKET_SCHEME} realm="shoal-relay"\r\n` : ''
    socket.end(
      `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? 'Error'}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(text)}\r\n${RELAY_ERROR_HEADER}: ${code}\r\n${extra}connection: close\r\n\r\n${text}`,
    )
  }

  const authErrors = new WeakSet<object>()
  const isAuthError = (err: unknown) => typeof err === 'object' && err !== null && authErrors.has(err)
  const authorize = async (req: IncomingMessage) => {
    const header = req.headers['proxy-authorization']
    try {
      return await auth.authorize(Array.isArray(header) ? header[0] : header)
    } catch (err) {
      const failure = authFailure(err)
      authErrors.add(failure)
      throw failure
    }
  }

  /** A ticket's budget bounds what this relay carries for it (others meter their own). */
  const spent = (who: RelayClient) => {
    const u = meter.get(who.ticket)
    if (u !== undefined && u.up + u.down >= who.budget)
      throw new RateLimitedError('the relay ticket budget is spent on this relay: get a new ticket')
  }

  // ---- absolute-form requests (plain http) ----
  interface Exchange {
    who: RelayClient
    session: string | undefined
    release: () => void
  }
  const exchanges = new WeakMap<IncomingMessage, Exchange>()

  proxy.on('proxyRes', (proxyRes, req, res) => {
    const ex = exchanges.get(req)
    if (ex === undefined) {
      proxyRes.destroy()
      return
    }
    const connection = String(proxyRes.headers.connection ?? '')
      .toLowerCase()
      .split(',')
      .map((s) => s.trim())
    const raw: string[] = []
    for (let i = 0; i < proxyRes.rawHeaders.length; i += 2) {
      const name = proxyRes.rawHeaders[i]!
      const lower = name.toLowerCase()
      if (HOP_BY_HOP.has(lower) || connection.includes(lower)) continue
      raw.push(name, proxyRes.rawHeaders[i + 1]!)
    }
    const head = raw.reduce((n, s) => n + s.length + 2, 16)
    const down = counter(ex.who, ex.session, 'down')
    down(head)
    res.writeHead(proxyRes.statusCode ?? 502, proxyRes.statusMessage, raw)
    meteredPipe(proxyRes, res, limits.buckets(ex.who.client), down, () => {})
  })

  const forward = async (req: IncomingMessage, res: ServerResponse) => {
    const target = req.url ?? ''
    if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(target)) {
      if ((target === '/health' || target.startsWith('/health?')) && req.method === 'GET') {
        const text = JSON.stringify({ status: 'ok', relay: true })
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': text.length })
        res.end(text)
        return
      }
      if (sessions !== undefined && (target === '/v1/sessions' || target === '/v1/receipts')) {
        await answerPayment(target === '/v1/sessions' ? 'sessions' : 'receipts', req, res, sessions)
        return
      }
      throw new InvalidArgumentError('this is a relay: send absolute-form http:// requests, or CONNECT')
    }
    const who = await authorize(req)
    let dest: URL
    try {
      dest = new URL(target)
    } catch {
      throw new InvalidArgumentError('the request target is not a URL')
    }
    if (dest.protocol === 'https:')
      throw new MethodNotAllowedError('use CONNECT for https destinations (the relay never sees their bytes)')
    if (dest.protocol !== 'http:')
      throw new InvalidArgumentError(`the relay forwards http only, not ${dest.protocol}`)
    const port = dest.port === '' ? 80 : Number(dest.port)
    if (dest.username !== '' || dest.password !== '') {
      const err = egressRefused('userinfo', 'absolute URLs with credentials are refused')
      refusal(err, { kind: 'forward', host: dest.hostname, port, who })
      throw err
    }
    spent(who)
    const release = limits.acquire(who.client)
    res.once('close', release)
    let decision: Awaited<ReturnType<typeof policy.check>>
    try {
      decision = await policy.check(dest.hostname, port)
    } catch (err) {
      refusal(err, { kind: 'forward', host: dest.hostname, port, who })
      throw err
    }
    const session = sessionOf(req)
    exchanges.set(req, { who, session, release })
    const named = String(req.headers.connection ?? '')
      .toLowerCase()
      .split(',')
      .map((h) => h.trim())
    for (const name of Object.keys(req.headers))
      if (HOP_BY_HOP.has(name) || named.includes(name)) delete req.headers[name]
    req.headers.host = dest.host
    req.url = `${dest.pathname}${dest.search}`
    // request line and headers the relay sends on the client's behalf, then the body
    const head = Object.entries(req.headers).reduce(
      (n, [k, v]) => n + k.length + String(v).length + 4,
      req.url.length + 16,
    )
    const up = counter(who, session, 'up')
    up(head)
    const body = meteredThrottle(limits.buckets(who.client), up)
    req.pipe(body)
    metrics?.requests.inc({ kind: 'forward' })
    proxy.web(
      req,
      res,
      {
        target: { protocol: 'http:', host: decision.address, port: decision.port } as unknown as string,
        buffer: body,
      },
      (err: NodeJS.ErrnoException) => {
        const code = err.code
        answer(
          res,
          code === 'ECONNRESET' && !res.headersSent && req.socket.destroyed
            ? new UpstreamError('client went away')
            : code === 'ETIMEDOUT' || code === 'ECONNRESET'
              ? new UpstreamTimeoutError(`destination ${decision.host}:${decision.port} did not answer`)
              : new UpstreamError(
                  `destination ${decision.host}:${decision.port} failed (${code ?? err.message})`,
                ),
        )
      },
    )
  }

  // ---- CONNECT tunnels ----
  const tunnel = async (req: IncomingMessage, client: Socket, head: Buffer) => {
    const who = await authorize(req).catch((err: unknown) => {
      refusal(err, { kind: 'connect' })
      throw err
    })
    const m = /^(.+):(\d{1,5})$/.exec(req.url ?? '')
    if (m === null) throw new InvalidArgumentError('CONNECT needs host:port')
    const host = m[1]!
    const port = Number(m[2])
    spent(who)
    const release = limits.acquire(who.client)
    client.once('close', release)
    let decision: Awaited<ReturnType<typeof policy.check>>
    try {
      decision = await policy.check(host, port)
    } catch (err) {
      refusal(err, { kind: 'connect', host, port, who })
      throw err
    }
    metrics?.requests.inc({ kind: 'connect' })
    // the download direction reads into one reused buffer (tunnel.ts)
    const downstream = tunnelDownstream()
    const upstream = net.connect({
      host: decision.address,
      port: decision.port,
      noDelay: true,
      onread: downstream.onread,
    })
    sockets.add(upstream)
    upstream.once('close', () => sockets.delete(upstream))
    // a client that leaves while the destination is still connecting takes the attempt along
    client.once('close', () => upstream.destroy())
    const connectTimer = setTimeout(
      () => upstream.destroy(new UpstreamTimeoutError('connect timeout')),
      options.connectTimeoutMs,
    )
    try {
      await once(upstream, 'connect')
    } catch (err) {
      throw new UpstreamError(`destination ${decision.host}:${decision.port} refused the tunnel`, {
        cause: err,
      })
    } finally {
      clearTimeout(connectTimer)
    }
    metrics?.tunnels.inc()
    client.write('HTTP/1.1 200 Connection Established\r\n\r\n')
    const idle = () => {
      client.destroy()
      upstream.destroy()
    }
    client.setTimeout(options.idleTimeoutMs, idle)
    upstream.setTimeout(options.idleTimeoutMs, idle)
    upstream.once('close', () => metrics?.tunnels.dec())
    const session = sessionOf(req)
    const up = counter(who, session, 'up')
    if (head.length > 0) {
      up(head.length)
      upstream.write(head)
    }
    meteredTunnel(
      client,
      upstream,
      downstream,
      limits.buckets(who.client),
      up,
      counter(who, session, 'down'),
      () => {},
    )
  }

  const server = http.createServer({ maxHeaderSize: options.maxHeaderBytes })
  server.headersTimeout = Math.min(10_000, options.idleTimeoutMs)
  server.requestTimeout = 0
  server.keepAliveTimeout = 5_000
  server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (stopping) {
      answer(res, new UpstreamError('relay is shutting down'))
      return
    }
    forward(req, res).catch((err: unknown) => {
      if (!refusalOf(err) && !isAuthError(err) && !isShoalError(err))
        logger.warn({ err: (err as Error).message }, 'relay request failed')
      if (isAuthError(err)) refusal(err, { kind: 'forward' })
      if (!req.readableEnded) req.resume()
      answer(res, err)
    })
  })
  server.on('connect', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    socket.on('error', () => socket.destroy())
    if (stopping) {
      answerSocket(socket, new UpstreamError('relay is shutting down'))
      return
    }
    tunnel(req, socket, head).catch((err: unknown) => {
      if (!socket.writable) return
      answerSocket(socket, err)
    })
  })
  server.on('clientError', (_err, socket) => {
    if (socket.writable)
      socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n')
  })

  return {
    options,
    get url() {
      return url
    },
    get publicUrl() {
      return options.publicUrl ?? url
    },
    get multiaddr() {
      return relayMultiaddr(options.publicUrl ?? url)
    },
    meter,
    metrics,
    async start() {
      server.listen(options.port, options.host)
      await once(server, 'listening')
      const address = server.address() as AddressInfo
      const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
      url = `http://${host}:${address.port}`
      const openings = policy.openings
      logger.info({ url, issuers: options.issuers.length }, 'relay listening')
      if (openings.cidrs.length > 0 || openings.ports.length > 0)
        logger.warn(openings, 'relay egress policy opened by the operator')
    },
    async stop() {
      if (stopping) return
      stopping = true
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      for (const s of sockets) s.destroy()
      upstreamAgent.destroy()
      proxy.close()
      await closed
      logger.info('relay stopped')
    },
  }
}
