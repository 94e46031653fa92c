/**
 * A one-consumer, bounded async pipe: the producer (a cache fill) pushes verified
 * pieces and waits while more than `highWaterBytes` are queued; the consumer (the
 * client that caused the fill) iterates. When the consumer goes away the pipe drops
 * what it holds and later pushes return at once, so a disconnected client never stalls
 * the fill that other clients are waiting for.
 */
export interface Pipe {
  /** Queues a piece; resolves when there is room (or at once when nobody reads). */
  push(piece: Uint8Array): Promise<void>
  end(): void
  fail(err: unknown): void
  /** True once the consumer has stopped reading. */
  readonly detached: boolean
  readonly readable: AsyncIterable<Uint8Array>
}

export function createPipe(highWaterBytes = 1024 * 1024): Pipe {
  const queue: Uint8Array[] = []
  let queued = 0
  let ended = false
  let failure: { err: unknown } | undefined
  let detached = false
  let wakeConsumer: (() => void) | undefined
  let wakeProducer: (() => void) | undefined

  const notifyConsumer = () => {
    const wake = wakeConsumer
    wakeConsumer = undefined
    wake?.()
  }
  const notifyProducer = () => {
    const wake = wakeProducer
    wakeProducer = undefined
    wake?.()
  }

  const readable: AsyncIterable<Uint8Array> = {
    async *[Symbol.asyncIterator]() {
      try {
        while (true) {
          const piece = queue.shift()
          if (piece !== undefined) {
            queued -= piece.length
            notifyProducer()
            yield piece
            continue
          }
          if (failure !== undefined) throw failure.err
          if (ended) return
          await new Promise<void>((resolve) => {
            wakeConsumer = resolve
          })
        }
      } finally {
        detached = true
        queue.length = 0
        queued = 0
        notifyProducer()
      }
    },
  }

  return {
    async push(piece) {
      if (detached || ended || failure !== undefined) return
      queue.push(piece)
      queued += piece.length
      notifyConsumer()
      while (queued > highWaterBytes && !detached) {
        await new Promise<void>((resolve) => {
          wakeProducer = resolve
        })
      }
    },
    end() {
      ended = true
      notifyConsumer()
    },
    fail(err) {
      failure = { err }
      notifyConsumer()
    },
    get detached() {
      return detached
    },
    readable,
  }
}
