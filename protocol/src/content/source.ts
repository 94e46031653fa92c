/**
 * Pulls pieces from an `Iterable | AsyncIterable` of bytes, racing each pull against an
 * `AbortSignal`. Internal. Sync sources are read without any await, and no extra async
 * generator is stacked on the caller's source, so a stream of small pieces pays no
 * per-piece promise overhead beyond what the source itself costs.
 */
import { AbortError, InvalidArgumentError } from '../errors.ts'
import type { MaybePromise } from '../hash/types.ts'
import { describe } from './bytes.ts'

export type ByteSource = Iterable<Uint8Array> | AsyncIterable<Uint8Array>

export interface Puller {
  /** The next piece, or `undefined` at the end. */
  next(): MaybePromise<Uint8Array | undefined>
  /**
   * Stops the source early (closes a socket, ends a generator); idempotent. Resolves once
   * the source has cleaned up, unless a pull is still pending (then it does not wait).
   */
  close(): MaybePromise<void>
}

function check(result: IteratorResult<unknown>): Uint8Array | undefined {
  if (result.done === true) return undefined
  if (!(result.value instanceof Uint8Array)) {
    throw new InvalidArgumentError(
      `a byte source must yield Uint8Array pieces, got ${describe(result.value)}`,
    )
  }
  return result.value
}

function abortError(signal: AbortSignal): Error {
  return new AbortError('the operation was aborted', { cause: signal.reason })
}

/** Opens `source` for pulling. Throws `InvalidArgumentError` when it is not iterable. */
export function openSource(source: ByteSource, signal?: AbortSignal): Puller {
  const asyncIterable =
    source != null && typeof (source as AsyncIterable<Uint8Array>)[Symbol.asyncIterator] === 'function'
  if (
    !asyncIterable &&
    (source == null || typeof (source as Iterable<Uint8Array>)[Symbol.iterator] !== 'function')
  ) {
    throw new InvalidArgumentError(`a byte source must be an iterable of Uint8Array, got ${describe(source)}`)
  }
  let done = false
  if (!asyncIterable) {
    const iterator = (source as Iterable<Uint8Array>)[Symbol.iterator]()
    return {
      next() {
        if (signal?.aborted) throw abortError(signal)
        const piece = check(iterator.next())
        if (piece === undefined) done = true
        return piece
      },
      close() {
        if (done) return
        done = true
        iterator.return?.()
      },
    }
  }
  const iterator = (source as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]()
  let pulling = false
  const settle = (result: IteratorResult<unknown>): Uint8Array | undefined => {
    pulling = false
    const piece = check(result)
    if (piece === undefined) done = true
    return piece
  }
  return {
    next() {
      if (signal?.aborted) throw abortError(signal)
      pulling = true
      // Promise.resolve returns a native promise as is; it only wraps odd iterators.
      const pull = Promise.resolve(iterator.next())
      if (signal === undefined) return pull.then(settle)
      // Each pull is raced against the signal with its own listener, removed when the pull
      // settles. (Racing every pull against one never-settling abort promise keeps every
      // piece reachable until the stream ends: a 512 MiB stream held 512 MiB.) When the
      // abort wins, `pulling` stays true: that pull is still pending.
      return new Promise<Uint8Array | undefined>((resolve, reject) => {
        const onAbort = () => reject(abortError(signal))
        signal.addEventListener('abort', onAbort, { once: true })
        pull.then(
          (result) => {
            signal.removeEventListener('abort', onAbort)
            try {
              resolve(settle(result))
            } catch (err) {
              reject(err)
            }
          },
          (err: unknown) => {
            signal.removeEventListener('abort', onAbort)
            reject(err)
          },
        )
      })
    },
    close() {
      if (done) return
      done = true
      const closing = Promise.resolve(iterator.return?.()).then(
        () => {},
        () => {},
      )
      // An async generator stuck in a pull answers return() only after that pull: do not
      // wait for it then (a Node stream's iterator destroys the stream at once anyway).
      return pulling ? undefined : closing
    },
  }
}
