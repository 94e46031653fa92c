/**
 * The edge node: composes the store, the content service, site manifests, the origin
 * cache and the HTTP server, and owns their lifecycle (start, graceful stop).
 */
import { once } from 'node:events'
import http, { type IncomingMessage, type ServerResponse } from 'node:http'
import https from 'node:https'
import net, { type AddressInfo } from 'node:net'
import { join } from 'node:path'
import { createTrackerClient } from '@shoal/client-sdk'
import {
  decodePurgeRequest,
  decodeSiteManifest,
  ForbiddenError,
  InvalidArgumentError,
  isShoalError,
  MethodNotAllowedError,
  NotFoundError,
  parseCid,
  ReplayError,
  signHealthProof,
  toErrorResponse,
  UnavailableError,
  verifyPurgeRequest,
} from '@shoal/protocol'
import pino, { type Logger } from 'pino'
import { Counter, Registry } from 'prom-client'
import type { LocalAccount } from 'viem/accounts'
import {
  DEFAULT_ORIGIN_SITE,
  type EdgeNodeOptions,
  type ResolvedEdgeNodeOptions,
  resolveOptions,
} from './config.ts'
import { type ContentService, createContentService } from './content/content-service.ts'
import { type ContentSource, originSource } from './content/sources.ts'
import { createNodeDashboard, type NodeDashboardComponents } from './dashboard/dashboard.ts'
import { readBody } from './http/body.ts'
import { IMMUTABLE, serveContent } from './http/content-handler.ts'
import { allowCrossOrigin, answerPreflight, PUBLIC_CORS_HEADERS } from './http/cors.ts'
import {
  createFastPath,
  type FastPath,
  type FastPathRequest,
  type FastPathResponder,
  type PreparedResponse,
  prepareResponse,
} from './http/fast-path.ts'
import { sendError, sendJson } from './http/respond.ts'
import { encodePath, type Route, routeOf } from './http/routes.ts'
import { createTokenBucket, type TokenBucket } from './limits/token-bucket.ts'
import {
  createMesh,
  type Mesh,
  type MeshComponents,
  resolveMeshInit,
  storeHoldings,
  trackerDiscovery,
  trackerReporter,
} from './mesh/index.ts'
import { createMetrics, type EdgeMetrics } from './metrics.ts'
import { createOriginCache, type OriginCache, type OriginTarget } from './origin/index.ts'
import { createReceiptBook, type ReceiptBook } from './receipts/book.ts'
import { answerPayment } from './receipts/http.ts'
import { createSessions, type Sessions } from './receipts/sessions.ts'
import { createTrackerIdentity } from './receipts/tracker-identity.ts'
import { createRelay, type Relay, type RelayComponents } from './relay/index.ts'
import {
  createManifestRegistry,
  type ManifestRegistry,
  type ManifestSource,
} from './sites/manifest-registry.ts'
import { createObjectStore, type MemoryEntry, type ObjectStore } from './store/index.ts'
import type { NodeFigures } from './tracker/announcer.ts'
import { createHttpUpstream, type HttpUpstream } from './upstream/http-upstream.ts'
import { createRawHttpUpstream, type RawHttpUpstream } from './upstream/raw-http-upstream.ts'

/** Largest manifest or purge body accepted. */
export const MAX_CONTROL_BODY_BYTES = 16 * 2 ** 20
export { MAX_RECEIPT_BODY_BYTES } from './receipts/http.ts'

/** How often expired payment sessions are dropped (ms). */
const SESSION_SWEEP_MS = 60_000

