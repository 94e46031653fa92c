/**
 * The (ticket, node) pairs `GET /v1/select?…&ticket=` hands out. Select is the hot path,
 * so a pair is only added to an in-memory set there; the set is written to the store
 * with the tracker's state flush (`addSelections`, which drops pairs of tickets this
 * tracker never issued). Settlement pays a receipt only when its (ticket, node) pair was
 * selected (docs/economics.md). The set is bounded: past `maxPending` pairs, new ones
 * are dropped and counted until the next flush.
 */
import type { TrackerMetrics } from '../metrics.ts'
import type { SelectionRow, StoreCallOptions, TrackerStore } from '../store/types.ts'

/** Pairs held between flushes, at most. */
export const DEFAULT_MAX_PENDING_SELECTIONS = 1_000_000

export interface SelectionLogInit {
  maxPending?: number
}

export interface SelectionLogComponents {
  store: TrackerStore
  clock: () => number
  metrics?: TrackerMetrics
}

export interface SelectionLog {
  /** Notes that `nodes` were handed to the holder of `ticket` (bytes32 lowercase hex). */
  record(ticket: string, nodes: readonly string[]): void
  /** Pairs waiting for the next flush. */
  readonly pending: number
  /** Writes the pending pairs; returns how many were new to the store. */
  flush(options?: StoreCallOptions): Promise<number>
}

/**
 * @example
 * const log = createSelectionLog({}, { store, clock: Date.now })
 * log.record(ticketId, picked.map((p) => p.node))
 * await log.flush()
 */
export function createSelectionLog(init: SelectionLogInit, components: SelectionLogComponents): SelectionLog {
  const { store, clock, metrics } = components
  const maxPending = init.maxPending ?? DEFAULT_MAX_PENDING_SELECTIONS
  // key: ticket + node (fixed widths: 66 + 42 characters); value: first time seen
  let pending = new Map<string, number>()
  return {
    record(ticket, nodes) {
      const at = clock()
      for (const node of nodes) {
        const key = ticket + node
        if (pending.has(key)) continue
        if (pending.size >= maxPending) {
          metrics?.selectionsDropped.inc()
          continue
        }
        pending.set(key, at)
      }
    },
    get pending() {
      return pending.size
    },
    async flush(options) {
      if (pending.size === 0) return 0
      const taken = pending
      pending = new Map()
      const rows: SelectionRow[] = []
      for (const [key, at] of taken) rows.push({ ticket: key.slice(0, 66), node: key.slice(66), at })
      try {
        return await store.addSelections(rows, options)
      } catch (err) {
        // keep them for the next flush (older first-seen times win)
        for (const [key, at] of taken) if (!pending.has(key)) pending.set(key, at)
        throw err
      }
    },
  }
}
