import { createLeafHasher } from '#sha256'
import { IntegrityError, InvalidArgumentError } from '../errors.ts'
import type { MaybePromise } from '../hash/types.ts'
import { describe, equalHash } from './bytes.ts'
import { type AlignedRange, alignRange } from './chunks.ts'
import type { Cid } from './cid.ts'
import { HASH_SIZE } from './constants.ts'
import { checkLeaves } from './leaves.ts'
import type { Leaves } from './merkle.ts'

/** A chunk whose bytes matched its leaf hash. */
export interface VerifiedChunk {
  /** Chunk index in the object. */
  readonly index: number
  /** Byte offset of the chunk in the object. */
  readonly offset: number
  /** Chunk length in bytes (only the last chunk of an object is short). */
  readonly length: number
  /**
   * The chunk's bytes as the pieces (or parts of pieces) that were written, in order,
   * without a copy. Concatenate them if one buffer is needed.
   */
  readonly pieces: readonly Uint8Array[]
}

export interface ChunkVerifierOptions {
  /** First byte of the range to verify; the verifier starts at its chunk. Default 0. */
  start?: number
  /** End (exclusive) of the range; the verifier stops after its chunk. Default: the size. */
  end?: number
}

/**
 * Push-based verification: write the bytes of the aligned span as they arrive, get back
 * the chunks that are complete and verified.
 */
export interface ChunkVerifier {
  /** The chunk-aligned span the written bytes must cover, from `alignRange`. */
  readonly range: AlignedRange
  /** Bytes written so far, counted from `range.fetchStart`. */
  readonly received: number
  /**
   * Adds the next piece. Resolves to the chunks it completed, each verified; rejects
   * with `IntegrityError` at the first chunk that does not match (none of the chunks this
   * write completed is returned then) or when the bytes overrun `range.fetchEnd`. After
   * a rejection every call rejects with the same error. Await each write before the next
   * to receive chunks in order. Pieces are retained until their chunk is returned, so a
   * source must not reuse a buffer it has handed over (Node streams and fetch never do).
   */
  write(piece: Uint8Array): Promise<readonly VerifiedChunk[]>
  /**
   * Declares the end of the input. Rejects with `IntegrityError` when bytes are missing;
   * resolves to the last chunks (only ever the single empty chunk of an empty object).
   */
  end(): Promise<readonly VerifiedChunk[]>
}

/**
 * The sync-capable core that `createChunkVerifier` and `verifyStream` share. Internal.
 * Unlike the public verifier, a write that meets a bad chunk returns the verified chunks
 * before it and sets `failure`; the next call throws it.
 */
export interface VerifierCore {
  readonly range: AlignedRange
  readonly received: number
  readonly failure: Error | undefined
  write(piece: Uint8Array): MaybePromise<readonly VerifiedChunk[]>
  end(): MaybePromise<readonly VerifiedChunk[]>
}

const NONE: readonly VerifiedChunk[] = Object.freeze([])

