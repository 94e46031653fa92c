/**
 * A `ReadableStream` over an async generator of verified bytes, built by hand (not
 * `ReadableStream.from`, which not every browser has). It pulls only when the app reads
 * (high-water mark 0), so nothing is fetched ahead of the reader beyond what sockets
 * buffer; cancelling it or aborting `signal` ends the generator, which closes its sources.
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

/**
 * @example
 * const gen = content.body(request)
 * const first = await gen.next()
 * return new Response(streamOf(gen, { first, signal, onDone }), { status: 200, headers })
 */
export function streamOf(
  gen: AsyncGenerator<Uint8Array, void, undefined>,
  init: StreamInit,
): ReadableStream<Uint8Array> {
  let pending: IteratorResult<Uint8Array, void> | undefined = init.first
  let finished = false
  let controllerRef: ReadableStreamDefaultController<Uint8Array> | undefined
  const finish = () => {
    if (finished) return
    finished = true
    init.signal.removeEventListener('abort', onAbort)
    init.onDone()
  }
  function onAbort() {
    if (finished) return
    try {
      controllerRef?.error(new AbortError('the operation was aborted', { cause: init.signal.reason }))
    } catch {}
    // ends the generator now (it may be parked at a yield): its finally blocks close the sockets
    gen.return(undefined).catch(() => {})
    finish()
  }
  init.signal.addEventListener('abort', onAbort, { once: true })
  if (init.first.done === true) finish()
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        controllerRef = controller
        if (init.signal.aborted) onAbort()
      },
      async pull(controller) {
        try {
          const r = pending ?? (await gen.next())
          pending = undefined
          if (r.done === true) {
            finish()
            controller.close()
            return
          }
          init.onBytes?.(r.value.length)
          controller.enqueue(r.value)
        } catch (err) {
          finish()
          throw err
        }
      },
      async cancel() {
        finish()
        await gen.return(undefined).catch(() => {})
      },
    },
    { highWaterMark: 0 },
  )
}
