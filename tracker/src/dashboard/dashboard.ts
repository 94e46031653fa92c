/**
 * The network dashboard: `GET /dashboard` (a page) with its script and style and the
 * shared kit's (`@shoal/dashboard-kit`: strict CSP, no other requests), and
 * `GET /dashboard/data.json` (what the page shows).
 *
 * `data.json` is versioned (`schema`) and only grows: readers ignore fields they do not
 * know. Settlement fills `epochs.settled` and `payouts` through providers in the
 * tracker's components (`dashboard: { settledEpochs, payouts, sections }`); until then
 * they are `null` and the page says "not available yet".
 *
 * @example
 * const routes = [...createRoutes(services), ...dashboardRoutes(services, {})]
 */
import { createDashboardFiles, DASHBOARD_FILE_PATHS, sendDashboardFile } from '@shoal/dashboard-kit'
import { NotFoundError } from '@shoal/protocol'
import type { ApiServices } from '../api/routes.ts'
import type { Route } from '../http/server.ts'
import type { Reachability } from '../reachability/reachability.ts'
import { SCORE_FORMULA, type ScoreComponents } from '../scoring/index.ts'

/** Version of `data.json`'s shape; bumped only when a field changes meaning or goes away. */
export const DASHBOARD_SCHEMA = 1

/** Nodes listed at most (best score first); `totals` always count them all. */
export const DASHBOARD_MAX_NODES = 500

type Provider = () => unknown | Promise<unknown>

export interface TrackerDashboardComponents {
  /** Settled epochs (number, totals, root…), newest first; `null` without it. */
  settledEpochs?: Provider
  /** Payouts (per node, per epoch, claimed…); `null` without it. */
  payouts?: Provider
  /** More sections, by name. */
  sections?: Record<string, Provider>
}

export interface DashboardNode {
  node: string
  region: string
  status: string
  eligible: boolean
  score: number
  components: Omit<ScoreComponents, 'score'>
  latencyMs: number | null
  throughput: number | null
  successes: number
  failures: number
  integrityFailures: number
  capacity: number
  heartbeatAt: number | null
  /** How clients reach the node: `url` (probes answer), `mesh` (only through the mesh), `none`. */
  reachability: Reachability | null
}

export interface TrackerDashboardData {
  schema: typeof DASHBOARD_SCHEMA
  generatedAt: number
  tracker: { issuer: string; uptimeSeconds: number; store: string; probeIntervalMs: number }
  totals: {
    nodes: number
    eligible: number
    byStatus: Record<string, number>
    regions: Record<string, { nodes: number; byStatus: Record<string, number> }>
    sites: number
    /** Mean score of the listed nodes; `null` with none. */
    meanScore: number | null
  }
  formula: string
  nodes: DashboardNode[]
  /** More nodes exist than are listed. */
  truncated: boolean
  epochs: {
    lengthMs: number
    current: { number: number; startsAt: number; endsAt: number }
    settled: unknown
  }
  payouts: unknown
  [section: string]: unknown
}

const round = (v: number) => Number(v.toFixed(6))

/** What the dashboard shows, from the live index. */
export async function dashboardData(
  s: ApiServices,
  components: TrackerDashboardComponents,
  options: { signal?: AbortSignal } = {},
): Promise<TrackerDashboardData> {
  const now = s.clock()
  const stats = s.index.stats()
  const all: DashboardNode[] = []
  for (const row of s.index.snapshot()) {
    const e = s.index.explain(row.node)
    const { score, ...parts } = e.components
    all.push({
      node: e.node,
      region: e.region,
      status: e.status,
      eligible: e.eligible,
      score: round(e.score),
      components: {
        uptime: round(parts.uptime),
        success: round(parts.success),
        latency: round(parts.latency),
        throughput: round(parts.throughput),
        integrity: round(parts.integrity),
      },
      latencyMs: e.figures.latencyMs,
      throughput: e.figures.throughput,
      successes: e.figures.successes,
      failures: e.figures.failures,
      integrityFailures: e.figures.integrityFailures,
      capacity: e.figures.capacity,
      heartbeatAt: e.figures.heartbeatAt,
      reachability: s.reachability?.of(e.node).via ?? null,
    })
  }
  all.sort((a, b) => b.score - a.score || (a.node < b.node ? -1 : 1))
  const nodes = all.slice(0, DASHBOARD_MAX_NODES)
  const lengthMs = s.options.epochSeconds * 1000
  const number = Math.floor(now / lengthMs)
  const out: TrackerDashboardData = {
    schema: DASHBOARD_SCHEMA,
    generatedAt: now,
    tracker: {
      issuer: s.tickets.issuer,
      uptimeSeconds: Math.round((now - s.startedAt) / 1000),
      store: s.store.kind,
      probeIntervalMs: s.options.probeIntervalMs,
    },
    totals: {
      nodes: stats.nodes,
      eligible: all.filter((n) => n.eligible).length,
      byStatus: stats.byStatus,
      regions: Object.fromEntries(
        Object.entries(stats.regions).map(([name, r]) => [name, { nodes: r.nodes, byStatus: r.byStatus }]),
      ),
      sites: await s.store.countSites(options),
      meanScore: all.length === 0 ? null : round(all.reduce((a, n) => a + n.score, 0) / all.length),
    },
    formula: SCORE_FORMULA,
    nodes,
    truncated: all.length > nodes.length,
    epochs: {
      lengthMs,
      current: { number, startsAt: number * lengthMs, endsAt: (number + 1) * lengthMs },
      settled: (await components.settledEpochs?.()) ?? null,
    },
    payouts: (await components.payouts?.()) ?? null,
  }
  for (const [name, provider] of Object.entries(components.sections ?? {})) {
    if (!(name in out)) out[name] = (await provider()) ?? null
  }
  return out
}

/** The dashboard's routes (GET; HEAD too): the page and its files, and `data.json`. */
export function dashboardRoutes(s: ApiServices, components: TrackerDashboardComponents = {}): Route[] {
  const files = createDashboardFiles(new URL('./assets/', import.meta.url), {
    title: 'Shoal network',
    facts: [
      { label: 'Tracker', id: 'issuer', code: true },
      { label: 'Up', id: 'uptime' },
    ],
  })
  const routes: Route[] = DASHBOARD_FILE_PATHS.map((path) => ({
    method: 'GET',
    path,
    name: 'dashboard',
    limit: 'default',
    async handle({ req, res }) {
      const file = await files.get(path)
      if (file === undefined) throw new NotFoundError(`no ${path} in the dashboard`)
      sendDashboardFile(res, file.type, file.body, req.method === 'HEAD')
    },
  }))
  routes.push({
    method: 'GET',
    path: '/dashboard/data.json',
    name: 'dashboard-data',
    limit: 'default',
    async handle({ req, res, signal }) {
      const body = Buffer.from(JSON.stringify(await dashboardData(s, components, { signal })))
      sendDashboardFile(res, 'application/json; charset=utf-8', body, req.method === 'HEAD')
    },
  })
  return routes
}