/** Builds the verifier core; throws on bad leaves (`InvalidLeavesError`) or range. */
export function createVerifierCore(
  cid: Cid,
  leaves: Leaves,
  options: ChunkVerifierOptions = {},
): VerifierCore {
  checkLeaves(cid, leaves)
  const range = alignRange(cid, options.start ?? 0, options.end ?? cid.size)
  const expected = range.fetchEnd - range.fetchStart
  const { chunkSize, size } = cid
  const hasher = createLeafHasher(chunkSize)

  let index = range.firstChunk
  let offset = range.fetchStart
  let remaining = Math.min(chunkSize, size - offset)
  let pieces: Uint8Array[] = []
  let received = 0
  let ended = false
  let failure: Error | undefined

  const fail = (error: Error): never => {
    failure = error
    pieces = []
    throw error
  }

  const mismatch = (chunk: VerifiedChunk) =>
    new IntegrityError(`chunk ${chunk.index} of ${cid.text} does not match its leaf hash`)

  // Returns the verified chunks before the first bad one and records the failure: the
  // caller decides whether that verified prefix is still released.
  const check = (chunks: VerifiedChunk[], digests: Uint8Array[]): readonly VerifiedChunk[] => {
    for (let k = 0; k < chunks.length; k++) {
      const chunk = chunks[k]!
      if (!equalHash(digests[k]!, 0, leaves, chunk.index * HASH_SIZE)) {
        failure = mismatch(chunk)
        pieces = []
        return chunks.slice(0, k)
      }
    }
    return chunks
  }

  /** Closes the current chunk: snapshot its digest and move to the next one. */
  const close = (chunks: VerifiedChunk[], digests: MaybePromise<Uint8Array>[]) => {
    chunks.push({ index, offset, length: Math.min(chunkSize, size - offset), pieces })
    digests.push(hasher.digest())
    index++
    offset += chunkSize
    remaining = Math.min(chunkSize, size - offset)
    pieces = []
  }

  const settle = (chunks: VerifiedChunk[], digests: MaybePromise<Uint8Array>[]) => {
    if (chunks.length === 0) return NONE
    // Node digests synchronously; WebCrypto's come back as promises.
    if (digests.every((d) => !(d instanceof Promise))) return check(chunks, digests as Uint8Array[])
    return Promise.all(digests).then((resolved) => check(chunks, resolved))
  }

  const assertOpen = () => {
    if (failure !== undefined) throw failure
    if (ended) throw new InvalidArgumentError('the chunk verifier has already ended')
  }

  return {
    range,
    get received() {
      return received
    },
    get failure() {
      return failure
    },
    write(piece) {
      assertOpen()
      if (!(piece instanceof Uint8Array)) {
        throw new InvalidArgumentError(`a piece must be a Uint8Array, got ${describe(piece)}`)
      }
      if (piece.length === 0) return NONE
      if (received + piece.length > expected) {
        fail(
          new IntegrityError(
            `too many bytes for chunks ${range.firstChunk}..${range.lastChunk} of ${cid.text}: expected ${expected}, got at least ${received + piece.length}`,
          ),
        )
      }
      received += piece.length
      const chunks: VerifiedChunk[] = []
      const digests: MaybePromise<Uint8Array>[] = []
      let at = 0
      while (at < piece.length) {
        const take = Math.min(remaining, piece.length - at)
        const part = at === 0 && take === piece.length ? piece : piece.subarray(at, at + take)
        hasher.update(part)
        pieces.push(part)
        at += take
        remaining -= take
        if (remaining === 0) close(chunks, digests)
      }
      return settle(chunks, digests)
    },
    end() {
      assertOpen()
      ended = true
      if (received < expected) {
        fail(
          new IntegrityError(
            `truncated: got ${received} of ${expected} bytes for chunks ${range.firstChunk}..${range.lastChunk} of ${cid.text}, chunk ${index} is incomplete`,
          ),
        )
      }
      const chunks: VerifiedChunk[] = []
      const digests: MaybePromise<Uint8Array>[] = []
      // Only an empty object has a chunk that no write completes: its one empty chunk.
      if (size === 0) close(chunks, digests)
      return settle(chunks, digests)
    },
  }
}

/**
 * A push-based verifier for the edge node: feed it PUT bodies or origin/peer bytes
 * piece by piece and cache only the chunks it hands back. `leaves` should come from
 * `verifyLeaves` or `computeCid`; any other leaf list is checked against the CID here
 * (synchronously), and a mismatch throws `InvalidLeavesError`. With `start`/`end` it
 * expects exactly the aligned span of that range (see `alignRange`).
 *
 * @example
 * const verifier = createChunkVerifier(cid, leaves)
 * for await (const piece of request) {
 *   for (const chunk of await verifier.write(piece)) await cache.put(cid, chunk.index, chunk.pieces)
 * }
 * await verifier.end()
 */
export function createChunkVerifier(
  cid: Cid,
  leaves: Leaves,
  options: ChunkVerifierOptions = {},
): ChunkVerifier {
  const core = createVerifierCore(cid, leaves, options)
  return {
    range: core.range,
    get received() {
      return core.received
    },
    async write(piece) {
      const chunks = await core.write(piece)
      if (core.failure !== undefined) throw core.failure
      return chunks
    },
    async end() {
      const chunks = await core.end()
      if (core.failure !== undefined) throw core.failure
      return chunks
    },
  }
}
