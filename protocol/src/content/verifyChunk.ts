import { IntegrityError, InvalidArgumentError, InvalidProofError, isShoalError } from '../errors.ts'
import { describe } from './bytes.ts'
import { chunkCount, chunkSpan } from './chunks.ts'
import type { Cid } from './cid.ts'
import { hashChunk } from './hashChunk.ts'
import { encodeProof, proofLength, verifyProof } from './merkle.ts'

/**
 * Verifies one chunk on its own with its inclusion proof, without the leaf list: for a
 * client that fetches a single chunk. Bytes of the wrong length, or bytes whose hash
 * does not lead to the root through the proof, throw `IntegrityError`; a malformed proof
 * (hashes not 32 bytes, or the wrong number of them) throws `InvalidProofError`.
 *
 * @example
 * await verifyChunk(cid, 3, chunkBytes, decodeProof(proofBody))
 */
export async function verifyChunk(
  cid: Cid,
  index: number,
  bytes: Uint8Array,
  proof: readonly Uint8Array[],
): Promise<void> {
  const span = chunkSpan(cid, index)
  if (!(bytes instanceof Uint8Array))
    throw new InvalidArgumentError(`a chunk must be bytes, got ${describe(bytes)}`)
  // Check the proof's shape first, so that what is left to fail below is the match itself.
  encodeProof(proof)
  const expected = proofLength(index, chunkCount(cid))
  if (proof.length !== expected) {
    throw new InvalidProofError(
      `the proof of chunk ${index} must have ${expected} hashes, got ${proof.length}`,
    )
  }
  if (bytes.length !== span.end - span.start) {
    throw new IntegrityError(
      `chunk ${index} of ${cid.text} must be ${span.end - span.start} bytes, got ${bytes.length}`,
    )
  }
  try {
    await verifyProof(cid, index, await hashChunk(bytes), proof)
  } catch (error) {
    if (isShoalError(error) && error.code === 'SHOAL_ERR_INVALID_PROOF') {
      throw new IntegrityError(
        `chunk ${index} of ${cid.text} does not match: its hash and proof miss the root`,
        {
          cause: error,
        },
      )
    }
    throw error
  }
}