export interface EdgeNodeComponents {
  logger?: Logger
  /** The node's key: signs health challenges and identifies the node. */
  account?: LocalAccount
  /** Where manifests come from (the tracker client); none for a standalone node. */
  manifestSource?: ManifestSource
  /** Extra sources tried on content misses (peers), after the mesh. */
  contentSources?: ContentSource[]
  /** Replaces the mesh's peer discovery (default: the tracker's selection for a CID). */
  meshDiscover?: MeshComponents['discover']
  /** Replaces how bad mesh peers are reported (default: a signed report to the tracker). */
  meshReport?: MeshComponents['report']
  registry?: Registry
  /** What other parts show on `GET /dashboard` (peers, receipts, earnings, more sections). */
  dashboard?: Pick<NodeDashboardComponents, 'peers' | 'receipts' | 'earnings' | 'sections'>
  /** Test seams of the relay's egress policy (resolver, local networks). */
  relay?: Pick<RelayComponents, 'resolve' | 'localNetworks' | 'meter'>
}

export interface EdgeNode {
  readonly options: ResolvedEdgeNodeOptions
  /** The base URL the node listens on, once started. */
  readonly url: string
  readonly metrics: EdgeMetrics
  readonly registry: Registry
  readonly store: ObjectStore
  readonly content: ContentService
  readonly manifests: ManifestRegistry
  /** What the node reports in heartbeats: cache use and traffic since start. */
  figures(): NodeFigures
  /** The durable receipt book (docs/receipts.md): what settlement submits. */
  readonly receipts: ReceiptBook
  /** Open payment sessions and their metering. */
  readonly sessions: Sessions
  /** The relay, when `options.relay` enabled it (started and stopped with the node). */
  readonly relay: Relay | undefined
  /** The libp2p mesh; undefined when `mesh: false`. */
  readonly mesh: Mesh | undefined
  start(): Promise<void>
  /** Stops taking requests, lets in-flight ones finish within the grace period, persists the cache index. */
  stop(): Promise<void>
}

/**
 * @example
 * const node = createEdgeNode({ dataDir: '/var/lib/shoal', host: '127.0.0.1', port: 0, defaultOrigin: 'http://127.0.0.1:9000' })
 * await node.start()
 * console.log(node.url)
 */
