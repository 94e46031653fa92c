/**
 * A `ReadableStream` over an async generator of verified bytes, built by hand (not
 * `ReadableStream.from`, which not every browser has). The stream can be built before
 * any byte is in hand (so the `Response` around it is made while the request is out)
 * and is handed its bytes with `attach`. The first bytes are queued at once (the app's
 * first read needs no pull); after them it pulls only when the app reads (high-water
 * mark 0), so nothing is fetched ahead of the reader beyond what sockets buffer;
 * cancelling it or aborting `signal` ends the generator, which closes its sources.
 * Without a generator, the first bytes are the whole body.
 */
import { AbortError } from '@shoal/protocol'

export interface StreamInit {
  /** The generator's first result, already pulled (so that errors before any byte reject `fetch`). */
  first: IteratorResult<Uint8Array, void>
  signal: AbortSignal
  /** Called once, when the stream ends for any reason. */
  onDone(): void
  onBytes?(n: number): void
}

export interface BodyStream {
  readonly stream: ReadableStream<Uint8Array>
  /**
   * Hands the stream its bytes: the first ones, and the generator of the rest (none when
   * the first are all). Call it once, before the stream is given to anyone.
   */
  attach(gen: AsyncGenerator<Uint8Array, void, undefined> | undefined, init: StreamInit): void
}

const DONE: IteratorReturnResult<void> = { done: true, value: undefined }

/**
 * @example
 * const body = bodyStream()
 * const response = new Response(body.stream, { status: 200, headers }) // while the request is out
 * const gen = content.body(request)
 * body.attach(gen, { first: await gen.next(), signal, onDone })
 * return response
 */
export function bodyStream(): BodyStream {
  let controller!: ReadableStreamDefaultController<Uint8Array>
  let gen: AsyncGenerator<Uint8Array, void, undefined> | undefined
  let init: StreamInit | undefined
  let finished = false
  const finish = () => {
    if (finished || init === undefined) return
    finished = true
    init.signal.removeEventListener('abort', onAbort)
    init.onDone()
  }
  function onAbort() {
    if (finished || init === undefined) return
    try {
      controller.error(new AbortError('the operation was aborted', { cause: init.signal.reason }))
    } catch {}
    // ends the generator now (it may be parked at a yield): its finally blocks close the sockets
    gen?.return(undefined).catch(() => {})
    finish()
  }
  const stream = new ReadableStream<Uint8Array>(
    {
      start(c) {
        controller = c
      },
      async pull(c) {
        try {
          const r = gen === undefined ? DONE : await gen.next()
          if (r.done === true) {
            finish()
            c.close()
            return
          }
          init?.onBytes?.(r.value.length)
          c.enqueue(r.value)
        } catch (err) {
          finish()
          throw err
        }
      },
      async cancel() {
        finish()
        await gen?.return(undefined).catch(() => {})
      },
    },
    { highWaterMark: 0 },
  )
  return {
    stream,
    attach(g, i) {
      gen = g
      init = i
      const { first, signal } = i
      if (first.done === true) {
        finish()
        controller.close()
        return
      }
      signal.addEventListener('abort', onAbort, { once: true })
      if (signal.aborted) return onAbort()
      i.onBytes?.(first.value.length)
      controller.enqueue(first.value)
    },
  }
}

/**
 * The stream of a generator whose first result is in hand.
 *
 * @example
 * const gen = content.body(request)
 * const first = await gen.next()
 * return new Response(streamOf(gen, { first, signal, onDone }), { status: 200, headers })
 */
export function streamOf(
  gen: AsyncGenerator<Uint8Array, void, undefined> | undefined,
  init: StreamInit,
): ReadableStream<Uint8Array> {
  const body = bodyStream()
  body.attach(gen, init)
  return body.stream
}
