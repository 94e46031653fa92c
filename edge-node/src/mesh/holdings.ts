/**
 * What this node can serve to mesh peers: objects it holds whole and verified, read
 * straight from the store. A mesh request never starts a fill (no amplification, no
 * loops between nodes asking each other).
 */
import { type Cid, verifyLeaves } from '@shoal/protocol'
import { contentKey, leavesKey } from '../content/content-service.ts'
import type { ObjectStore } from '../store/index.ts'

export interface MeshHoldings {
  has(cid: Cid): boolean
  /** The CID's leaves, checked against it; undefined when not held. */
  leaves(cid: Cid, options?: { signal?: AbortSignal }): Promise<Uint8Array | undefined>
  /** Bytes `[start, end)` of the object, in pieces; undefined when not held. */
  read(
    cid: Cid,
    start: number,
    end: number,
    options?: { signal?: AbortSignal },
  ): Promise<Uint8Array | AsyncIterable<Uint8Array> | undefined>
}

/**
 * @example
 * const holdings = storeHoldings(node.store)
 */
export function storeHoldings(store: ObjectStore): MeshHoldings {
  return {
    has: (cid) => store.has(contentKey(cid)) && store.has(leavesKey(cid)),
    async leaves(cid, options = {}) {
      const entry = store.memory.get(leavesKey(cid)) ?? (await store.get(leavesKey(cid), options))
      if (entry === undefined) return undefined
      const bytes = entry.tier === 'memory' ? entry.body : await entry.readAll(options)
      try {
        return await verifyLeaves(cid, bytes)
      } catch {
        return undefined
      }
    },
    async read(cid, start, end, options = {}) {
      const entry = store.memory.get(contentKey(cid)) ?? (await store.get(contentKey(cid), options))
      if (entry === undefined || entry.size !== cid.size) return undefined
      if (entry.tier === 'memory') return entry.body.subarray(start, end)
      return entry.open({ start, end }, options)
    },
  }
}
