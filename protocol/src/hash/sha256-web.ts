/**
 * SHA-256 for browsers and every non-Node runtime: WebCrypto for chunks (native speed,
 * but async and one-shot) and viem's synchronous pure-JS SHA-256 for the 65-byte tree
 * nodes, where a WebCrypto round trip would cost far more than the hash itself and
 * would force every Merkle function to be async.
 */
import { sha256 } from 'viem'
import type { LeafHasher } from './types.ts'

export const SHA256_BACKEND = 'web'

const DEFAULT_CAPACITY = 64 * 1024

/**
 * A leaf hasher that buffers the chunk (WebCrypto cannot hash incrementally). The
 * buffer starts with the 0x00 leaf prefix so `digest()` hashes it without another copy;
 * `crypto.subtle.digest` copies its input before returning, so the buffer is reused at
 * once for the next chunk.
 *
 * @example
 * const h = createLeafHasher(262144)
 * h.update(new Uint8Array([1, 2]))
 * const leaf = await h.digest()
 */
export function createLeafHasher(capacity = DEFAULT_CAPACITY): LeafHasher {
  let buffer = new Uint8Array(1 + capacity)
  let length = 1
  return {
    update(piece) {
      if (length + piece.length > buffer.length) {
        const grown = new Uint8Array(Math.max(buffer.length * 2, length + piece.length))
        grown.set(buffer.subarray(0, length))
        buffer = grown
      }
      buffer.set(piece, length)
      length += piece.length
    },
    digest() {
      const pending = crypto.subtle.digest('SHA-256', buffer.subarray(0, length))
      length = 1
      return pending.then((digest) => new Uint8Array(digest))
    },
  }
}

const encoder = new TextEncoder()
// 0x00 ‖ UTF-8 text, reused across calls; grown when a text may not fit.
let textScratch = new Uint8Array(1024)

/**
 * SHA-256(0x00 ‖ UTF-8 of `text`) synchronously with viem's pure-JS SHA-256, for short
 * leaves such as manifest entries (a WebCrypto round trip each would cost more than the
 * hash). The text is encoded straight behind the prefix in a reused buffer.
 *
 * @example
 * const leaf = hashTextLeaf('{"path":"/a"}')
 */
export function hashTextLeaf(text: string): Uint8Array {
  // A UTF-16 unit never takes more than 3 UTF-8 bytes.
  if (text.length * 3 + 1 > textScratch.length) {
    textScratch = new Uint8Array(Math.max(text.length * 3 + 1, textScratch.length * 2))
  }
  const { written } = encoder.encodeInto(text, textScratch.subarray(1))
  return sha256(textScratch.subarray(0, written + 1), 'bytes')
}

const scratch = new Uint8Array(65)
scratch[0] = 0x01

/**
 * SHA-256(0x01 ‖ left ‖ right) for each 64-byte pair of `pairs`, written into `out`.
 *
 * @example
 * const out = new Uint8Array(32)
 * hashPairs(new Uint8Array(64), out)
 */
export function hashPairs(pairs: Uint8Array, out: Uint8Array): void {
  const count = pairs.length >>> 6
  for (let i = 0; i < count; i++) {
    scratch.set(pairs.subarray(i * 64, i * 64 + 64), 1)
    out.set(sha256(scratch, 'bytes'), i * 32)
  }
}
