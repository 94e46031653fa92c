/**
 * Content ids, chunk Merkle trees, inclusion proofs and streaming verification.
 * The scheme is specified in docs/protocol.md.
 */
export { type AlignedRange, alignRange, chunkCount, chunkSpan } from './chunks.ts'
export {
  type ChunkVerifier,
  type ChunkVerifierOptions,
  createChunkVerifier,
  type VerifiedChunk,
} from './chunkVerifier.ts'
export { type Cid, type CidParts, formatCid, isCidText, isValidChunkSize, parseCid } from './cid.ts'
export { type ComputeCidOptions, computeCid } from './computeCid.ts'
export {
  CID_TEXT_PREFIX,
  CID_VERSION,
  DEFAULT_CHUNK_SIZE,
  HASH_SIZE,
  MAX_CHUNK_SIZE,
  MAX_CONTENT_SIZE,
  MIN_CHUNK_SIZE,
} from './constants.ts'
export { hashChunk } from './hashChunk.ts'
export { verifyLeaves } from './leaves.ts'
export {
  createMerkleTree,
  createProof,
  decodeProof,
  encodeProof,
  type Leaves,
  type MerkleProofClaim,
  type MerkleTree,
  merkleRoot,
  proofLength,
  verifyMerkleProof,
  verifyProof,
} from './merkle.ts'
export type { ByteSource } from './source.ts'
export { verifyChunk } from './verifyChunk.ts'
export { type VerifyStreamOptions, verifyStream } from './verifyStream.ts'
