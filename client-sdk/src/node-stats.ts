/**
 * What the client has observed of each node: recent times to first byte (for the hedge
 * delay), a smoothed TTFB (for ranking), and failures (for a cool-off). Kept per client,
 * in memory, bounded by the number of nodes it talks to.
 */

/** TTFB samples kept per node. */
export const TTFB_WINDOW = 32
/** New samples after which a node's TTFB quantile is computed again. */
export const QUANTILE_REFRESH = 8
/** Weight of a new sample in the smoothed TTFB. */
export const TTFB_EWMA_ALPHA = 0.3
/** First cool-off after a failure (ms); doubles per consecutive failure. */
export const COOL_OFF_BASE_MS = 1_000
export const COOL_OFF_MAX_MS = 60_000
/** Cool-off after a node sent bytes that do not match their CID (ms). */
export const INTEGRITY_COOL_OFF_MS = 10 * 60_000
/** A node whose smoothed TTFB is above `SLOW_FACTOR × best + SLOW_MARGIN_MS` is ranked after the others. */
export const SLOW_FACTOR = 1.5
export const SLOW_MARGIN_MS = 1
/** A node's smoothed TTFB older than this is forgotten for ranking (ms). */
export const STALE_AFTER_MS = 30_000
/** How long the ranking of a list is reused when no node failed meanwhile (ms). */
export const RANK_MEMO_MS = 50
/** Nodes remembered (oldest dropped beyond). */
export const MAX_TRACKED_NODES = 4_096

interface NodeState {
  samples: number[]
  next: number
  /** The last quantile computed, reused until `QUANTILE_REFRESH` new samples arrived. */
  cached: { q: number; value: number } | undefined
  fresh: number
  /** When the last TTFB sample (or slowness) was recorded. */
  seenAt: number
  ewma: number | undefined
  failures: number
  coolOffUntil: number
}

export interface NodeStats {
  /** A node answered its first byte after `ms`. */
  recordTtfb(node: string, ms: number): void
  /** A node lost a race without answering within `ms`: its smoothed TTFB is at least that. */
  recordSlow(node: string, ms: number): void
  recordSuccess(node: string): void
  /** A node failed; `integrity` cools it off for longer. */
  recordFailure(node: string, kind: 'error' | 'integrity'): void
  /** The q-quantile of the node's recent TTFBs, or `undefined` before `minSamples` (default 1). */
  ttfbQuantile(node: string, q: number, minSamples?: number): number | undefined
  /** The q-quantile over every node's recent TTFBs, or `undefined` before `minSamples` in all. */
  globalQuantile(q: number, minSamples?: number): number | undefined
  /**
   * Nodes in preference order: those not cooling off first; among them, the ones about as
   * fast as the fastest (or not measured lately) in the given order, then the clearly
   * slower ones, fastest first.
   */
  rank<T>(nodes: readonly T[], keyOf: (node: T) => string): T[]
  coolingOff(node: string): boolean
  clear(): void
}

function quantileOf(values: readonly number[], q: number): number {
  // a typed array sorts numerically without a comparison callback
  const sorted = new Float64Array(values).sort()
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
  return sorted[rank]!
}

/**
 * @example
 * const stats = createNodeStats()
 * stats.recordTtfb('http://127.0.0.1:7480/', 3.2)
 * stats.ttfbQuantile('http://127.0.0.1:7480/', 0.9) // 3.2
 */
