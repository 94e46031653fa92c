/**
 * `createTracker`: the store, the node index, the registry, the probe loop, audits,
 * reports, sites, tickets and the HTTP API, composed; `start()` restores the registry
 * from the store and `stop()` drains requests, stops the loops and writes the last
 * state.
 */
import { randomInt } from 'node:crypto'
import { InvalidArgumentError, type RecordSigner } from '@shoal/protocol'
import type { Logger } from 'pino'
import type { Registry as PromRegistry } from 'prom-client'
import type { Dispatcher } from 'undici'
import { type ApiServices, createRoutes } from './api/routes.ts'
import { type Auditor, createAuditor } from './audit/auditor.ts'
import { dashboardRoutes, type TrackerDashboardComponents } from './dashboard/dashboard.ts'
import { createNodeDispatcher } from './http/client.ts'
import { type ApiServer, createApiServer } from './http/server.ts'
import { createMetrics, type TrackerMetrics } from './metrics.ts'
import { type ResolvedTrackerOptions, resolveTrackerOptions, type TrackerOptions } from './options.ts'
import { createProber, type ProbeOutcome, type Prober } from './probe/prober.ts'
import {
  createLibp2pMeshDialer,
  createMeshProber,
  type MeshDialer,
  type MeshProber,
  type MeshProbeTarget,
  meshProbeTarget,
} from './reachability/mesh-prober.ts'
import { createReachability } from './reachability/reachability.ts'
import { createReceiptIngest, type ReceiptIngest } from './receipts/ingest.ts'
import { createReceiptVerifier } from './receipts/verifier.ts'
import { createRegistry, type NodeMeta, type Registry } from './registry/registry.ts'
import { createRelayDirectory } from './relays/relays.ts'
import { createReportService, type ReportService } from './reports/reports.ts'
import { createNodeIndex, type NodeIndex } from './selection/index.ts'
import type { SettlementChain } from './settlement/chain.ts'
import { createSettler, type Settler } from './settlement/settler.ts'
import { createSiteService, type SiteService } from './sites/sites.ts'
import type { TrackerStore } from './store/types.ts'
import { createTicketIssuer, type TicketIssuer } from './tickets/issuer.ts'
import { createSelectionLog, type SelectionLog } from './tickets/selections.ts'

/** Store key of the placement seed (kept so placement survives restarts and is shared by replicas). */
export const PLACEMENT_SEED_KEY = 'placement-seed'
/** How often reports past `reportRetentionMs` are deleted. */
const PRUNE_INTERVAL_MS = 3_600_000

export interface TrackerComponents {
  /** Opened by `start`, closed by `stop`. */
  store: TrackerStore
  /** The tracker's key: signs tickets. */
  account: RecordSigner
  logger?: Logger
  /** Prometheus registry; metrics are off without one. */
  register?: PromRegistry
  /** Milliseconds since the epoch (tests pass a fake clock). */
  clock?: () => number
  /** HTTP client for probes and audits (default: an undici Agent honouring `allowPrivateUrls`). */
  dispatcher?: Dispatcher
  /** What settlement shows on `GET /dashboard` (settled epochs, payouts, more sections). */
  dashboard?: TrackerDashboardComponents
  /** The contracts (escrow balances, `postRoot`); without one, epochs are built but not posted. */
  chain?: SettlementChain
  /** What the mesh probe dials with (default: a libp2p client of its own); used only with `meshProbe`. */
  meshDialer?: MeshDialer
}

export interface Tracker {
  readonly options: ResolvedTrackerOptions
  /** `http://host:port` once started. */
  readonly url: string
  readonly store: TrackerStore
  readonly metrics: TrackerMetrics | undefined
  /** The node index (after `start`). */
  readonly index: NodeIndex<NodeMeta>
  readonly registry: Registry
  readonly prober: Prober
  /** The mesh probe, when `meshProbe` is on. */
  readonly meshProber: MeshProber | undefined
  readonly auditor: Auditor
  readonly sites: SiteService
  readonly reports: ReportService
  readonly tickets: TicketIssuer
  /** The (ticket, node) pairs selection handed out, flushed with the state. */
  readonly selections: SelectionLog
  readonly receipts: ReceiptIngest
  readonly settler: Settler
  start(options?: { signal?: AbortSignal }): Promise<void>
  /** Graceful: refuses new requests, lets in-flight ones finish (up to `shutdownGraceMs`), writes state. */
  stop(): Promise<void>
  /** Writes changed node state and pending selections to the store now; returns how many rows. */
  flush(): Promise<number>
}

/**
 * @example
 * const tracker = createTracker({ port: 7470, probeIntervalMs: 30_000 },
 *   { store: createSqliteStore({ path: 'data/tracker.db' }), account, logger })
 * await tracker.start()
 */
