/**
 * Options of the scoring model: plain data with named defaults, validated once.
 */
import { InvalidArgumentError } from '@shoal/protocol'
import {
  DEFAULT_COOL_OFF_MS,
  DEFAULT_DOWN_AFTER_MISSES,
  DEFAULT_FLAG_AFTER_INTEGRITY_FAILURES,
  DEFAULT_INTEGRITY_REPORT_WEIGHT,
  DEFAULT_LATENCY_ALPHA,
  DEFAULT_LATENCY_HALF_MS,
  DEFAULT_MAX_CAPACITY,
  DEFAULT_MAX_COOL_OFF_MS,
  DEFAULT_OVERLOAD_ENTER,
  DEFAULT_OVERLOAD_EXIT,
  DEFAULT_PROBE_INTERVAL_MS,
  DEFAULT_REPORT_HALF_LIFE_MS,
  DEFAULT_SUCCESS_PRIOR,
  DEFAULT_SUCCESS_PRIOR_WEIGHT,
  DEFAULT_THROUGHPUT_ALPHA,
  DEFAULT_THROUGHPUT_HALF,
  DEFAULT_THROUGHPUT_PRIOR,
  DEFAULT_UPTIME_WINDOW,
  MAX_UPTIME_WINDOW,
} from './constants.ts'

export interface ScoringOptions {
  /** How often each node is probed (ms); the down-by-time rule is derived from it. */
  probeIntervalMs?: number
  /** Consecutive missed probes that make a node down (default 2). */
  downAfterMisses?: number
  /** A node with no answered probe for longer than this is down (default 2 × probeIntervalMs). */
  downAfterMs?: number
  /** Probes in the uptime window, 1..1024 (default 64). */
  uptimeWindow?: number
  latencyAlpha?: number
  latencyHalfMs?: number
  throughputAlpha?: number
  throughputHalf?: number
  throughputPrior?: number
  successPrior?: number
  successPriorWeight?: number
  reportHalfLifeMs?: number
  integrityReportWeight?: number
  /** Cool-off after the first proven integrity failure (ms); doubles with each further one. */
  coolOffMs?: number
  maxCoolOffMs?: number
  /** Proven integrity failures that flag a node (0: never flag automatically). */
  flagAfterIntegrityFailures?: number
  overloadEnter?: number
  overloadExit?: number
  /** Capacity (bytes/s) counted for placement at most. */
  maxCapacity?: number
}

export type ResolvedScoringOptions = Readonly<Required<ScoringOptions>>

function positive(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
    throw new InvalidArgumentError(`${name} must be a finite number greater than 0, got ${String(v)}`)
  }
  return v
}

function integer(
  name: string,
  value: number | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  const v = value ?? fallback
  if (!Number.isSafeInteger(v) || v < min || v > max) {
    throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}, got ${String(v)}`)
  }
  return v
}

function fraction(name: string, value: number | undefined, fallback: number, open = false): number {
  const v = value ?? fallback
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 1 || (open && (v === 0 || v === 1))) {
    throw new InvalidArgumentError(
      `${name} must be a number ${open ? 'strictly between 0 and 1' : 'from 0 to 1'}, got ${String(v)}`,
    )
  }
  return v
}

/**
 * Fills in defaults and validates; throws `InvalidArgumentError` naming the bad option.
 *
 * @example
 * const options = resolveScoringOptions({ probeIntervalMs: 10_000 })
 * options.downAfterMs // 20000
 */
export function resolveScoringOptions(init: ScoringOptions = {}): ResolvedScoringOptions {
  if (typeof init !== 'object' || init === null) {
    throw new InvalidArgumentError('scoring options must be an object')
  }
  const probeIntervalMs = positive('probeIntervalMs', init.probeIntervalMs, DEFAULT_PROBE_INTERVAL_MS)
  const downAfterMs = positive('downAfterMs', init.downAfterMs, 2 * probeIntervalMs)
  const overloadEnter = positive('overloadEnter', init.overloadEnter, DEFAULT_OVERLOAD_ENTER)
  const overloadExit = positive('overloadExit', init.overloadExit, DEFAULT_OVERLOAD_EXIT)
  if (overloadExit > overloadEnter) {
    throw new InvalidArgumentError(
      `overloadExit (${overloadExit}) must not be greater than overloadEnter (${overloadEnter})`,
    )
  }
  const coolOffMs = positive('coolOffMs', init.coolOffMs, DEFAULT_COOL_OFF_MS)
  const maxCoolOffMs = positive(
    'maxCoolOffMs',
    init.maxCoolOffMs,
    Math.max(DEFAULT_MAX_COOL_OFF_MS, coolOffMs),
  )
  if (maxCoolOffMs < coolOffMs) {
    throw new InvalidArgumentError(`maxCoolOffMs (${maxCoolOffMs}) must be at least coolOffMs (${coolOffMs})`)
  }
  return Object.freeze({
    probeIntervalMs,
    downAfterMisses: integer('downAfterMisses', init.downAfterMisses, DEFAULT_DOWN_AFTER_MISSES, 1, 1000),
    downAfterMs,
    uptimeWindow: integer('uptimeWindow', init.uptimeWindow, DEFAULT_UPTIME_WINDOW, 1, MAX_UPTIME_WINDOW),
    latencyAlpha: fraction('latencyAlpha', init.latencyAlpha, DEFAULT_LATENCY_ALPHA, true),
    latencyHalfMs: positive('latencyHalfMs', init.latencyHalfMs, DEFAULT_LATENCY_HALF_MS),
    throughputAlpha: fraction('throughputAlpha', init.throughputAlpha, DEFAULT_THROUGHPUT_ALPHA, true),
    throughputHalf: positive('throughputHalf', init.throughputHalf, DEFAULT_THROUGHPUT_HALF),
    throughputPrior: positive('throughputPrior', init.throughputPrior, DEFAULT_THROUGHPUT_PRIOR),
    successPrior: fraction('successPrior', init.successPrior, DEFAULT_SUCCESS_PRIOR),
    successPriorWeight: positive('successPriorWeight', init.successPriorWeight, DEFAULT_SUCCESS_PRIOR_WEIGHT),
    reportHalfLifeMs: positive('reportHalfLifeMs', init.reportHalfLifeMs, DEFAULT_REPORT_HALF_LIFE_MS),
    integrityReportWeight: positive(
      'integrityReportWeight',
      init.integrityReportWeight,
      DEFAULT_INTEGRITY_REPORT_WEIGHT,
    ),
    coolOffMs,
    maxCoolOffMs,
    flagAfterIntegrityFailures: integer(
      'flagAfterIntegrityFailures',
      init.flagAfterIntegrityFailures,
      DEFAULT_FLAG_AFTER_INTEGRITY_FAILURES,
      0,
      65_535,
    ),
    overloadEnter,
    overloadExit,
    maxCapacity: positive('maxCapacity', init.maxCapacity, DEFAULT_MAX_CAPACITY),
  })
}
