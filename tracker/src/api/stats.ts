/**
 * `GET /v1/stats`: counts by status and region, the score formula, and the mean score
 * components over a sample of nodes, so an operator can see why the network scores as
 * it does (per-node detail is `GET /v1/nodes/<address>`).
 */
import { SCORE_FORMULA, type ScoreComponents } from '../scoring/index.ts'
import type { StoreCallOptions } from '../store/types.ts'
import type { ApiServices } from './routes.ts'

/** Nodes whose components are averaged. */
export const STATS_SAMPLE = 256

function quantile(sorted: number[], q: number): number | null {
  if (sorted.length === 0) return null
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
}

export async function statsOf(s: ApiServices, options: StoreCallOptions) {
  const counts = s.index.stats()
  const sums: ScoreComponents = { uptime: 0, success: 0, latency: 0, throughput: 0, integrity: 0, score: 0 }
  const scores: number[] = []
  let sampled = 0
  for (const row of s.index.snapshot()) {
    if (sampled >= STATS_SAMPLE) break
    const e = s.index.explain(row.node)
    for (const k of Object.keys(sums) as (keyof ScoreComponents)[]) sums[k] += e.components[k]
    scores.push(e.score)
    sampled++
  }
  scores.sort((a, b) => a - b)
  const mean = Object.fromEntries(
    Object.entries(sums).map(([k, v]) => [k, sampled === 0 ? null : Number((v / sampled).toFixed(6))]),
  )
  return {
    tracker: {
      issuer: s.tickets.issuer,
      uptimeSeconds: Math.round((s.clock() - s.startedAt) / 1000),
      store: s.store.kind,
      probeIntervalMs: s.options.probeIntervalMs,
      epochSeconds: s.options.epochSeconds,
    },
    nodes: counts,
    formula: SCORE_FORMULA,
    components: {
      sampled,
      mean,
      score: { p10: quantile(scores, 0.1), p50: quantile(scores, 0.5), p90: quantile(scores, 0.9) },
    },
    probes: s.prober?.stats() ?? null,
    sites: await s.store.countSites(options),
  }
}
