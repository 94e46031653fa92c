/**
 * Live state of every registered node, as columns of typed arrays indexed by a slot
 * number (struct of arrays): about 120 bytes per node, no object per node, nothing for
 * the garbage collector to trace. The table knows nothing of addresses or placement;
 * `createNodeIndex` maps addresses to slots and keeps placement in step.
 *
 * Liveness rules (docs/scoring.md):
 * - unreachable: registered, never answered a probe;
 * - down: `misses ≥ downAfterMisses` consecutive missed probes, or no answered probe for
 *   more than `downAfterMs` (default 2 × probe interval). One answered probe brings it back.
 * - cooling-off: a proven integrity failure, until `coolOffUntil`;
 * - flagged: set by an operator or after `flagAfterIntegrityFailures` proven failures;
 * - over-capacity: heartbeat load ≥ overloadEnter × capacity, until ≤ overloadExit × capacity.
 */
import { NODE_STATUS, type NodeStatus } from './constants.ts'
import type { ResolvedScoringOptions } from './options.ts'
import { scoreOf } from './score.ts'
import { clearRing, recordOutcome, type UptimeRing, wordsFor } from './uptime.ts'

/** Bits of `NodeTable.flags`. */
export const NODE_FLAG = {
  inUse: 1,
  flagged: 2,
  overloaded: 4,
  /** Has answered at least one probe since registration. */
  answered: 8,
  /** Marked down by `sweep` because no probe was answered for `downAfterMs`. */
  stale: 16,
} as const

/** Every figure `explain` shows about a node, besides the score components. */
export interface NodeFigures {
  status: NodeStatus
  registeredAt: number
  capacity: number
  load: number
  heartbeatAt: number | null
  latencyMs: number | null
  lastAnsweredAt: number | null
  lastProbeAt: number | null
  consecutiveMisses: number
  probes: number
  answered: number
  successes: number
  failures: number
  throughput: number | null
  integrityFailures: number
  coolOffUntil: number | null
  flagged: boolean
}

const nullIfNaN = (v: number): number | null => (Number.isNaN(v) ? null : v)

function grow<T extends Float64Array | Float32Array | Uint32Array | Uint16Array | Uint8Array>(
  array: T,
  length: number,
  fill?: number,
): T {
  const next = new (array.constructor as new (n: number) => T)(length)
  next.set(array)
  if (fill !== undefined) next.fill(fill, array.length)
  return next
}

export class NodeTable {
  readonly options: ResolvedScoringOptions
  /** Slots allocated in every column. */
  size = 0
  flags: Uint8Array = new Uint8Array(0)
  capacity: Float64Array = new Float64Array(0)
  load: Float64Array = new Float64Array(0)
  heartbeatAt: Float64Array = new Float64Array(0)
  registeredAt: Float64Array = new Float64Array(0)
  latency: Float32Array = new Float32Array(0)
  lastAnsweredAt: Float64Array = new Float64Array(0)
  lastProbeAt: Float64Array = new Float64Array(0)
  misses: Uint16Array = new Uint16Array(0)
  successes: Float64Array = new Float64Array(0)
  failures: Float64Array = new Float64Array(0)
  reportAt: Float64Array = new Float64Array(0)
  throughput: Float32Array = new Float32Array(0)
  integrity: Uint16Array = new Uint16Array(0)
  coolOffUntil: Float64Array = new Float64Array(0)
  /**
   * The silence rule counts from `max(lastAnsweredAt, answeredFloor)`: a restore with a
   * grace period raises the floor so restored nodes are not all down before the probe
   * loop has had a round. `−Infinity` by default.
   */
  answeredFloor = Number.NEGATIVE_INFINITY
  readonly ring: UptimeRing

  constructor(options: ResolvedScoringOptions, initialSize = 1024) {
    this.options = options
    const window = options.uptimeWindow
    this.ring = {
      window,
      words: wordsFor(window),
      bits: new Uint32Array(0),
      pos: new Uint16Array(0),
      fill: new Uint16Array(0),
      answered: new Uint16Array(0),
    }
    this.resize(Math.max(1, initialSize))
  }

  /** Makes room for slots `0 … length − 1`. */
  resize(length: number): void {
    if (length <= this.size) return
    this.flags = grow(this.flags, length)
    this.capacity = grow(this.capacity, length)
    this.load = grow(this.load, length)
    this.heartbeatAt = grow(this.heartbeatAt, length, Number.NaN)
    this.registeredAt = grow(this.registeredAt, length)
    this.latency = grow(this.latency, length, Number.NaN)
    this.lastAnsweredAt = grow(this.lastAnsweredAt, length, Number.NaN)
    this.lastProbeAt = grow(this.lastProbeAt, length, Number.NaN)
    this.misses = grow(this.misses, length)
    this.successes = grow(this.successes, length)
    this.failures = grow(this.failures, length)
    this.reportAt = grow(this.reportAt, length, Number.NaN)
    this.throughput = grow(this.throughput, length, Number.NaN)
    this.integrity = grow(this.integrity, length)
    this.coolOffUntil = grow(this.coolOffUntil, length)
    const ring = this.ring
    ring.bits = grow(ring.bits, length * ring.words)
    ring.pos = grow(ring.pos, length)
    ring.fill = grow(ring.fill, length)
    ring.answered = grow(ring.answered, length)
    this.size = length
  }

