/**
 * Leaf lists (`GET <node>/c/<cid>/leaves`), verified against the CID with `verifyLeaves`
 * and kept per CID in a cache bounded in bytes. A one-chunk object needs no request: its
 * only leaf is the CID's root.
 */
import {
  type Cid,
  chunkCount,
  HASH_SIZE,
  InvalidLeavesError,
  type Leaves,
  verifyLeaves,
} from '@shoal/protocol'

export interface LeavesCache {
  get(cid: Cid): Leaves | undefined
  set(cid: Cid, leaves: Leaves): void
  clear(): void
}

/**
 * The leaves of a one-chunk object, without a request: its root is its leaf.
 *
 * @example
 * const leaves = await rootLeaves(cid) // cid of 1 KiB
 */
export async function rootLeaves(cid: Cid): Promise<Leaves | undefined> {
  if (chunkCount(cid) !== 1) return undefined
  return verifyLeaves(cid, new Uint8Array(cid.root))
}

/** Bytes of a CID's leaf list. */
export function leavesLength(cid: Cid): number {
  return chunkCount(cid) * HASH_SIZE
}

/**
 * An LRU of verified leaf lists holding at most `maxBytes`.
 *
 * @example
 * const cache = createLeavesCache(16 * 2 ** 20)
 */
export function createLeavesCache(maxBytes: number): LeavesCache {
  const map = new Map<string, Leaves>()
  let bytes = 0
  return {
    get(cid) {
      const hit = map.get(cid.text)
      if (hit !== undefined) {
        map.delete(cid.text)
        map.set(cid.text, hit)
      }
      return hit
    },
    set(cid, leaves) {
      if (leaves.length > maxBytes || map.has(cid.text)) return
      map.set(cid.text, leaves)
      bytes += leaves.length
      while (bytes > maxBytes) {
        const [oldest, value] = map.entries().next().value as [string, Leaves]
        map.delete(oldest)
        bytes -= value.length
      }
    },
    clear() {
      map.clear()
      bytes = 0
    },
  }
}

/** Reads a whole (small, bounded) body into one buffer. */
export async function readAll(body: AsyncIterable<Uint8Array>, expected: number): Promise<Uint8Array> {
  const out = new Uint8Array(expected)
  let at = 0
  for await (const piece of body) {
    if (at + piece.length > expected)
      throw new InvalidLeavesError(`the leaf list is longer than the ${expected} bytes the CID has`)
    out.set(piece, at)
    at += piece.length
  }
  return at === expected ? out : out.subarray(0, at)
}
