/**
 * A Readable over part of a body file, read in bounded pieces. Internal.
 */
import { createHash } from 'node:crypto'
import type { FileHandle } from 'node:fs/promises'
import { Readable } from 'node:stream'
import { IntegrityError } from '@shoal/protocol'
import { abortError } from './util.ts'

export interface BodyStreamInit {
  /** Open body file; the stream owns it and closes it when it ends or is destroyed. */
  handle: FileHandle
  start: number
  end: number
  /** Size of each read; pieces are never larger. */
  chunkBytes: number
  /**
   * Whole-body SHA-256 to check while streaming. The last piece is held back until
   * the digest matches, so a consumer never receives a complete corrupt body: on
   * mismatch the stream errors with `IntegrityError` instead of ending.
   */
  sha256?: string
  /** Called once the stream proved the file is bad (hash mismatch or short file). */
  onCorrupt?: (err: Error) => void
  /** Called once a whole-body read matched its SHA-256. */
  onVerified?: () => void
  signal?: AbortSignal
}

/** Pieces read ahead of the consumer (one more is held back while a hash is checked). */
const READ_AHEAD_PIECES = 2

/**
 * Streams bytes `[start, end)` of an open body file as Buffers of at most
 * `chunkBytes` (an object-mode Readable: each piece is delivered as read, uncopied).
 */
export function createBodyStream(init: BodyStreamInit): Readable {
  const { handle, end, chunkBytes, sha256, onCorrupt, onVerified, signal } = init
  let position = init.start
  const hash = sha256 === undefined ? undefined : createHash('sha256')
  let held: Buffer | undefined

  const corrupt = (message: string): void => {
    const err = new IntegrityError(message)
    onCorrupt?.(err)
    stream.destroy(err)
  }

  // Node calls read() again only after a push, so at most one read is in flight.
  const readNext = async (): Promise<void> => {
    try {
      for (;;) {
        if (position >= end) {
          if (hash !== undefined) {
            if (hash.digest('hex') !== sha256) return corrupt('body does not match its SHA-256')
            if (held !== undefined) stream.push(held)
            held = undefined
            onVerified?.()
          }
          stream.push(null)
          return
        }
        const want = Math.min(chunkBytes, end - position)
        const buffer = Buffer.allocUnsafe(want)
        const { bytesRead } = await handle.read(buffer, 0, want, position)
        if (stream.destroyed) return
        if (bytesRead === 0) return corrupt('body file is shorter than its header says')
        const piece = bytesRead === want ? buffer : buffer.subarray(0, bytesRead)
        position += bytesRead
        if (hash === undefined) {
          stream.push(piece)
          return
        }
        hash.update(piece)
        const out = held
        held = piece
        if (out !== undefined) {
          stream.push(out)
          return
        }
      }
    } catch (err) {
      stream.destroy(err as Error)
    }
  }

  const onAbort = (): void => {
    stream.destroy(abortError(signal, 'reading the body was aborted'))
  }

  // Object mode keeps each piece as read: a byte-mode Readable would concatenate the
  // buffered pieces for an async iterator (a copy, and pieces larger than a read).
  const stream = new Readable({
    objectMode: true,
    highWaterMark: READ_AHEAD_PIECES,
    read() {
      void readNext()
    },
    destroy(err, callback) {
      signal?.removeEventListener('abort', onAbort)
      held = undefined
      handle.close().then(
        () => callback(err),
        (closeErr: Error) => callback(err ?? closeErr),
      )
    },
  })
  if (signal !== undefined) {
    if (signal.aborted) onAbort()
    else signal.addEventListener('abort', onAbort, { once: true })
  }
  return stream
}