  /** Resets `slot` to a freshly registered node. */
  reset(slot: number, now: number): void {
    this.flags[slot] = NODE_FLAG.inUse
    this.capacity[slot] = 0
    this.load[slot] = 0
    this.heartbeatAt[slot] = Number.NaN
    this.registeredAt[slot] = now
    this.latency[slot] = Number.NaN
    this.lastAnsweredAt[slot] = Number.NaN
    this.lastProbeAt[slot] = Number.NaN
    this.misses[slot] = 0
    this.successes[slot] = 0
    this.failures[slot] = 0
    this.reportAt[slot] = Number.NaN
    this.throughput[slot] = Number.NaN
    this.integrity[slot] = 0
    this.coolOffUntil[slot] = 0
    clearRing(this.ring, slot)
  }

  release(slot: number): void {
    this.flags[slot] = 0
  }

  /** Sets the capacity from the node's record and re-evaluates over-capacity. */
  setCapacity(slot: number, capacity: number): void {
    this.capacity[slot] = capacity
    this.updateOverload(slot)
  }

  /** A probe result: answered with its RTT, or missed (timeout, wrong signature, refused). */
  recordProbe(slot: number, answered: boolean, rttMs: number, now: number): void {
    recordOutcome(this.ring, slot, answered)
    this.lastProbeAt[slot] = now
    if (answered) {
      const prev = this.latency[slot]!
      const a = this.options.latencyAlpha
      this.latency[slot] = Number.isNaN(prev) ? rttMs : prev + a * (rttMs - prev)
      if (!(this.lastAnsweredAt[slot]! >= now)) this.lastAnsweredAt[slot] = now
      this.misses[slot] = 0
      this.flags[slot] = (this.flags[slot]! | NODE_FLAG.answered) & ~NODE_FLAG.stale
    } else if (this.misses[slot]! < 65_535) {
      this.misses[slot] = this.misses[slot]! + 1
    }
  }

  /** A heartbeat's load (egress bytes/s). */
  recordHeartbeat(slot: number, load: number, now: number): void {
    this.load[slot] = load
    this.heartbeatAt[slot] = now
    this.updateOverload(slot)
  }

  /**
   * A client report, weighted by the reporter's standing `weight` ∈ (0, 1]. An
   * (unproven) integrity failure counts as `integrityReportWeight` failures.
   */
  recordReport(
    slot: number,
    ok: boolean,
    integrityFailure: boolean,
    throughput: number,
    weight: number,
    now: number,
  ): void {
    const decay = this.decayTo(slot, now)
    let s = this.successes[slot]! * decay
    let f = this.failures[slot]! * decay
    if (integrityFailure) f += weight * this.options.integrityReportWeight
    else if (ok) s += weight
    else f += weight
    this.successes[slot] = s
    this.failures[slot] = f
    if (!(this.reportAt[slot]! >= now)) this.reportAt[slot] = now
    if (!Number.isNaN(throughput)) {
      const prev = this.throughput[slot]!
      this.throughput[slot] = Number.isNaN(prev)
        ? throughput
        : prev + this.options.throughputAlpha * weight * (throughput - prev)
    }
  }

  /**
   * A proven integrity failure: cool-off of `coolOffMs × 2^(failures − 1)` (at most
   * `maxCoolOffMs`) from `now`, and a flag once `flagAfterIntegrityFailures` is reached.
   */
  recordIntegrityFailure(slot: number, now: number): number {
    const n = Math.min(65_535, this.integrity[slot]! + 1)
    this.integrity[slot] = n
    const o = this.options
    const coolOff = Math.min(o.maxCoolOffMs, o.coolOffMs * 2 ** Math.min(n - 1, 60))
    const until = Math.max(this.coolOffUntil[slot]!, now + coolOff)
    this.coolOffUntil[slot] = until
    if (o.flagAfterIntegrityFailures > 0 && n >= o.flagAfterIntegrityFailures) {
      this.flags[slot] = this.flags[slot]! | NODE_FLAG.flagged
    }
    return until
  }

  setFlagged(slot: number, flagged: boolean): void {
    const f = this.flags[slot]!
    this.flags[slot] = flagged ? f | NODE_FLAG.flagged : f & ~NODE_FLAG.flagged
  }