export function createEdgeNode(init: EdgeNodeOptions, components: EdgeNodeComponents = {}): EdgeNode {
  const options = resolveOptions(init)
  const logger = components.logger ?? pino({ level: 'silent' })
  const registry = components.registry ?? new Registry()
  const metrics = createMetrics(registry)
  const storeLogger = {
    debug: (message: string, fields?: Record<string, unknown>) => logger.debug(fields ?? {}, message),
    info: (message: string, fields?: Record<string, unknown>) => logger.info(fields ?? {}, message),
    warn: (message: string, fields?: Record<string, unknown>) => logger.warn(fields ?? {}, message),
  }
  // an object can never be larger than the disk tier that holds it
  const maxObjectBytes = Math.min(options.maxObjectBytes, options.diskCacheBytes)
  const store = createObjectStore(
    {
      memory: { maxBytes: options.memoryCacheBytes, policy: options.memoryPolicy },
      // a cache can refetch: no fsync per object; after a crash, bodies that were not
      // synced are checked whole before they are served (see the store's README)
      disk: {
        dir: join(options.dataDir, 'cache'),
        maxBytes: options.diskCacheBytes,
        maxObjectBytes,
        durable: false,
      },
    },
    { logger: storeLogger, metrics },
  )
  const upstream: HttpUpstream = createHttpUpstream({
    connectTimeoutMs: options.upstreamConnectTimeoutMs,
    headersTimeoutMs: options.upstreamHeadersTimeoutMs,
    bodyTimeoutMs: options.upstreamBodyTimeoutMs,
  })
  // first misses of http: origins taken on the fast path go out through a raw keep-alive
  // client (src/upstream/raw-http-upstream.ts); everything else through undici
  const rawUpstream: RawHttpUpstream | undefined =
    options.fastMiss && options.tls === undefined
      ? createRawHttpUpstream({
          connectTimeoutMs: options.upstreamConnectTimeoutMs,
          headersTimeoutMs: options.upstreamHeadersTimeoutMs,
          bodyTimeoutMs: options.upstreamBodyTimeoutMs,
        })
      : undefined
  // one egress cap for HTTP bodies and chunks served over the mesh
  const egress: TokenBucket | undefined =
    options.egressBytesPerSecond === undefined
      ? undefined
      : createTokenBucket({ rate: options.egressBytesPerSecond })
  const tracker =
    options.trackerUrl === undefined ? undefined : createTrackerClient({ url: options.trackerUrl })
  // payment sessions and the receipt book: over HTTP, the relay's port and the mesh
  const receipts = createReceiptBook({ path: join(options.dataDir, 'receipts.db') })
  const sessions = createSessions(
    { maxSessions: options.maxSessions },
    {
      book: receipts,
      identity: createTrackerIdentity({
        trackerAddress: options.trackerAddress,
        trackerUrl: options.trackerUrl,
        epochSeconds: options.epochSeconds,
      }),
      node: components.account?.address,
      metrics,
      logger,
    },
  )
  // the mesh: misses try neighbours that hold the CID before any origin
  const mesh: Mesh | undefined =
    options.mesh === false
      ? undefined
      : createMesh(
          { ...resolveMeshInit(options.mesh, options.host, options.port), keyDir: options.dataDir },
          {
            holdings: storeHoldings(store),
            logger: logger.child({ component: 'mesh' }),
            onBytes: (direction, bytes) => metrics.meshBytes.inc({ direction }, bytes),
            sessions,
            ...(egress === undefined ? {} : { egress }),
            ...(components.meshDiscover !== undefined
              ? { discover: components.meshDiscover }
              : tracker !== undefined
                ? {
                    discover: trackerDiscovery(
                      tracker,
                      options.mesh.region === undefined ? {} : { region: options.mesh.region },
                    ),
                  }
                : {}),
            ...(components.meshReport !== undefined
              ? { report: components.meshReport }
              : tracker !== undefined && components.account !== undefined
                ? { report: trackerReporter(components.account, tracker) }
                : {}),
          },
        )
  const meshSources = mesh === undefined ? [] : [mesh.source]
  const content = createContentService(
    { maxObjectBytes },
    { store, logger, metrics, sources: [...meshSources, ...(components.contentSources ?? [])] },
  )
  // site manifests come from the tracker when the node has one
  const manifestSource = components.manifestSource ?? tracker
  const manifests = createManifestRegistry(
    { dir: join(options.dataDir, 'manifests') },
    { logger, ...(manifestSource === undefined ? {} : { source: manifestSource }) },
  )
  const origins: OriginCache = createOriginCache(
    { viaName: options.viaName, maxObjectBytes, diskAdmission: options.diskAdmission },
    { store, upstream, logger, metrics, ...(rawUpstream === undefined ? {} : { fastUpstream: rawUpstream }) },
  )
  const originSites = new Map(options.sites.map((site) => [site.name, site]))
  /** Origins without a trailing slash, as targets carry them (computed once, not per request). */
  const originBases = new Map(options.sites.map((site) => [site.name, site.origin.replace(/\/$/, '')]))
  const defaultOriginBase = options.defaultOrigin?.replace(/\/$/, '')
  /** The name the `--origin` site is cached and purged under. */
  const DEFAULT_SITE = DEFAULT_ORIGIN_SITE
  const originTarget = (site: string, origin: string, path: string, query: string): OriginTarget => ({
    site,
    origin: origin.replace(/\/$/, ''),
    path: `${path === '/' ? '/' : encodePath(path)}${query}`,
  })

  let sweeper: NodeJS.Timeout | undefined

  const seenPurgeNonces = new Map<string, number>()
  let stopping = false
  let url = ''
  // relayed bytes count against the node's egress cap too
  const relay: Relay | undefined =
    options.relay === undefined
      ? undefined
      : createRelay(options.relay, {
          ...components.relay,
          logger: logger.child({ component: 'relay' }),
          registry,
          sessions,
          ...(egress !== undefined ? { buckets: [egress] } : {}),
        })

  const routeName = (route: Route | undefined): string => route?.kind ?? 'invalid'
  /** Routes any web page may read (CORS): content by CID, its leaves, sites served from a manifest. */
  const isPublicRoute = (route: Route): boolean =>
    route.kind === 'content' ||
    route.kind === 'leaves' ||
    (route.kind === 'site' && !originSites.has(route.site))

  const serveSite = async (req: IncomingMessage, res: ServerResponse, site: string, path: string) => {
    const resolved = await manifests.resolve(site, path.endsWith('/') ? `${path}index.html` : path)
    if (resolved === undefined) throw new NotFoundError(`no ${path} in site "${site}"`)
    const { manifest, entry } = resolved
    const cid = parseCid(entry.cid)
    await serveContent(
      req,
      res,
      {
        cid,
        contentType: entry.contentType || 'application/octet-stream',
        cacheControl: entry.cacheControl || 'public, max-age=60',
        ...(manifest.origin === ''
          ? {}
          : { sources: [...meshSources, originSource(upstream, manifest.origin, entry.path)] }),
      },
      { content, ...(egress ? { egress } : {}), onBytes: meterFor(req) },
    )
  }

  /** Slow-path traffic (the fast path keeps its own counters). */
  const served = { requests: 0, bytes: 0, connections: 0 }
  const onBytes = (n: number) => {
    served.bytes += n
    metrics.responseBytes.inc({ route: 'content' }, n)
  }
  /** Counts a response's body bytes, and meters them for its payment session when it names one. */
  const meterFor = (req: IncomingMessage): ((n: number) => void) => {
    const session = req.headers['shoal-session']
    if (typeof session !== 'string') return onBytes
    return (n) => {
      onBytes(n)
      sessions.meter(session, n)
    }
  }

  const purge = async (req: IncomingMessage, res: ServerResponse) => {
    const signed = decodePurgeRequest(await readBody(req, MAX_CONTROL_BODY_BYTES))
    const request = await verifyPurgeRequest(signed, { maxAgeSeconds: options.purgeMaxAgeSeconds })
    const owner =
      request.site === DEFAULT_SITE
        ? options.defaultOriginPublisher
        : originSites.get(request.site)?.publisher
    if (owner === undefined || owner.toLowerCase() !== request.publisher.toLowerCase()) {
      throw new ForbiddenError(`purge of site "${request.site}" is not signed by its publisher`)
    }
    const now = Date.now()
    for (const [nonce, at] of seenPurgeNonces)
      if (now - at > options.purgeMaxAgeSeconds * 2000) seenPurgeNonces.delete(nonce)
    if (seenPurgeNonces.has(request.nonce)) throw new ReplayError('this purge request was already applied')
    seenPurgeNonces.set(request.nonce, now)
    const removed = await origins.purge({
      site: request.site,
      paths: request.paths,
      prefixes: request.prefixes,
    })
    logger.info({ site: request.site, removed }, 'purge applied')
    sendJson(res, 200, { purged: removed })
  }

  /**
   * `GET /health[?challenge=0x…]`: with a challenge, the answer carries a HealthProof
   * signed by the node key, so a tracker knows this node (not a proxy) is alive.
   */
  const health = async (target: string) => {
    const challenge = new URLSearchParams(target.slice(target.indexOf('?') + 1)).get('challenge')
    const account = components.account
    if (challenge === null || !target.includes('?')) {
      return { status: 'ok', ...(account ? { node: account.address } : {}) }
    }
    if (!/^0x[0-9a-f]{64}$/.test(challenge)) {
      throw new InvalidArgumentError('challenge must be 0x followed by 64 lowercase hex digits')
    }
    if (account === undefined) throw new UnavailableError('this node has no key to answer challenges with')
    const proof = await signHealthProof(account, {
      node: account.address,
      challenge: challenge as `0x${string}`,
      timestamp: Math.floor(Date.now() / 1000),
    })
    return { status: 'ok', node: account.address, proof }
  }

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    let route: Route | undefined
    res.once('finish', () => {
      served.requests++
      metrics.requests.inc({ route: routeName(route), status: String(res.statusCode) })
    })
    try {
      if (stopping) throw new UnavailableError('node is shutting down')
      route = routeOf(req.url ?? '/', { defaultOrigin: options.defaultOrigin !== undefined })
      const method = req.method ?? 'GET'
      const readOnly = method === 'GET' || method === 'HEAD'
      if (isPublicRoute(route) && (readOnly || method === 'OPTIONS')) {
        // content by CID: any web page may read it (the SDK verifies it in the browser too)
        allowCrossOrigin(res)
        if (method === 'OPTIONS') {
          answerPreflight(res, 'GET, HEAD')
          return
        }
      }
      switch (route.kind) {
        case 'health':
          if (!readOnly) throw new MethodNotAllowedError('use GET /health')
          sendJson(res, 200, await health(req.url ?? '/health'))
          return
        case 'metrics':
          if (!readOnly) throw new MethodNotAllowedError('use GET /metrics')
          metrics.cacheBytes.set({ tier: 'memory' }, store.stats().memory.bytes)
          metrics.cacheBytes.set({ tier: 'disk' }, store.stats().disk.bytes)
          if (mesh !== undefined) {
            metrics.meshPeers.set({ state: 'connected' }, mesh.neighbours().length)
            metrics.meshPeers.set({ state: 'banned' }, mesh.banned().length)
          }
          res.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' })
          res.end(await registry.metrics())
          return
        case 'content':
          if (method === 'PUT') {
            if (options.acceptPushes === 'manifests' && !manifests.hasCid(route.cid.text)) {
              throw new ForbiddenError(
                'this node stores pushes only of content named by a site manifest it holds',
              )
            }
            const created = await content
              .push(route.cid, req as AsyncIterable<Uint8Array>)
              .catch((err: unknown) => {
                // wrong bytes in a push are the client's error (422), not an upstream's (502)
                if (isShoalError(err) && err.code === 'SHOAL_ERR_INTEGRITY') {
                  sendJson(res, 422, toErrorResponse(err).body)
                  return undefined
                }
                throw err
              })
            if (created !== undefined)
              sendJson(res, created ? 201 : 200, { cid: route.cid.text, stored: true })
            return
          }
          if (!readOnly) throw new MethodNotAllowedError('use GET, HEAD or PUT on /c/<cid>')
          await serveContent(
            req,
            res,
            { cid: route.cid, contentType: 'application/octet-stream', cacheControl: IMMUTABLE },
            { content, ...(egress ? { egress } : {}), onBytes: meterFor(req) },
          )
          return
        case 'leaves': {
          if (!readOnly) throw new MethodNotAllowedError('use GET /c/<cid>/leaves')
          const leaves = await content.leaves(route.cid)
          res.writeHead(200, {
            'content-type': 'application/octet-stream',
            'content-length': leaves.length,
            'cache-control': IMMUTABLE,
            etag: `"${route.cid.text}.leaves"`,
          })
          if (method !== 'HEAD') meterFor(req)(leaves.length)
          res.end(method === 'HEAD' ? undefined : leaves)
          return
        }
        case 'sessions':
        case 'receipts':
          await answerPayment(route.kind, req, res, sessions)
          return
        case 'manifest': {
          if (method === 'PUT') {
            const manifest = await manifests.accept(
              decodeSiteManifest(await readBody(req, MAX_CONTROL_BODY_BYTES)),
            )
            sendJson(res, 200, { site: manifest.site, sequence: manifest.sequence })
            return
          }
          if (!readOnly) throw new MethodNotAllowedError('use GET or PUT on /manifests/<site>')
          const manifest = manifests.get(route.site)
          if (manifest === undefined) throw new NotFoundError(`no manifest for site "${route.site}"`)
          sendJson(res, 200, {
            site: manifest.site,
            sequence: manifest.sequence,
            entries: manifest.entries.length,
          })
          return
        }
        case 'dashboard':
          await dashboard.handle(req, res, route.path)
          return
        case 'purge':
          if (method !== 'POST') throw new MethodNotAllowedError('use POST /admin/purge')
          await purge(req, res)
          return
        case 'site': {
          const originSite = originSites.get(route.site)
          if (originSite !== undefined) {
            await origins.handle(
              req,
              res,
              originTarget(route.site, originSite.origin, route.path, route.query),
            )
            return
          }
          if (!readOnly) throw new MethodNotAllowedError('sites served from manifests are read-only')
          await serveSite(req, res, route.site, route.path)
          return
        }
        case 'default-origin':
          await origins.handle(
            req,
            res,
            originTarget(DEFAULT_SITE, options.defaultOrigin!, route.path, route.query),
          )
          return
        case 'not-found':
          throw new NotFoundError('no such resource on this node')
      }
    } catch (err) {
      if (req.readableEnded === false) req.resume()
      sendError(res, err)
    }
  }

  // node:http answers everything but plain memory-tier hits; over plain HTTP a narrow
  // hand-written HTTP/1.1 fast path answers those first (see src/http/fast-path.ts)
  const server =
    options.tls === undefined
      ? http.createServer({ maxHeaderSize: options.maxHeaderBytes })
      : https.createServer({
          maxHeaderSize: options.maxHeaderBytes,
          cert: options.tls.cert,
          key: options.tls.key,
        })
  server.headersTimeout = options.headersTimeoutMs
  server.requestTimeout = options.requestTimeoutMs
  server.keepAliveTimeout = options.keepAliveTimeoutMs
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch((err: unknown) => {
      logger.error({ err: (err as Error).message }, 'request handler failed')
      if (!res.headersSent) sendError(res, err)
      else res.destroy()
    })
  })
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (!socket.writable) return
    const status =
      err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400
    const code =
      status === 431
        ? 'SHOAL_ERR_HEADERS_TOO_LARGE'
        : status === 408
          ? 'SHOAL_ERR_TIMEOUT'
          : 'SHOAL_ERR_INVALID_ARGUMENT'
    const body = JSON.stringify({ error: { code, message: http.STATUS_CODES[status] } })
    socket.end(
      `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    )
  })

  const prepared = new WeakMap<MemoryEntry, PreparedResponse>()
  const contentHit = (
    key: string,
    contentType: string,
    cacheControl: string,
    cidText: string,
  ): PreparedResponse | undefined => {
    const entry = store.memory.get(key)
    if (entry === undefined) return undefined
    let response = prepared.get(entry)
    if (response === undefined) {
      response = prepareResponse({
        headers: {
          etag: `"${cidText}"`,
          'cache-control': cacheControl,
          'content-type': contentType,
          'accept-ranges': 'bytes',
          'x-content-type-options': 'nosniff',
          ...PUBLIC_CORS_HEADERS,
        },
        body: entry.body,
      })
      prepared.set(entry, response)
    }
    return response
  }
  /** Raw paths whose decoded-and-re-encoded form is themselves: the fast path's keys match the slow path's. */
  const PLAIN_PATH = /^(?:\/[A-Za-z0-9\-_~!*'()@:]+(?:\.[A-Za-z0-9\-_~!*'()@:]+)*)*\/?$/
  const lookup = (req: FastPathRequest): PreparedResponse | FastPathResponder | undefined => {
    if (stopping) return undefined
    const target = req.path
    const q = target.indexOf('?')
    const path = q < 0 ? target : target.slice(0, q)
    let hit: PreparedResponse | undefined
    /** Content-addressed hits (not origin-pull ones) are what payment sessions meter. */
    let metered = true
    /** The origin-pull target when the request is one (a miss may then be taken here). */
    let pull: OriginTarget | undefined
    let pullRoute = 'default-origin'
    if (path.startsWith('/c/')) {
      if (q >= 0) return undefined
      const text = path.slice(3)
      hit = contentHit(`cid:${text}`, 'application/octet-stream', IMMUTABLE, text)
    } else if (path.startsWith('/s/')) {
      const slash = path.indexOf('/', 3)
      if (slash < 0 || !PLAIN_PATH.test(path)) return undefined
      const site = path.slice(3, slash)
      const rest = path.slice(slash)
      const originBase = originBases.get(site)
      if (originBase !== undefined) {
        metered = false
        pull = { site, origin: originBase, path: `${rest}${q < 0 ? '' : target.slice(q)}` }
        pullRoute = 'site'
        hit = origins.peekHit(pull, req.header)
      } else {
        if (q >= 0) return undefined
        const resolved = manifests.peek(site, rest)
        if (resolved === undefined) return undefined
        const { entry } = resolved
        hit = contentHit(
          `cid:${entry.cid}`,
          entry.contentType || 'application/octet-stream',
          entry.cacheControl || 'public, max-age=60',
          entry.cid,
        )
      }
    } else if (defaultOriginBase !== undefined && PLAIN_PATH.test(path) && !isReservedPath(path)) {
      metered = false
      pull = { site: DEFAULT_SITE, origin: defaultOriginBase, path: target }
      hit = origins.peekHit(pull, req.header)
    }
    if (hit === undefined) {
      // a plain first miss streams from the origin on the fast path too (egress-capped
      // nodes take the slow path, which waits for tokens)
      if (pull === undefined || egress !== undefined) return undefined
      const respond = origins.missResponder(pull, req)
      if (respond === undefined) return undefined
      const route = pullRoute
      return (res) => {
        res.once('finish', () => metrics.requests.inc({ route, status: String(res.statusCode) }))
        respond(res)
      }
    }
    // the egress cap holds on the fast path too: without tokens, the slow path waits for them
    if (
      egress !== undefined &&
      !egress.tryTakeAll(hit.head.length + (req.method === 'HEAD' ? 0 : hit.body.length))
    ) {
      return undefined
    }
    // content bodies written for a payment session are metered (the fast path writes the hit next)
    if (metered && sessions.size > 0 && req.method !== 'HEAD') {
      const session = req.header('shoal-session')
      if (session !== undefined) sessions.meter(session, hit.body.length)
    }
    return hit
  }
  const fastPath: FastPath | undefined =
    options.tls === undefined
      ? createFastPath(
          {
            maxHeaderBytes: options.maxHeaderBytes,
            headersTimeoutMs: options.headersTimeoutMs,
            keepAliveTimeoutMs: options.keepAliveTimeoutMs,
            sendTimeoutMs: options.sendTimeoutMs,
          },
          { fallback: server, lookup, logger: storeLogger },
        )
      : undefined
  if (fastPath !== undefined) {
    // the fast path keeps plain counters (no per-request metric cost); export them on scrape
    const counters = fastPath.counters
    const exported = [
      [
        'shoal_edge_fast_path_responses_total',
        'Responses answered by the HTTP/1.1 fast path (memory-tier hits)',
        () => counters.requests,
      ],
      [
        'shoal_edge_fast_path_bytes_total',
        'Bytes (heads and bodies) written by the fast path',
        () => counters.bytes,
      ],
      [
        'shoal_edge_fast_path_streamed_total',
        'Streamed responses begun by the HTTP/1.1 fast path (origin-pull misses)',
        () => counters.streamed,
      ],
      [
        'shoal_edge_fast_path_handoffs_total',
        'Connections handed from the fast path to node:http',
        () => counters.handoffs,
      ],
    ] as const
    for (const [name, help, read] of exported) {
      new Counter({
        name,
        help,
        registers: [registry],
        collect() {
          this.reset()
          this.inc(read())
        },
      })
    }
  }
  const dashboard = createNodeDashboard(
    {},
    {
      // what the node itself knows: its neighbours and its receipt book (callers may override)
      ...(mesh === undefined
        ? {}
        : { peers: () => ({ count: mesh.neighbours().length, neighbours: mesh.neighbours() }) }),
      receipts: () => {
        const epochs = receipts.totals()
        return {
          receipts: epochs.reduce((n, e) => n + e.receipts, 0),
          bytes: epochs.reduce((n, e) => n + e.bytes, 0),
          epochs,
        }
      },
      ...components.dashboard,
      metrics,
      store,
      ...(fastPath === undefined
        ? {}
        : {
            extraServedBytes: () => fastPath.counters.bytes,
            extraCacheHits: () => fastPath.counters.requests,
          }),
      ...(components.account === undefined ? {} : { address: components.account.address }),
      url: () => url,
    },
  )
  const listener: net.Server =
    fastPath === undefined ? server : net.createServer({ noDelay: true }, fastPath.accept)
  listener.on(options.tls === undefined ? 'connection' : 'secureConnection', (socket: net.Socket) => {
    served.connections++
    socket.once('close', () => served.connections--)
  })

  return {
    options,
    get url() {
      return url
    },
    metrics,
    registry,
    store,
    content,
    manifests,
    receipts,
    sessions,

    figures() {
      // every cached object is on disk; the memory tier holds copies of hot ones
      const { disk } = store.stats()
      return {
        cacheBytes: disk.bytes,
        cacheObjects: disk.objects,
        servedBytes: served.bytes + (fastPath?.counters.bytes ?? 0),
        servedRequests:
          served.requests + (fastPath?.counters.requests ?? 0) + (fastPath?.counters.streamed ?? 0),
        connections: served.connections,
      }
    },
    relay,
    mesh,

    async start() {
      await store.start()
      await manifests.load()
      await receipts.open()
      sessions.restore()
      sweeper = setInterval(() => sessions.sweep(), SESSION_SWEEP_MS)
      sweeper.unref()
      listener.listen(options.port, options.host)
      await once(listener, 'listening')
      dashboard.start()
      await relay?.start()
      const address = listener.address() as AddressInfo
      const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
      url = `${options.tls === undefined ? 'http' : 'https'}://${host}:${address.port}`
      await mesh?.start()
      logger.info(
        { url, memoryCacheBytes: options.memoryCacheBytes, diskCacheBytes: options.diskCacheBytes },
        'edge node listening',
      )
    },

    async stop() {
      if (stopping) return
      stopping = true
      dashboard.stop()
      await relay?.stop()
      const closed = new Promise<void>((resolve) => listener.close(() => resolve()))
      server.closeIdleConnections()
      const grace = AbortSignal.timeout(options.shutdownGraceMs)
      const deadline = new Promise<void>((resolve) =>
        grace.addEventListener('abort', () => resolve(), { once: true }),
      )
      await Promise.race([
        Promise.all([closed, fastPath?.close({ signal: grace }).catch(() => {})]),
        deadline,
      ])
      fastPath?.closeAllConnections()
      server.closeAllConnections()
      await closed
      await Promise.race([
        origins.idle(),
        new Promise((resolve) => setTimeout(resolve, options.shutdownGraceMs).unref()),
      ])
      await mesh?.stop()
      await upstream.close()
      await rawUpstream?.close()
      await store.close()
      clearInterval(sweeper)
      receipts.close()
      logger.info('edge node stopped')
    },
  }
}

/** Operator routes the default origin never shadows on the fast path. */
function isReservedPath(path: string): boolean {
  return (
    path === '/health' ||
    path === '/metrics' ||
    path === '/dashboard' ||
    path.startsWith('/dashboard/') ||
    path === '/v1/sessions' ||
    path === '/v1/receipts' ||
    path.startsWith('/admin/') ||
    path.startsWith('/manifests/')
  )
}
