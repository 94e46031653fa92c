import { createLeafHasher } from '#sha256'
import { InvalidArgumentError, TooLargeError, throwIfAborted } from '../errors.ts'
import { describe } from './bytes.ts'
import { type Cid, formatCid, isValidChunkSize } from './cid.ts'
import {
  DEFAULT_CHUNK_SIZE,
  HASH_SIZE,
  MAX_CHUNK_SIZE,
  MAX_CONTENT_SIZE,
  MIN_CHUNK_SIZE,
} from './constants.ts'
import { markVerified } from './leaves.ts'
import { type Leaves, merkleRoot } from './merkle.ts'
import { type ByteSource, openSource } from './source.ts'

export interface ComputeCidOptions {
  /** Chunk size in bytes, a power of two from 1 KiB to 16 MiB. Default 256 KiB. */
  chunkSize?: number
  signal?: AbortSignal
}

/**
 * Computes the CID and leaf list of some bytes, streaming: input pieces of any size are
 * hashed as they arrive and never concatenated (Node), or copied into one chunk buffer
 * (browsers), so memory stays at one chunk plus the pending piece whatever the size.
 *
 * @example
 * const { cid, leaves } = await computeCid(fs.createReadStream('site/app.js'))
 * await computeCid(new Uint8Array()) // cid.text 'saejaa3ruboop7m32tcokkrhgxn4auldysaot7mzxhb3ikendayl27ia5'
 */
export async function computeCid(
  source: Uint8Array | ByteSource,
  options: ComputeCidOptions = {},
): Promise<{ cid: Cid; leaves: Leaves }> {
  if (typeof options !== 'object' || options === null)
    throw new InvalidArgumentError(`computeCid options must be an object, got ${describe(options)}`)
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE
  if (!isValidChunkSize(chunkSize)) {
    throw new InvalidArgumentError(
      `chunkSize must be a power of two from ${MIN_CHUNK_SIZE} to ${MAX_CHUNK_SIZE}, got ${describe(chunkSize)}`,
    )
  }
  const { signal } = options
  throwIfAborted(signal)
  // A Uint8Array is itself an iterable (of numbers): treat it as one piece.
  const input = openSource(source instanceof Uint8Array ? [source] : source, signal)
  const hasher = createLeafHasher(chunkSize)
  let leaves = new Uint8Array(HASH_SIZE * 16)
  let count = 0
  let size = 0
  let filled = 0

  const addLeaf = (leaf: Uint8Array) => {
    if ((count + 1) * HASH_SIZE > leaves.length) {
      const grown = new Uint8Array(leaves.length * 2)
      grown.set(leaves)
      leaves = grown
    }
    leaves.set(leaf, count * HASH_SIZE)
    count++
  }

  try {
    for (;;) {
      let piece = input.next()
      if (piece instanceof Promise) piece = await piece
      if (piece === undefined) break
      size += piece.length
      if (size > MAX_CONTENT_SIZE) throw new TooLargeError('content is larger than 2^53 − 1 bytes')
      let offset = 0
      while (offset < piece.length) {
        const take = Math.min(chunkSize - filled, piece.length - offset)
        hasher.update(offset === 0 && take === piece.length ? piece : piece.subarray(offset, offset + take))
        offset += take
        filled += take
        if (filled === chunkSize) {
          const leaf = hasher.digest()
          addLeaf(leaf instanceof Promise ? await leaf : leaf)
          filled = 0
        }
      }
    }
    // The last, short chunk, or the one empty chunk of empty content.
    if (filled > 0 || count === 0) {
      const leaf = hasher.digest()
      addLeaf(leaf instanceof Promise ? await leaf : leaf)
    }
  } finally {
    await input.close()
  }
  const exact = leaves.length === count * HASH_SIZE ? leaves : leaves.slice(0, count * HASH_SIZE)
  const cid = formatCid({ chunkSize, size, root: merkleRoot(exact) })
  markVerified(cid, exact)
  return { cid, leaves: exact }
}