  /** Marks the node down-by-time when it has answered nothing for `downAfterMs`; true if it changed. */
  markStale(slot: number, now: number): boolean {
    const f = this.flags[slot]!
    if ((f & (NODE_FLAG.answered | NODE_FLAG.stale)) !== NODE_FLAG.answered) return false
    if (!(now - this.answeredAt(slot) > this.options.downAfterMs)) return false
    this.flags[slot] = f | NODE_FLAG.stale
    return true
  }

  private updateOverload(slot: number): void {
    const cap = this.capacity[slot]!
    const load = this.load[slot]!
    const f = this.flags[slot]!
    const over = (f & NODE_FLAG.overloaded) !== 0
    let next = over
    if (cap <= 0) next = true
    else if (!over && load >= this.options.overloadEnter * cap) next = true
    else if (over && load <= this.options.overloadExit * cap) next = false
    if (next !== over) this.flags[slot] = next ? f | NODE_FLAG.overloaded : f & ~NODE_FLAG.overloaded
  }

  /** Factor that decays the report counters from their last update to `now`. */
  decayTo(slot: number, now: number): number {
    const at = this.reportAt[slot]!
    if (Number.isNaN(at) || now <= at) return 1
    return 2 ** (-(now - at) / this.options.reportHalfLifeMs)
  }

  /**
   * Whether the node is eligible as far as events tell: in use, has answered, not down
   * by misses or sweep, not flagged, not over capacity. Time-driven rules (cool-off,
   * down by silence) are checked by `eligibleAt` at selection time.
   */
  eventEligible(slot: number): boolean {
    const f = this.flags[slot]!
    return (
      (f &
        (NODE_FLAG.inUse |
          NODE_FLAG.answered |
          NODE_FLAG.flagged |
          NODE_FLAG.overloaded |
          NODE_FLAG.stale)) ===
        (NODE_FLAG.inUse | NODE_FLAG.answered) && this.misses[slot]! < this.options.downAfterMisses
    )
  }

  /** When the silence rule counts from: the last answer, or the restore floor (NaN if never answered). */
  answeredAt(slot: number): number {
    // NaN (never answered) stays NaN
    return Math.max(this.lastAnsweredAt[slot]!, this.answeredFloor)
  }

  /** The time-driven half of eligibility: not cooling off, not silent for `downAfterMs`. */
  timeEligible(slot: number, now: number): boolean {
    return this.coolOffUntil[slot]! <= now && now - this.answeredAt(slot) <= this.options.downAfterMs
  }

  status(slot: number, now: number): NodeStatus {
    const f = this.flags[slot]!
    if ((f & NODE_FLAG.flagged) !== 0) return NODE_STATUS.flagged
    if (this.coolOffUntil[slot]! > now) return NODE_STATUS.coolingOff
    if ((f & NODE_FLAG.answered) === 0) return NODE_STATUS.unreachable
    if (
      (f & NODE_FLAG.stale) !== 0 ||
      this.misses[slot]! >= this.options.downAfterMisses ||
      now - this.answeredAt(slot) > this.options.downAfterMs
    ) {
      return NODE_STATUS.down
    }
    if ((f & NODE_FLAG.overloaded) !== 0) return NODE_STATUS.overCapacity
    return NODE_STATUS.active
  }

  /** The score at `now`, in [0, 1]. */
  score(slot: number, now: number): number {
    const decay = this.decayTo(slot, now)
    return scoreOf(
      this.ring.answered[slot]!,
      this.ring.fill[slot]!,
      this.latency[slot]!,
      this.successes[slot]! * decay,
      this.failures[slot]! * decay,
      this.throughput[slot]!,
      this.integrity[slot]!,
      this.options,
    )
  }

  /** Capacity counted for placement: the record's, capped at `maxCapacity`. */
  placementCapacity(slot: number): number {
    return Math.min(this.capacity[slot]!, this.options.maxCapacity)
  }

  figures(slot: number, now: number): NodeFigures {
    const decay = this.decayTo(slot, now)
    const cool = this.coolOffUntil[slot]!
    return {
      status: this.status(slot, now),
      registeredAt: this.registeredAt[slot]!,
      capacity: this.capacity[slot]!,
      load: this.load[slot]!,
      heartbeatAt: nullIfNaN(this.heartbeatAt[slot]!),
      latencyMs: nullIfNaN(this.latency[slot]!),
      lastAnsweredAt: nullIfNaN(this.lastAnsweredAt[slot]!),
      lastProbeAt: nullIfNaN(this.lastProbeAt[slot]!),
      consecutiveMisses: this.misses[slot]!,
      probes: this.ring.fill[slot]!,
      answered: this.ring.answered[slot]!,
      successes: this.successes[slot]! * decay,
      failures: this.failures[slot]! * decay,
      throughput: nullIfNaN(this.throughput[slot]!),
      integrityFailures: this.integrity[slot]!,
      coolOffUntil: cool > 0 ? cool : null,
      flagged: (this.flags[slot]! & NODE_FLAG.flagged) !== 0,
    }
  }
}
