/**
 * What the client has observed of each node: recent times to first byte (for the hedge
 * delay), a smoothed TTFB (for ranking), and failures (for a cool-off). Kept per client,
 * in memory, bounded by the number of nodes it talks to.
 */

/** TTFB samples kept per node. */
export const TTFB_WINDOW = 32
/** Weight of a new sample in the smoothed TTFB. */
export const TTFB_EWMA_ALPHA = 0.3
/** First cool-off after a failure (ms); doubles per consecutive failure. */
export const COOL_OFF_BASE_MS = 1_000
export const COOL_OFF_MAX_MS = 60_000
/** Cool-off after a node sent bytes that do not match their CID (ms). */
export const INTEGRITY_COOL_OFF_MS = 10 * 60_000
/** A node whose smoothed TTFB is above `SLOW_FACTOR × best + SLOW_MARGIN_MS` is ranked after the others. */
export const SLOW_FACTOR = 2
export const SLOW_MARGIN_MS = 1
/** Nodes remembered (oldest dropped beyond). */
export const MAX_TRACKED_NODES = 4_096

interface NodeState {
  samples: number[]
  next: number
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
  /** The q-quantile of the node's recent TTFBs, or `undefined` before any sample. */
  ttfbQuantile(node: string, q: number): number | undefined
  /** The q-quantile over every node's recent TTFBs. */
  globalQuantile(q: number): number | undefined
  /** Nodes in preference order: not cooling off first, then by smoothed TTFB (unknown first), stable. */
  rank<T>(nodes: readonly T[], keyOf: (node: T) => string): T[]
  coolingOff(node: string): boolean
  clear(): void
}

function quantileOf(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b)
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

  const state = (node: string): NodeState => {
    let s = nodes.get(node)
    if (s === undefined) {
      if (nodes.size >= MAX_TRACKED_NODES) nodes.delete(nodes.keys().next().value as string)
      s = { samples: [], next: 0, ewma: undefined, failures: 0, coolOffUntil: 0 }
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
      smooth(s, ms)
    },
    recordSlow(node, ms) {
      const s = state(node)
      if (s.ewma === undefined || s.ewma < ms) smooth(s, ms)
    },
    recordSuccess(node) {
      const s = nodes.get(node)
      if (s !== undefined) s.failures = 0
    },
    recordFailure(node, kind) {
      const s = state(node)
      s.failures++
      const wait =
        kind === 'integrity'
          ? INTEGRITY_COOL_OFF_MS
          : Math.min(COOL_OFF_MAX_MS, COOL_OFF_BASE_MS * 2 ** Math.min(16, s.failures - 1))
      s.coolOffUntil = Math.max(s.coolOffUntil, clock() + wait)
    },
    ttfbQuantile(node, q) {
      const s = nodes.get(node)
      return s === undefined || s.samples.length === 0 ? undefined : quantileOf(s.samples, q)
    },
    globalQuantile(q) {
      const all: number[] = []
      for (const s of nodes.values()) all.push(...s.samples)
      return all.length === 0 ? undefined : quantileOf(all, q)
    },
    coolingOff(node) {
      const s = nodes.get(node)
      return s !== undefined && s.coolOffUntil > clock()
    },
    rank(list, keyOf) {
      const now = clock()
      const rows = list.map((node, i) => {
        const s = nodes.get(keyOf(node))
        return { node, i, cool: s !== undefined && s.coolOffUntil > now ? 1 : 0, ttfb: s?.ewma }
      })
      let best = Number.POSITIVE_INFINITY
      for (const r of rows) if (r.cool === 0 && r.ttfb !== undefined && r.ttfb < best) best = r.ttfb
      // Nodes about as fast as the best (or not measured yet) keep the given order (the
      // tracker's score and placement); clearly slower ones go after them, fastest first.
      const slowAbove = best * SLOW_FACTOR + SLOW_MARGIN_MS
      const slowness = (ttfb: number | undefined) => (ttfb === undefined || ttfb <= slowAbove ? 0 : ttfb)
      return rows
        .sort((a, b) => a.cool - b.cool || slowness(a.ttfb) - slowness(b.ttfb) || a.i - b.i)
        .map((x) => x.node)
    },
    clear() {
      nodes.clear()
    },
  }
}
