/**
 * Named defaults of the scoring model. Every constant of the score formula and of the
 * liveness and cool-off rules lives here, and docs/scoring.md quotes them.
 */

/** How often the probe loop is expected to probe each node. */
export const DEFAULT_PROBE_INTERVAL_MS = 30_000
/** Consecutive missed probes after which a node is down. */
export const DEFAULT_DOWN_AFTER_MISSES = 2
/** Probes kept in the uptime window (a ring of bits per node). */
export const DEFAULT_UPTIME_WINDOW = 64
/** Largest uptime window accepted. */
export const MAX_UPTIME_WINDOW = 1024
/** Weight of a new RTT sample in the latency EWMA. */
export const DEFAULT_LATENCY_ALPHA = 0.2
/** Latency (EWMA of probe RTT, ms) at which the latency component is 0.5. */
export const DEFAULT_LATENCY_HALF_MS = 200
/** Weight of a new report (times the reporter's weight) in the throughput EWMA. */
export const DEFAULT_THROUGHPUT_ALPHA = 0.2
/** Throughput (bytes/s) at which the throughput component is 0.5. */
export const DEFAULT_THROUGHPUT_HALF = 1_048_576
/** Throughput assumed before any client reported one (bytes/s): component 0.8. */
export const DEFAULT_THROUGHPUT_PRIOR = 4_194_304
/** Success rate assumed before any report, and how many reports' worth of weight it has. */
export const DEFAULT_SUCCESS_PRIOR = 0.95
export const DEFAULT_SUCCESS_PRIOR_WEIGHT = 2
/** Half-life of client success/failure counters. */
export const DEFAULT_REPORT_HALF_LIFE_MS = 6 * 3_600_000
/** How many failures one (unproven) integrity failure in a client report counts as. */
export const DEFAULT_INTEGRITY_REPORT_WEIGHT = 10
/** Cool-off after the first proven integrity failure; doubles with each further one. */
export const DEFAULT_COOL_OFF_MS = 24 * 3_600_000
/** Longest cool-off. */
export const DEFAULT_MAX_COOL_OFF_MS = 7 * 24 * 3_600_000
/** Proven integrity failures after which a node is flagged until an operator clears it. */
export const DEFAULT_FLAG_AFTER_INTEGRITY_FAILURES = 3
/** Load ÷ capacity at which a node becomes over-capacity … */
export const DEFAULT_OVERLOAD_ENTER = 0.95
/** … and below which it is selectable again (hysteresis). */
export const DEFAULT_OVERLOAD_EXIT = 0.85
/** Capacity counted for placement at most (bytes/s, 10 Gbit/s): a claim above it earns nothing more. */
export const DEFAULT_MAX_CAPACITY = 1_250_000_000
/** Largest RTT a probe may report, ms (anything slower is a miss). */
export const MAX_RTT_MS = 600_000
/** Largest figure (bytes/s, load or throughput) accepted. */
export const MAX_RATE = 1e12

/** A node's status, from the most to the least severe. */
export const NODE_STATUS = {
  /** Flagged by fraud rules or an operator; out of selection until cleared. */
  flagged: 'flagged',
  /** A proven integrity failure; out of selection until the cool-off deadline. */
  coolingOff: 'cooling-off',
  /** Registered but has never answered a probe. */
  unreachable: 'unreachable',
  /** Missed `downAfterMisses` probes in a row, or answered none for `downAfterMs`. */
  down: 'down',
  /** Load at or above `overloadEnter` × capacity (or no capacity at all). */
  overCapacity: 'over-capacity',
  /** Selectable. */
  active: 'active',
} as const

export type NodeStatus = (typeof NODE_STATUS)[keyof typeof NODE_STATUS]

/** Every status, in order of precedence. */
export const NODE_STATUSES: readonly NodeStatus[] = Object.values(NODE_STATUS)
