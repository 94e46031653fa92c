import { InvalidArgumentError, RangeNotSatisfiableError } from '../errors.ts'
import { describe, isCount } from './bytes.ts'
import { assertCidObject, type Cid } from './cid.ts'

/**
 * Number of chunks of the content: ceil(size / chunkSize), and 1 for empty content
 * (one empty chunk, so every CID has at least one leaf).
 *
 * @example
 * chunkCount(parseCid(text)) // 40 for 10 MiB at 256 KiB
 */
export function chunkCount(cid: Cid): number {
  assertCidObject(cid)
  // size < 2^53 and chunkSize is a power of two, so the division is exact.
  return Math.max(1, Math.ceil(cid.size / cid.chunkSize))
}

/**
 * The byte span `[start, end)` of chunk `index`. Only the last chunk can be short.
 *
 * @example
 * chunkSpan(cid, 0) // { start: 0, end: 262144 }
 */
export function chunkSpan(cid: Cid, index: number): { start: number; end: number } {
  assertChunkIndex(cid, index)
  const start = index * cid.chunkSize
  return { start, end: Math.min(cid.size, start + cid.chunkSize) }
}

/** The chunk-aligned span to fetch so that a byte range can be verified. */
export type AlignedRange = {
  /** First byte to fetch: the start of `firstChunk`. */
  readonly fetchStart: number
  /** End (exclusive) of the bytes to fetch: the end of `lastChunk`. */
  readonly fetchEnd: number
  readonly firstChunk: number
  /** Last chunk (inclusive) holding bytes of the range. */
  readonly lastChunk: number
}

/**
 * The chunk-aligned span that must be fetched to verify bytes `[start, endExclusive)`.
 *
 * The range must be non-empty and inside the object (`0 ≤ start < end ≤ size`), else
 * `RangeNotSatisfiableError`; clamp an HTTP `Range` header to the size first. The empty
 * object is the one exception: `[0, 0)` is its whole (empty) content and aligns to its
 * single empty chunk, so it can still be verified. Non-integer or negative bounds throw
 * `InvalidArgumentError`.
 *
 * @example
 * alignRange(cid, 300000, 300010)
 * // { fetchStart: 262144, fetchEnd: 524288, firstChunk: 1, lastChunk: 1 }
 */
export function alignRange(cid: Cid, start: number, endExclusive: number): AlignedRange {
  if (!isCount(start))
    throw new InvalidArgumentError(`range start must be an integer ≥ 0, got ${describe(start)}`)
  if (!isCount(endExclusive)) {
    throw new InvalidArgumentError(`range end must be an integer ≥ 0, got ${describe(endExclusive)}`)
  }
  assertCidObject(cid)
  const { size, chunkSize } = cid
  if (size === 0 && start === 0 && endExclusive === 0) {
    return { fetchStart: 0, fetchEnd: 0, firstChunk: 0, lastChunk: 0 }
  }
  if (start >= endExclusive || endExclusive > size) {
    throw new RangeNotSatisfiableError(
      `bytes [${start}, ${endExclusive}) are not a non-empty range inside ${size} bytes`,
    )
  }
  const firstChunk = Math.floor(start / chunkSize)
  const lastChunk = Math.floor((endExclusive - 1) / chunkSize)
  return {
    fetchStart: firstChunk * chunkSize,
    fetchEnd: Math.min(size, (lastChunk + 1) * chunkSize),
    firstChunk,
    lastChunk,
  }
}

/** Throws `InvalidArgumentError` unless `index` names a chunk of `cid`. */
export function assertChunkIndex(cid: Cid, index: number): void {
  const count = chunkCount(cid)
  if (!isCount(index) || index >= count) {
    throw new InvalidArgumentError(
      `chunk index must be an integer from 0 to ${count - 1}, got ${describe(index)}`,
    )
  }
}
