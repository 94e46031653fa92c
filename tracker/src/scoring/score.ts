/**
 * The score formula (docs/scoring.md), as pure functions of a node's figures:
 *
 *   score = uptime² · success² · √latency · √throughput · integrity      ∈ [0, 1]
 *
 *   uptime     = (answered + 1) / (probes + 1)        over the sliding probe window
 *   success    = (s + prior·w₀) / (s + f + w₀)         decayed, reporter-weighted counts
 *   latency    = L½ / (L½ + rttEwma)                   L½ = latencyHalfMs
 *   throughput = t / (t + T½)                          t = reported EWMA, or the prior
 *   integrity  = 1 / (1 + proven integrity failures)
 *
 * Uptime and success are squared: a node that drops one request in four loses almost
 * half its weight, while latency and throughput (which the tracker sees only from its
 * own vantage point, or from a few clients) move it gently.
 */
import type { ResolvedScoringOptions } from './options.ts'

/** What a score is computed from. Counts are already decayed to the time of scoring. */
export interface ScoreInputs {
  /** Answered probes in the uptime window. */
  answered: number
  /** Probes in the uptime window (answered or missed). */
  probes: number
  /** EWMA of probe RTT (ms); `undefined` before the first answer. */
  latencyMs: number | undefined
  /** Reporter-weighted successes and failures, decayed. */
  successes: number
  failures: number
  /** EWMA of reported throughput (bytes/s); `undefined` before the first report. */
  throughput: number | undefined
  /** Proven integrity failures. */
  integrityFailures: number
}

/** Every factor of the score, each in [0, 1], and their product. */
export interface ScoreComponents {
  uptime: number
  success: number
  latency: number
  throughput: number
  integrity: number
  score: number
}

/** The formula as text, for operators. */
export const SCORE_FORMULA = 'uptime² · success² · √latency · √throughput · integrity'

type Params = Pick<
  ResolvedScoringOptions,
  'latencyHalfMs' | 'throughputHalf' | 'throughputPrior' | 'successPrior' | 'successPriorWeight'
>

/** `(answered + 1) / (probes + 1)`: one optimistic prior probe, so a fresh node starts at 1. */
export function uptimeComponent(answered: number, probes: number): number {
  return (answered + 1) / (probes + 1)
}

/** `L½ / (L½ + ewma)`; 0.5 while unknown. */
export function latencyComponent(latencyMs: number, halfMs: number): number {
  return Number.isNaN(latencyMs) ? 0.5 : halfMs / (halfMs + latencyMs)
}

/** Beta-style mean: `(s + prior·w₀) / (s + f + w₀)`. */
export function successComponent(
  successes: number,
  failures: number,
  prior: number,
  priorWeight: number,
): number {
  return (successes + prior * priorWeight) / (successes + failures + priorWeight)
}

/** `t / (t + T½)`, with `t` the prior while no client has reported a throughput. */
export function throughputComponent(throughput: number, half: number, prior: number): number {
  const t = Number.isNaN(throughput) ? prior : throughput
  return t / (t + half)
}

/** `1 / (1 + failures)`. */
export function integrityComponent(integrityFailures: number): number {
  return 1 / (1 + integrityFailures)
}

/**
 * The score as one number, without allocating (the index calls it on every event).
 * Unknown latency or throughput is passed as `NaN`.
 */
export function scoreOf(
  answered: number,
  probes: number,
  latencyMs: number,
  successes: number,
  failures: number,
  throughput: number,
  integrityFailures: number,
  params: Params,
): number {
  const u = uptimeComponent(answered, probes)
  const s = successComponent(successes, failures, params.successPrior, params.successPriorWeight)
  const l = latencyComponent(latencyMs, params.latencyHalfMs)
  const t = throughputComponent(throughput, params.throughputHalf, params.throughputPrior)
  return u * u * s * s * Math.sqrt(l * t) * integrityComponent(integrityFailures)
}

/**
 * Every factor of the score and the score, from plain figures.
 *
 * @example
 * const c = computeScore(
 *   { answered: 64, probes: 64, latencyMs: 40, successes: 100, failures: 0, throughput: 8e6, integrityFailures: 0 },
 *   resolveScoringOptions(),
 * )
 * c.score // ≈ 0.857
 */
export function computeScore(inputs: ScoreInputs, params: Params): ScoreComponents {
  const latencyMs = inputs.latencyMs ?? Number.NaN
  const throughput = inputs.throughput ?? Number.NaN
  const uptime = uptimeComponent(inputs.answered, inputs.probes)
  const success = successComponent(
    inputs.successes,
    inputs.failures,
    params.successPrior,
    params.successPriorWeight,
  )
  const latency = latencyComponent(latencyMs, params.latencyHalfMs)
  const tput = throughputComponent(throughput, params.throughputHalf, params.throughputPrior)
  const integrity = integrityComponent(inputs.integrityFailures)
  return {
    uptime,
    success,
    latency,
    throughput: tput,
    integrity,
    score: uptime * uptime * success * success * Math.sqrt(latency * tput) * integrity,
  }
}
