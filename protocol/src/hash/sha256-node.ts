/**
 * SHA-256 on node:crypto (OpenSSL, SHA-NI where the CPU has it). Selected by the
 * `#sha256` import under the `node` condition; never reachable in a browser build.
 */
import { createHash, type Hash, hash } from 'node:crypto'
import type { LeafHasher } from './types.ts'

export const SHA256_BACKEND = 'node'

const LEAF_PREFIX = new Uint8Array([0x00])

function view(digest: Buffer): Uint8Array {
  // A plain Uint8Array over the same memory: callers compare and serialise these, and a
  // Buffer subclass would leak Node-only behaviour into a browser-shaped API.
  return new Uint8Array(digest.buffer, digest.byteOffset, digest.byteLength)
}

/**
 * An incremental leaf hasher: each piece goes straight into OpenSSL, so verifying a
 * stream never concatenates the pieces of a chunk.
 *
 * @example
 * const h = createLeafHasher()
 * h.update(new Uint8Array([1, 2]))
 * const leaf = h.digest() // SHA-256(0x00 ‖ 01 02), synchronously
 */
export function createLeafHasher(_capacity?: number): LeafHasher {
  let current: Hash | undefined
  return {
    update(piece) {
      current ??= createHash('sha256').update(LEAF_PREFIX)
      current.update(piece)
    },
    digest() {
      const done = current ?? createHash('sha256').update(LEAF_PREFIX)
      current = undefined
      return view(done.digest())
    },
  }
}

/**
 * SHA-256(0x00 ‖ UTF-8 of `text`) in one call: `crypto.hash` encodes the string natively,
 * and U+0000 encodes to the 0x00 prefix, so no bytes are built in JavaScript.
 *
 * @example
 * const leaf = hashTextLeaf('{"path":"/a"}')
 */
export function hashTextLeaf(text: string): Uint8Array {
  return view(hash('sha256', `\0${text}`, 'buffer'))
}

const scratch = new Uint8Array(65)
scratch[0] = 0x01

/**
 * SHA-256(0x01 ‖ left ‖ right) for each 64-byte pair of `pairs`, written into `out`.
 * One-shot `crypto.hash` is about twice as fast as `createHash` for 65-byte inputs.
 *
 * @example
 * const out = new Uint8Array(32)
 * hashPairs(new Uint8Array(64), out)
 */
export function hashPairs(pairs: Uint8Array, out: Uint8Array): void {
  const count = pairs.length >>> 6
  for (let i = 0; i < count; i++) {
    scratch.set(pairs.subarray(i * 64, i * 64 + 64), 1)
    out.set(hash('sha256', scratch, 'buffer'), i * 32)
  }
}
