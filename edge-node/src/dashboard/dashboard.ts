/**
 * The node's dashboard: `GET /dashboard` (a page) with its script and style and the
 * shared kit's (`@shoal/dashboard-kit`: strict CSP, no other requests), and
 * `/dashboard/data.json` (what the page shows, for scripts too).
 *
 * `data.json` is versioned (`schema`) and only grows: readers ignore fields they do not
 * know. Parts of the node that land later fill their section through a provider in the
 * components (`peers`, `receipts`, `earnings`); until then the section is `null` and the
 * page says "not available yet". Any other provider in `sections` appears under its
 * name and the page lists its fields.
 *
 * @example
 * const dashboard = createNodeDashboard({}, { metrics, store, servedBytes: () => 0, cacheHits: () => 0 })
 * dashboard.start()
 * await dashboard.handle(req, res, '/dashboard/data.json')
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createDashboardFiles, sendDashboardFile } from '@shoal/dashboard-kit'
import { MethodNotAllowedError, NotFoundError } from '@shoal/protocol'
import type { EdgeMetrics } from '../metrics.ts'
import type { ObjectStore } from '../store/index.ts'
import {
  type CounterSeries,
  type CounterSeriesInit,
  createCounterSeries,
  type SeriesPoint,
} from './series.ts'

/** Version of `data.json`'s shape; bumped only when a field changes meaning or goes away. */
export const DASHBOARD_SCHEMA = 1

export interface NodeDashboardInit extends CounterSeriesInit {}

type SectionProvider = () => unknown | Promise<unknown>

export interface NodeDashboardComponents {
  metrics: EdgeMetrics
  store: ObjectStore
  /** Bytes written to clients so far that the metrics do not count (the fast path's). */
  extraServedBytes?: () => number
  /** Cache hits the metrics do not count (the fast path's). */
  extraCacheHits?: () => number
  /** The node's address, when it has a key. */
  address?: string
  /** The node's base URL (known once listening). */
  url?: () => string
  /** Peers the node is connected to (the mesh); `null` in the JSON without it. */
  peers?: () => { count: number } & Record<string, unknown>
  /** Receipt book figures (sessions, bytes acknowledged…); `null` without it. */
  receipts?: SectionProvider
  /** Earnings (tokens claimed, pending…); `null` without it. */
  earnings?: SectionProvider
  /** More sections, by name. */
  sections?: Record<string, SectionProvider>
  clock?: () => number
}

export interface NodeDashboardData {
  schema: typeof DASHBOARD_SCHEMA
  generatedAt: number
  node: { address: string | null; url: string; startedAt: number; uptimeSeconds: number }
  traffic: { bucketSeconds: number; totalBytes: number; windowBytes: number; points: SeriesPoint[] }
  cache: {
    hits: number
    misses: number
    /** hits ÷ (hits + misses); `null` before the first lookup. */
    hitRatio: number | null
    tiers: { tier: 'memory' | 'disk'; bytes: number; maxBytes: number; objects: number }[]
  }
  peers: ({ count: number } & Record<string, unknown>) | null
  receipts: unknown
  earnings: unknown
  [section: string]: unknown
}

export interface NodeDashboard {
  /** Starts sampling (every bucket). */
  start(): void
  stop(): void
  data(): Promise<NodeDashboardData>
  /** Answers a request under `/dashboard`. */
  handle(req: IncomingMessage, res: ServerResponse, path: string): Promise<void>
}

async function sum(counter: { get(): Promise<{ values: { value: number }[] }> }): Promise<number> {
  let total = 0
  for (const { value } of (await counter.get()).values) total += value
  return total
}

export function createNodeDashboard(
  init: NodeDashboardInit,
  components: NodeDashboardComponents,
): NodeDashboard {
  const clock = components.clock ?? Date.now
  const served: CounterSeries = createCounterSeries(init, { clock })
  const startedAt = clock()
  const files = createDashboardFiles(new URL('./assets/', import.meta.url), {
    title: 'Shoal edge node',
    facts: [
      { label: 'Node', id: 'node-address', code: true },
      { label: 'Up', id: 'uptime' },
    ],
  })
  let timer: NodeJS.Timeout | undefined

  const servedBytes = async () =>
    (await sum(components.metrics.responseBytes)) + (components.extraServedBytes?.() ?? 0)
  const sample = async () => served.observe(await servedBytes())

  const data = async (): Promise<NodeDashboardData> => {
    const totalBytes = await servedBytes()
    served.observe(totalBytes)
    const points = served.points()
    const hits = (await sum(components.metrics.cacheHits)) + (components.extraCacheHits?.() ?? 0)
    const misses = await sum(components.metrics.cacheMisses)
    const stats = components.store.stats()
    const now = clock()
    const out: NodeDashboardData = {
      schema: DASHBOARD_SCHEMA,
      generatedAt: now,
      node: {
        address: components.address ?? null,
        url: components.url?.() ?? '',
        startedAt,
        uptimeSeconds: Math.floor((now - startedAt) / 1000),
      },
      traffic: {
        bucketSeconds: served.bucketMs / 1000,
        totalBytes,
        windowBytes: points.reduce((a, p) => a + p.value, 0),
        points,
      },
      cache: {
        hits,
        misses,
        hitRatio: hits + misses === 0 ? null : hits / (hits + misses),
        tiers: (['memory', 'disk'] as const).map((tier) => ({
          tier,
          bytes: stats[tier].bytes,
          maxBytes: stats[tier].maxBytes,
          objects: stats[tier].objects,
        })),
      },
      peers: components.peers?.() ?? null,
      receipts: (await components.receipts?.()) ?? null,
      earnings: (await components.earnings?.()) ?? null,
    }
    for (const [name, provider] of Object.entries(components.sections ?? {})) {
      if (!(name in out)) out[name] = (await provider()) ?? null
    }
    return out
  }

  return {
    start() {
      if (timer !== undefined) return
      void sample().catch(() => {})
      timer = setInterval(() => void sample().catch(() => {}), served.bucketMs)
      timer.unref()
    },
    stop() {
      clearInterval(timer)
      timer = undefined
    },
    data,
    async handle(req, res, path) {
      const method = req.method ?? 'GET'
      if (method !== 'GET' && method !== 'HEAD') throw new MethodNotAllowedError('the dashboard is read-only')
      const head = method === 'HEAD'
      if (path === '/dashboard/data.json') {
        sendDashboardFile(
          res,
          'application/json; charset=utf-8',
          Buffer.from(JSON.stringify(await data())),
          head,
        )
        return
      }
      const file = await files.get(path)
      if (file === undefined) throw new NotFoundError(`no ${path} in the dashboard`)
      sendDashboardFile(res, file.type, file.body, head)
    },
  }
}
