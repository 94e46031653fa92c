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

/** Every level of the tree, leaves first, the 32-byte root last. */
function buildLevels(leaves: Leaves): Uint8Array[] {
  const levels = [leaves]
  let level = leaves
  while (level.length > HASH_SIZE) {
    level = nextLevel(level)
    levels.push(level)
  }
  return levels
}

/** Sibling hashes of leaf `index` from the bottom up, none where the node is promoted. */
function proofFromLevels(levels: readonly Uint8Array[], index: number): Uint8Array[] {
  const proof: Uint8Array[] = []
  let i = index
  for (const level of levels) {
    if (level.length === HASH_SIZE) break
    const sibling = i ^ 1
    if (sibling * HASH_SIZE < level.length) {
      proof.push(copyBytes(level, sibling * HASH_SIZE, (sibling + 1) * HASH_SIZE))
    }
    i >>>= 1
  }
  return proof
}

function assertLeafIndex(index: unknown, count: number): asserts index is number {
  if (!isCount(index) || index >= count) {
    throw new InvalidArgumentError(
      `leaf index must be an integer from 0 to ${count - 1}, got ${describe(index)}`,
    )
  }
}

/**
 * The Merkle root of a leaf list: pairs hashed as SHA-256(0x01 ‖ left ‖ right) level by
 * level, an odd node at the end of a level promoted unchanged. A single leaf is the root.
 * The tree is the same whatever the leaves commit to: chunks of a CID, entries of a site
 * manifest.
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
 * for levels where the node is the promoted odd one out. Hashes the whole tree; to prove
 * many leaves of one tree, build it once with `createMerkleTree`.
 *
 * @example
 * const proof = createProof(leaves, 7)
 * await verifyProof(cid, 7, leaves.subarray(7 * 32, 8 * 32), proof)
 */
export function createProof(leaves: Leaves, index: number): Uint8Array[] {
  assertLeavesShape(leaves)
  assertLeafIndex(index, leaves.length / HASH_SIZE)
  return proofFromLevels(buildLevels(leaves), index)
}

/** A whole tree kept in memory (about twice the leaf list), for proofs in O(log n). */
export interface MerkleTree {
  /** Number of leaves. */
  readonly count: number
  /** The root (a copy: changing it does not change the tree). */
  readonly root: Uint8Array
  /** The inclusion proof of leaf `index`, as `createProof` gives it. */
  proof(index: number): Uint8Array[]
}

/**
 * Builds every level of the tree over `leaves` once, so that proofs of any number of
 * leaves cost no further hashing: for a node serving the chunks of a large object, or the
 * entries of a large site manifest. The leaves are copied, so the caller may reuse them.
 *
 * @example
 * const tree = createMerkleTree(leaves)
 * const proof = tree.proof(7) // equal to createProof(leaves, 7)
 */
export function createMerkleTree(leaves: Leaves): MerkleTree {
  assertLeavesShape(leaves)
  const levels = buildLevels(copyBytes(leaves))
  const count = leaves.length / HASH_SIZE
  const top = levels[levels.length - 1] as Uint8Array
  return {
    count,
    get root() {
      return copyBytes(top)
    },
    proof(index) {
      assertLeafIndex(index, count)
      return proofFromLevels(levels, index)
    },
  }
}

/**
 * How many hashes the proof of leaf `index` among `count` leaves has: one per level
 * where the node has a sibling.
 *
 * @example
 * proofLength(39, 40) // 4: chunk 39 is promoted twice on the way up
 */
export function proofLength(index: number, count: number): number {
  let length = 0
  for (let i = index, n = count; n > 1; i >>>= 1, n = Math.ceil(n / 2)) {
    if ((i ^ 1) < n) length++
  }
  return length
}

/** What `verifyMerkleProof` checks: leaf `index` of a tree of `count` leaves with this root. */
export interface MerkleProofClaim {
  /** The 32-byte root the proof must lead to. */
  root: Uint8Array
  /** Number of leaves of the tree: fixes its shape, so it must come from a trusted source. */
  count: number
  /** Position of the leaf, `0 ≤ index < count`. */
  index: number
  /** The 32-byte leaf hash. */
  leaf: Uint8Array
  /** Sibling hashes from the bottom up. */
  proof: readonly Uint8Array[]
}

/**
 * Checks that `leaf` is leaf `index` of the tree of `count` leaves whose root is `root`,
 * synchronously. The expected proof length follows from `index` and `count`, so a proof
 * of any other length is refused before anything is hashed; at each level the index
 * decides whether the node is the left or the right input, so a proof for one position
 * never passes for another. Bad arguments throw `InvalidArgumentError`; a proof of the
 * wrong shape or one that misses the root throws `InvalidProofError`.
 *
 * @example
 * verifyMerkleProof({ root, count: 5, index: 4, leaf, proof })
 */
export function verifyMerkleProof(claim: MerkleProofClaim): void {
  if (typeof claim !== 'object' || claim === null)
    throw new InvalidArgumentError(`a proof claim must be an object, got ${describe(claim)}`)
  const { root, count, index, leaf, proof } = claim
  if (!(root instanceof Uint8Array) || root.length !== HASH_SIZE)
    throw new InvalidArgumentError(`root must be ${HASH_SIZE} bytes, got ${describe(root)}`)
  if (!isCount(count) || count === 0)
    throw new InvalidArgumentError(`count must be a positive integer, got ${describe(count)}`)
  assertLeafIndex(index, count)
  if (!(leaf instanceof Uint8Array) || leaf.length !== HASH_SIZE)
    throw new InvalidArgumentError(`leaf hash must be ${HASH_SIZE} bytes, got ${describe(leaf)}`)
  if (!Array.isArray(proof))
    throw new InvalidProofError(`a proof must be an array of hashes, got ${describe(proof)}`)
  const expected = proofLength(index, count)
  if (proof.length !== expected) {
    throw new InvalidProofError(
      `the proof of leaf ${index} of ${count} must have ${expected} hashes, got ${proof.length}`,
    )
  }
  const pair = new Uint8Array(2 * HASH_SIZE)
  const node = copyBytes(leaf)
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
  if (!equalHash(node, 0, root, 0)) {
    throw new InvalidProofError(`the proof of leaf ${index} of ${count} does not lead to the root`)
  }
}

/**
 * Checks that `leafHash` is leaf `index` of `cid` using its proof: `verifyMerkleProof`
 * with the CID's root and chunk count. A proof of another length, or one that does not
 * lead to the root, throws `InvalidProofError`.
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
  verifyMerkleProof({ root: cid.root, count: chunkCount(cid), index, leaf: leafHash, proof })
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