export function createTracker(init: TrackerOptions, components: TrackerComponents): Tracker {
  const options = resolveTrackerOptions(init)
  if (typeof components !== 'object' || components === null) {
    throw new InvalidArgumentError('tracker components must be an object')
  }
  const { store, account, logger } = components
  if (store === undefined) throw new InvalidArgumentError('components.store is required')
  if (account === undefined || typeof account.signTypedData !== 'function') {
    throw new InvalidArgumentError('components.account must be a viem local account (the tracker key)')
  }
  const clock = components.clock ?? Date.now
  const metrics = components.register !== undefined ? createMetrics(components.register) : undefined
  const ownDispatcher = components.dispatcher === undefined
  const dispatcher =
    components.dispatcher ??
    createNodeDispatcher({
      allowPrivateUrls: options.allowPrivateUrls,
      timeoutMs: Math.max(options.probeTimeoutMs, options.auditTimeoutMs),
    })

  let index: NodeIndex<NodeMeta> | undefined
  let api: ApiServer | undefined
  let flushTimer: NodeJS.Timeout | undefined
  let sweepTimer: NodeJS.Timeout | undefined
  let pruneTimer: NodeJS.Timeout | undefined
  let syncTimer: NodeJS.Timeout | undefined
  let started = false
  let flushing: Promise<number> | undefined
  const regions = new Set<string>(options.index.regions ?? [])
  const startedAt = clock()

  const liveIndex = (): NodeIndex<NodeMeta> => {
    if (index === undefined) throw new InvalidArgumentError('the tracker is not started')
    return index
  }
  // The index is made in start() (it needs the stored placement seed); services reach it lazily.
  const indexProxy = new Proxy({} as NodeIndex<NodeMeta>, {
    get: (_, key) => {
      const target = liveIndex() as unknown as Record<PropertyKey, unknown>
      const value = target[key]
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value
    },
  })

  let prober: Prober
  const relays = createRelayDirectory({ allowPrivateUrls: options.allowPrivateUrls }, { index: indexProxy })
  const meshOptions = options.meshProbe
  const reachability = createReachability(
    meshOptions === undefined
      ? {}
      : // a good probe is believed for two intervals and a timeout: one late probe is not a miss
        { verify: true, verifiedForMs: 2 * meshOptions.intervalMs + meshOptions.timeoutMs },
    { index: indexProxy, clock },
  )
  const meshProber =
    meshOptions === undefined
      ? undefined
      : createMeshProber(
          { ...meshOptions, jitter: options.probeJitter },
          {
            dialer:
              components.meshDialer ??
              createLibp2pMeshDialer({ maxConnections: 2 * meshOptions.concurrency + 16 }),
            clock,
            ...(logger !== undefined ? { logger } : {}),
            ...(metrics !== undefined ? { metrics } : {}),
            // a node whose URL answers is handed out with it: its mesh addresses wait until
            // the URL fails (then the next round dials them)
            skip: (node) => reachability.of(node).url,
            onResult: (node, outcome) => {
              reachability.noteProbe(node, outcome)
              // a node that stopped claiming (or heartbeating) is not dialled again
              if (wantedMeshTarget(node) === undefined) meshProber?.remove(node)
            },
          },
        )
  /** The last record's mesh addresses per node, parsed once per record. */
  const meshTargets = new Map<string, { json: string; target: MeshProbeTarget }>()
  /** What the mesh probe should dial for a node: its record's addresses while it claims `public` or `relayed`. */
  const wantedMeshTarget = (address: string): MeshProbeTarget | undefined => {
    const key = address.toLowerCase()
    const claim = reachability.claim(key)
    const json = index?.get(key)?.meta?.meshJson
    if ((claim !== 'public' && claim !== 'relayed') || json === undefined) return undefined
    const cached = meshTargets.get(key)
    if (cached?.json === json) return cached.target
    const { peerId, multiaddrs } = JSON.parse(`{${json}}`) as { peerId: string; multiaddrs: string[] }
    const target = meshProbeTarget(peerId, multiaddrs, options.allowPrivateUrls)
    meshTargets.set(key, { json, target })
    return target
  }
  /** Starts, updates or stops the mesh probe of a node after its record or its claim changed. */
  const syncMeshProbe = (address: string): void => {
    if (meshProber === undefined) return
    const target = wantedMeshTarget(address)
    if (target === undefined) {
      meshProber.remove(address)
      meshTargets.delete(address.toLowerCase())
      reachability.forgetProbe(address)
    } else if (meshProber.upsert(address, target)) reachability.forgetProbe(address)
  }
  const registry = createRegistry(
    {
      recordMaxAgeSeconds: options.recordMaxAgeSeconds,
      heartbeatSkewMs: options.heartbeatSkewMs,
      allowPrivateUrls: options.allowPrivateUrls,
      restoreGraceMs: options.probeIntervalMs,
    },
    {
      store,
      index: indexProxy,
      clock,
      ...(logger !== undefined ? { logger } : {}),
      ...(metrics !== undefined ? { metrics } : {}),
      onNode: (address, httpUrl, region, restored) => {
        regions.add(region)
        prober.upsert(address, httpUrl, { spread: restored })
        relays.set(address, liveIndex().get(address)?.meta?.relayUrl)
        syncMeshProbe(address)
      },
      onRemoved: (address) => {
        prober.remove(address)
        relays.delete(address)
        reachability.delete(address)
        meshProber?.remove(address)
        meshTargets.delete(address.toLowerCase())
      },
      onHeartbeat: (address, claim) => {
        reachability.note(address, claim)
        syncMeshProbe(address)
      },
    },
  )

  prober = createProber(
    {
      intervalMs: options.probeIntervalMs,
      concurrency: options.probeConcurrency,
      timeoutMs: options.probeTimeoutMs,
      jitter: options.probeJitter,
      verifyPerSecond: options.probeVerifyPerSecond,
      verifySample: options.probeVerifySample,
      proofSkewSeconds: options.healthProofSkewSeconds,
    },
    {
      dispatcher,
      clock,
      ...(logger !== undefined ? { logger } : {}),
      ...(metrics !== undefined ? { metrics } : {}),
      onResult: (node: string, outcome: ProbeOutcome) => {
        liveIndex().applyProbe(
          node,
          outcome.answered ? { answered: true, rttMs: outcome.rttMs } : { answered: false },
        )
        registry.markDirty(node)
      },
    },
  )

  const auditor = createAuditor(
    {
      intervalMs: options.auditIntervalMs,
      timeoutMs: options.auditTimeoutMs,
      maxRange: options.auditMaxRange,
    },
    {
      store,
      index: indexProxy,
      dispatcher,
      ...(logger !== undefined ? { logger } : {}),
      ...(metrics !== undefined ? { metrics } : {}),
      onIntegrityFailure: ({ node, cid, chunk, detail, source }) => {
        const idx = liveIndex()
        if (!idx.has(node)) return
        const { coolOffUntil, status } = idx.applyIntegrityFailure(node)
        registry.markDirty(node)
        metrics?.integrityFailures.inc({ source })
        logger?.warn(
          { node, cid, chunk, source, coolOffUntil, status },
          'proven integrity failure: node cooling off',
        )
        store.addIntegrityEvent({ node, cid, chunk, source, at: clock(), detail }).catch((err: unknown) => {
          logger?.error({ err: (err as Error).message }, 'could not record an integrity event')
        })
      },
    },
  )

  const reports = createReportService(
    {
      maxAgeSeconds: options.reportMaxAgeSeconds,
      clientRate: options.clientReportRate,
      lowStanding: options.lowStanding,
      lowStandingBudget: options.lowStandingBudget,
      rateLimitKeys: options.rateLimitKeys,
    },
    {
      store,
      index: indexProxy,
      clock,
      auditor,
      onApplied: (node) => registry.markDirty(node),
      ...(logger !== undefined ? { logger } : {}),
      ...(metrics !== undefined ? { metrics } : {}),
    },
  )
  const sites = createSiteService(
    {},
    {
      store,
      clock,
      ...(logger !== undefined ? { logger } : {}),
      ...(metrics !== undefined ? { metrics } : {}),
    },
  )
  const tickets = createTicketIssuer(
    {
      budget: options.ticketBudget,
      maxBudget: options.ticketMaxBudget,
      ttlSeconds: options.ticketTtlSeconds,
      epochSeconds: options.epochSeconds,
    },
    { store, account, clock, ...(metrics !== undefined ? { metrics } : {}) },
  )

  const selections = createSelectionLog({}, { store, clock, ...(metrics !== undefined ? { metrics } : {}) })

  const receipts = createReceiptIngest(
    { epochSeconds: options.epochSeconds, submitWindowSeconds: options.submitWindowSeconds },
    {
      store,
      clock,
      ...(logger !== undefined ? { logger } : {}),
      ...(metrics !== undefined ? { metrics } : {}),
    },
  )

  const settler = createSettler(
    {
      epochSeconds: options.epochSeconds,
      submitWindowSeconds: options.submitWindowSeconds,
      defaultPricePerGiB: options.pricePerGiB,
      prices: options.publisherPrices,
      maxClientFanout: options.maxClientFanout,
      intervalMs: options.settleIntervalMs,
    },
    {
      store,
      clock,
      verifier: createReceiptVerifier(
        options.verifyThreads !== undefined ? { threads: options.verifyThreads } : {},
      ),
      ...(components.chain !== undefined ? { chain: components.chain } : {}),
      ...(logger !== undefined ? { logger } : {}),
      flush: () => selections.flush(),
    },
  )

  const flush = async (): Promise<number> => {
    if (flushing !== undefined) await flushing.catch(() => 0)
    const started = performance.now()
    flushing = Promise.all([registry.flush(), selections.flush()]).then(([a, b]) => a + b)
    try {
      const n = await flushing
      if (n > 0) metrics?.stateFlushSeconds.observe((performance.now() - started) / 1000)
      return n
    } finally {
      flushing = undefined
    }
  }

  const scheduleFlush = (): void => {
    flushTimer = setTimeout(() => {
      flush()
        .catch((err: unknown) =>
          logger?.error({ err: (err as Error).message }, 'state flush failed; will retry'),
        )
        .finally(() => {
          if (started) scheduleFlush()
        })
    }, options.stateFlushIntervalMs)
    flushTimer.unref()
  }

  const tracker: Tracker = {
    options,
    get url() {
      return api?.url ?? ''
    },
    store,
    metrics,
    get index() {
      return liveIndex()
    },
    registry,
    prober,
    meshProber,
    auditor,
    sites,
    reports,
    tickets,
    selections,
    receipts,
    settler,

    async start(startOptions = {}) {
      if (started) return
      const { signal } = startOptions
      await store.open({ signal })
      try {
        let seed = options.index.seed
        if (seed === undefined) {
          const stored = await store.getMeta(PLACEMENT_SEED_KEY, { signal })
          seed = stored !== undefined ? Number(stored) : randomInt(0, 2 ** 32)
          if (stored === undefined) await store.setMeta(PLACEMENT_SEED_KEY, String(seed), { signal })
        }
        index = createNodeIndex<NodeMeta>({ ...options.index, seed }, { clock })
        const restored = await registry.restore({ signal })
        const services: ApiServices = {
          options,
          store,
          index: indexProxy,
          registry,
          sites,
          reports,
          tickets,
          selections,
          receipts,
          settler,
          prober,
          auditor,
          regions,
          relays,
          reachability,
          ...(components.register !== undefined ? { register: components.register } : {}),
          ...(metrics !== undefined ? { metrics } : {}),
          clock,
          startedAt,
        }
        api = createApiServer(
          {
            host: options.host,
            port: options.port,
            rateLimits: options.rateLimits,
            rateLimitKeys: options.rateLimitKeys,
            trustProxy: options.trustProxy,
            maxHeaderBytes: options.maxHeaderBytes,
            headersTimeoutMs: options.headersTimeoutMs,
            requestTimeoutMs: options.requestTimeoutMs,
          },
          {
            routes: [...createRoutes(services), ...dashboardRoutes(services, components.dashboard)],
            ...(logger !== undefined ? { logger } : {}),
            ...(metrics !== undefined ? { metrics } : {}),
          },
        )
        await api.listen()
        started = true
        prober.start()
        meshProber?.start()
        auditor.start()
        settler.start()
        scheduleFlush()
        sweepTimer = setInterval(() => liveIndex().sweep({ max: 10_000 }), options.probeIntervalMs)
        sweepTimer.unref()
        pruneTimer = setInterval(() => {
          store.pruneReports(clock() - options.reportRetentionMs).catch((err: unknown) => {
            logger?.error({ err: (err as Error).message }, 'pruning old reports failed')
          })
        }, PRUNE_INTERVAL_MS)
        pruneTimer.unref()
        if (options.syncIntervalMs > 0) {
          let syncing = false
          syncTimer = setInterval(() => {
            if (syncing) return
            syncing = true
            registry
              .sync()
              .catch((err: unknown) => logger?.error({ err: (err as Error).message }, 'replica sync failed'))
              .finally(() => {
                syncing = false
              })
          }, options.syncIntervalMs)
          syncTimer.unref()
        }
        logger?.info(
          { url: api.url, nodes: restored, store: store.kind, issuer: account.address },
          'tracker started',
        )
      } catch (err) {
        await api?.close(0).catch(() => {})
        await store.close().catch(() => {})
        throw err
      }
    },

    async stop() {
      if (!started) return
      started = false
      if (flushTimer !== undefined) clearTimeout(flushTimer)
      if (sweepTimer !== undefined) clearInterval(sweepTimer)
      if (pruneTimer !== undefined) clearInterval(pruneTimer)
      if (syncTimer !== undefined) clearInterval(syncTimer)
      await api?.close(options.shutdownGraceMs)
      await prober.stop()
      await meshProber?.stop()
      await auditor.stop()
      await settler.stop()
      try {
        await flush()
      } catch (err) {
        logger?.error({ err: (err as Error).message }, 'final state flush failed')
      }
      if (ownDispatcher) await dispatcher.close().catch(() => {})
      await store.close()
      logger?.info('tracker stopped')
    },

    flush,
  }
  return tracker
}
