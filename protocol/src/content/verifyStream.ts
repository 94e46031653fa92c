import { InvalidArgumentError, throwIfAborted } from '../errors.ts'
import { createVerifierCore } from './chunkVerifier.ts'
import { assertCidObject, type Cid } from './cid.ts'
import type { Leaves } from './merkle.ts'
import { type ByteSource, openSource } from './source.ts'

export interface VerifyStreamOptions {
  /** The CID's leaf list, from `verifyLeaves` or `computeCid`. */
  leaves: Leaves
  /** First byte to yield. Default 0. */
  start?: number
  /** End (exclusive) of the bytes to yield. Default: the size. */
  end?: number
  signal?: AbortSignal
}

/**
 * Verifies a stream of content bytes chunk by chunk and yields only verified bytes.
 *
 * `source` delivers the chunk-aligned span of `[start, end)`, beginning at
 * `alignRange(cid, start, end).fetchStart` and ending at its `fetchEnd`. Each chunk is
 * buffered (as references to the incoming pieces), hashed and compared with its leaf;
 * only then are its bytes, trimmed to `[start, end)`, yielded — as views of the pieces,
 * without a copy. The first chunk that does not match throws `IntegrityError` naming it:
 * every verified chunk before it has been released, no byte of it has. A source that ends
 * early or delivers more than the span also throws `IntegrityError`. Aborting `signal`
 * throws `AbortError`, also while the source is stalled. The source is closed when the
 * generator stops early. Pieces are retained until their chunk is verified, so a source
 * must not reuse a buffer it has handed over (Node streams and fetch bodies never do).
 *
 * @example
 * const { fetchStart, fetchEnd } = alignRange(cid, 1000, 2000)
 * const res = await fetch(url, { headers: { range: `bytes=${fetchStart}-${fetchEnd - 1}` } })
 * for await (const bytes of verifyStream(cid, res.body, { leaves, start: 1000, end: 2000 })) {
 *   write(bytes)
 * }
 */
export async function* verifyStream(
  cid: Cid,
  source: ByteSource,
  options: VerifyStreamOptions,
): AsyncGenerator<Uint8Array, void, undefined> {
  if (options == null || typeof options !== 'object') {
    throw new InvalidArgumentError('verifyStream needs options with the verified leaves')
  }
  const { leaves, signal } = options
  throwIfAborted(signal)
  assertCidObject(cid)
  const start = options.start ?? 0
  const end = options.end ?? cid.size
  const core = createVerifierCore(cid, leaves, { start, end })
  const input = openSource(source, signal)
  try {
    for (;;) {
      let piece = input.next()
      if (piece instanceof Promise) piece = await piece
      if (piece === undefined) break
      let chunks = core.write(piece)
      if (chunks instanceof Promise) chunks = await chunks
      for (const chunk of chunks) {
        let at = chunk.offset
        for (const part of chunk.pieces) {
          const from = at < start ? start - at : 0
          const to = at + part.length > end ? end - at : part.length
          at += part.length
          if (to <= from) continue
          yield from === 0 && to === part.length ? part : part.subarray(from, to)
          throwIfAborted(signal)
        }
      }
      // The chunks before a bad one were released above; now report the bad one.
      if (core.failure !== undefined) throw core.failure
    }
    const last = core.end()
    if (last instanceof Promise) await last
    if (core.failure !== undefined) throw core.failure
  } finally {
    await input.close()
  }
}
