import { InvalidLeavesError } from '../errors.ts'
import { describe, equalHash } from './bytes.ts'
import { chunkCount } from './chunks.ts'
import { assertCidObject, type Cid } from './cid.ts'
import { HASH_SIZE } from './constants.ts'
import { type Leaves, merkleRoot } from './merkle.ts'

// Leaf lists already checked against a CID (by text), so a verifier handed the result of
// verifyLeaves or computeCid does not rebuild the tree again.
const verified = new WeakMap<Uint8Array, string>()

/** Records that `leaves` are the leaves of `cid`. Internal. */
export function markVerified(cid: Cid, leaves: Leaves): void {
  verified.set(leaves, cid.text)
}

/**
 * Checks a leaf list against its CID synchronously (the tree is hashed with the sync
 * backend in every runtime). Internal; `verifyLeaves` is the public form.
 */
export function checkLeaves(cid: Cid, leaves: Leaves): Leaves {
  assertCidObject(cid)
  if (!(leaves instanceof Uint8Array))
    throw new InvalidLeavesError(`leaves must be bytes, got ${describe(leaves)}`)
  if (verified.get(leaves) === cid.text) return leaves
  const count = chunkCount(cid)
  if (leaves.length !== count * HASH_SIZE) {
    throw new InvalidLeavesError(
      `${cid.text} has ${count} chunks, so ${count * HASH_SIZE} bytes of leaves, got ${leaves.length}`,
    )
  }
  if (!equalHash(merkleRoot(leaves), 0, cid.root, 0)) {
    throw new InvalidLeavesError(`the leaves do not rebuild the root of ${cid.text}`)
  }
  markVerified(cid, leaves)
  return leaves
}

/**
 * Checks that `leaves` (e.g. the body of `GET /c/<cid>/leaves`) has exactly one hash per
 * chunk and rebuilds the CID's root; returns them. Throws `InvalidLeavesError` otherwise.
 * Verifiers trust a list once it has passed, so do not modify it afterwards.
 *
 * @example
 * const leaves = await verifyLeaves(cid, new Uint8Array(await res.arrayBuffer()))
 */
export async function verifyLeaves(cid: Cid, leaves: Leaves): Promise<Leaves> {
  return checkLeaves(cid, leaves)
}