export function createNodeStats(clock: () => number = Date.now): NodeStats {
  const nodes = new Map<string, NodeState>()
  // rankings of recent lists, dropped when any failure changes the picture
  let rankMemo = new WeakMap<object, { order: unknown[]; version: number; at: number }>()
  let failureVersion = 0
  // the quantile over every node, reused like a node's own (it concatenates and sorts up
  // to MAX_TRACKED_NODES × TTFB_WINDOW samples): recomputed after QUANTILE_REFRESH new ones
  let globalCached: { q: number; value: number | undefined; total: number } | undefined
  let globalFresh = 0

  const state = (node: string): NodeState => {
    let s = nodes.get(node)
    if (s === undefined) {
      if (nodes.size >= MAX_TRACKED_NODES) nodes.delete(nodes.keys().next().value as string)
      s = {
        samples: [],
        next: 0,
        cached: undefined,
        fresh: 0,
        seenAt: 0,
        ewma: undefined,
        failures: 0,
        coolOffUntil: 0,
      }
      nodes.set(node, s)
    }
    return s
  }

  const smooth = (s: NodeState, ms: number) => {
    s.ewma = s.ewma === undefined ? ms : s.ewma + TTFB_EWMA_ALPHA * (ms - s.ewma)
  }

  return {
    recordTtfb(node, ms) {
      const s = state(node)
      if (s.samples.length < TTFB_WINDOW) s.samples.push(ms)
      else s.samples[s.next] = ms
      s.next = (s.next + 1) % TTFB_WINDOW
      // the first samples count at once; later ones in batches (a sort per fetch adds up)
      if (++s.fresh >= QUANTILE_REFRESH || s.samples.length < QUANTILE_REFRESH) {
        s.cached = undefined
        s.fresh = 0
      }
      smooth(s, ms)
      s.seenAt = clock()
      // the first samples count at once, later ones in batches (as for one node)
      if (++globalFresh >= QUANTILE_REFRESH || (globalCached?.total ?? 0) < QUANTILE_REFRESH) {
        globalCached = undefined
        globalFresh = 0
      }
    },
    recordSlow(node, ms) {
      // it lost a race without answering: it is at least that slow, now
      const s = state(node)
      if (s.ewma === undefined || s.ewma < ms) s.ewma = ms
      s.seenAt = clock()
    },
    recordSuccess(node) {
      const s = nodes.get(node)
      if (s !== undefined) s.failures = 0
    },
    recordFailure(node, kind) {
      failureVersion++
      const s = state(node)
      s.failures++
      const wait =
        kind === 'integrity'
          ? INTEGRITY_COOL_OFF_MS
          : Math.min(COOL_OFF_MAX_MS, COOL_OFF_BASE_MS * 2 ** Math.min(16, s.failures - 1))
      s.coolOffUntil = Math.max(s.coolOffUntil, clock() + wait)
    },
    ttfbQuantile(node, q, minSamples = 1) {
      const s = nodes.get(node)
      if (s === undefined || s.samples.length === 0 || s.samples.length < minSamples) return undefined
      if (s.cached?.q !== q) s.cached = { q, value: quantileOf(s.samples, q) }
      return s.cached.value
    },
    globalQuantile(q, minSamples = 1) {
      if (globalCached?.q !== q) {
        const all: number[] = []
        for (const s of nodes.values()) all.push(...s.samples)
        globalCached = { q, value: all.length === 0 ? undefined : quantileOf(all, q), total: all.length }
      }
      return globalCached.total < minSamples ? undefined : globalCached.value
    },
    coolingOff(node) {
      const s = nodes.get(node)
      return s !== undefined && s.coolOffUntil > clock()
    },
    rank(list, keyOf) {
      const now = clock()
      // the same list ranked a moment ago, with no failure since: the same order
      const memo = rankMemo.get(list)
      if (memo !== undefined && memo.version === failureVersion && now - memo.at < RANK_MEMO_MS)
        return memo.order.slice() as (typeof list)[number][]
      const rows = list.map((node, i) => {
        const s = nodes.get(keyOf(node))
        // a figure not refreshed for a while is forgotten, so a node once slow is tried again
        const ttfb = s === undefined || now - s.seenAt > STALE_AFTER_MS ? undefined : s.ewma
        return { node, i, cool: s !== undefined && s.coolOffUntil > now ? 1 : 0, ttfb }
      })
      let best = Number.POSITIVE_INFINITY
      for (const r of rows) if (r.cool === 0 && r.ttfb !== undefined && r.ttfb < best) best = r.ttfb
      // Nodes about as fast as the best (or not measured yet) keep the given order (the
      // tracker's score and placement); clearly slower ones go after them, fastest first.
      const slowAbove = best * SLOW_FACTOR + SLOW_MARGIN_MS
      const slowness = (ttfb: number | undefined) => (ttfb === undefined || ttfb <= slowAbove ? 0 : ttfb)
      const order = rows
        .sort((a, b) => a.cool - b.cool || slowness(a.ttfb) - slowness(b.ttfb) || a.i - b.i)
        .map((x) => x.node)
      rankMemo.set(list, { order, version: failureVersion, at: now })
      return order.slice()
    },
    clear() {
      nodes.clear()
      rankMemo = new WeakMap()
    },
  }
}
