import { hashPairs } from '#sha256'
import { InvalidArgumentError, InvalidLeavesError, InvalidProofError } from '../errors.ts'
import { copyBytes, describe, equalHash, isCount } from './bytes.ts'
import { assertChunkIndex, chunkCount } from './chunks.ts'
import type { Cid } from './cid.ts'
import { HASH_SIZE } from './constants.ts'

/**
 * The leaf hashes of every chunk, concatenated: `count × 32` bytes. This is also the
 * body of `GET /c/<cid>/leaves` (`application/octet-stream`).
 */
export type Leaves = Uint8Array

/** The level above `level`: pairs hashed, an odd last node promoted unchanged. */
function nextLevel(level: Uint8Array): Uint8Array {
  const count = level.length / HASH_SIZE
  const pairs = count >>> 1
  const out = new Uint8Array((count - pairs) * HASH_SIZE)
  hashPairs(level.subarray(0, pairs * 2 * HASH_SIZE), out)
  if (count % 2 === 1) out.set(level.subarray((count - 1) * HASH_SIZE), pairs * HASH_SIZE)
  return out
}

function assertLeavesShape(leaves: unknown): asserts leaves is Leaves {
  if (!(leaves instanceof Uint8Array))
    throw new InvalidLeavesError(`leaves must be bytes, got ${describe(leaves)}`)
  if (leaves.length === 0 || leaves.length % HASH_SIZE !== 0) {
    throw new InvalidLeavesError(
      `leaves must be a non-zero multiple of ${HASH_SIZE} bytes, got ${leaves.length}`,
    )
  }
}

/**
 * The Merkle root of a leaf list: pairs hashed as SHA-256(0x01 ‖ left ‖ right) level by
 * level, an odd node at the end of a level promoted unchanged. A single leaf is the root.
 *
 * @example
 * const root = merkleRoot(leaves)
 */
export function merkleRoot(leaves: Leaves): Uint8Array {
  assertLeavesShape(leaves)
  let level = leaves
  while (level.length > HASH_SIZE) level = nextLevel(level)
  return level === leaves ? copyBytes(leaves) : level
}

/**
 * The inclusion proof of leaf `index`: sibling hashes from the bottom up, with nothing
 * for levels where the node is the promoted odd one out.
 *
 * @example
 * const proof = createProof(leaves, 7)
 * await verifyProof(cid, 7, leaves.subarray(7 * 32, 8 * 32), proof)
 */
export function createProof(leaves: Leaves, index: number): Uint8Array[] {
  assertLeavesShape(leaves)
  const count = leaves.length / HASH_SIZE
  if (!isCount(index) || index >= count) {
    throw new InvalidArgumentError(
      `leaf index must be an integer from 0 to ${count - 1}, got ${describe(index)}`,
    )
  }
  const proof: Uint8Array[] = []
  let level = leaves
  let i = index
  while (level.length > HASH_SIZE) {
    const sibling = i ^ 1
    if (sibling * HASH_SIZE < level.length) {
      proof.push(copyBytes(level, sibling * HASH_SIZE, (sibling + 1) * HASH_SIZE))
    }
    level = nextLevel(level)
    i >>>= 1
  }
  return proof
}

/**
 * How many hashes the proof of leaf `index` among `count` leaves has: one per level
 * where the node has a sibling.
 *
 * @example
 * proofLength(39, 40) // 5: chunk 39 is promoted once on the way up
 */
export function proofLength(index: number, count: number): number {
  let length = 0
  for (let i = index, n = count; n > 1; i >>>= 1, n = Math.ceil(n / 2)) {
    if ((i ^ 1) < n) length++
  }
  return length
}

/**
 * Checks that `leafHash` is leaf `index` of `cid` using its proof. The expected proof
 * length follows from the index and the chunk count; a proof of another length, or one
 * that does not lead to the root, throws `InvalidProofError`.
 *
 * @example
 * await verifyProof(cid, 3, leafHash, decodeProof(body))
 */
export async function verifyProof(
  cid: Cid,
  index: number,
  leafHash: Uint8Array,
  proof: readonly Uint8Array[],
): Promise<void> {
  assertChunkIndex(cid, index)
  if (!(leafHash instanceof Uint8Array) || leafHash.length !== HASH_SIZE) {
    throw new InvalidArgumentError(`leaf hash must be ${HASH_SIZE} bytes, got ${describe(leafHash)}`)
  }
  if (!Array.isArray(proof))
    throw new InvalidProofError(`a proof must be an array of hashes, got ${describe(proof)}`)
  const count = chunkCount(cid)
  const expected = proofLength(index, count)
  if (proof.length !== expected) {
    throw new InvalidProofError(
      `the proof of chunk ${index} of ${count} must have ${expected} hashes, got ${proof.length}`,
    )
  }
  const pair = new Uint8Array(2 * HASH_SIZE)
  const node = copyBytes(leafHash)
  let k = 0
  for (let i = index, n = count; n > 1; i >>>= 1, n = Math.ceil(n / 2)) {
    if ((i ^ 1) >= n) continue
    const sibling = proof[k++]
    if (!(sibling instanceof Uint8Array) || sibling.length !== HASH_SIZE) {
      throw new InvalidProofError(`proof hash ${k - 1} must be ${HASH_SIZE} bytes, got ${describe(sibling)}`)
    }
    pair.set(i % 2 === 0 ? node : sibling, 0)
    pair.set(i % 2 === 0 ? sibling : node, HASH_SIZE)
    hashPairs(pair, node)
  }
  if (!equalHash(node, 0, cid.root, 0)) {
    throw new InvalidProofError(`the proof of chunk ${index} does not lead to the root of ${cid.text}`)
  }
}

/**
 * A proof on the wire: its hashes concatenated (`application/octet-stream`).
 *
 * @example
 * const body = encodeProof(createProof(leaves, 7))
 */
export function encodeProof(proof: readonly Uint8Array[]): Uint8Array {
  if (!Array.isArray(proof))
    throw new InvalidProofError(`a proof must be an array of hashes, got ${describe(proof)}`)
  const out = new Uint8Array(proof.length * HASH_SIZE)
  proof.forEach((hash, k) => {
    if (!(hash instanceof Uint8Array) || hash.length !== HASH_SIZE) {
      throw new InvalidProofError(`proof hash ${k} must be ${HASH_SIZE} bytes, got ${describe(hash)}`)
    }
    out.set(hash, k * HASH_SIZE)
  })
  return out
}

/**
 * Splits an encoded proof into its hashes (views into `bytes`, not copies). A length
 * that is not a multiple of 32 throws `InvalidProofError`; whether the count is right
 * for a chunk is `verifyProof`'s check.
 *
 * @example
 * const proof = decodeProof(new Uint8Array(await response.arrayBuffer()))
 */
export function decodeProof(bytes: Uint8Array): Uint8Array[] {
  if (!(bytes instanceof Uint8Array) || bytes.length % HASH_SIZE !== 0) {
    throw new InvalidProofError(
      `an encoded proof is a multiple of ${HASH_SIZE} bytes, got ${describe(bytes)}`,
    )
  }
  const proof: Uint8Array[] = []
  for (let offset = 0; offset < bytes.length; offset += HASH_SIZE) {
    proof.push(bytes.subarray(offset, offset + HASH_SIZE))
  }
  return proof
}
