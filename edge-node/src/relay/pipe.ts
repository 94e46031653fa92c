/**
 * A metered, throttled copy from one stream to another: every byte is counted, and
 * waits for the buckets (per-client and relay-wide caps) before it is written.
 */
import {
  finished,
  pipeline,
  type Readable,
  Transform,
  type TransformCallback,
  type Writable,
} from 'node:stream'
import type { TokenBucket } from '../limits/token-bucket.ts'

/**
 * A pass-through that counts bytes and holds each piece until every bucket granted it.
 *
 * @example
 * pipeline(upstream, meteredThrottle(limits.buckets(client), (n) => meter.add(who, 'down', n)), res, done)
 */
export function meteredThrottle(buckets: readonly TokenBucket[], onBytes: (n: number) => void): Transform {
  // made only when there is something to wait for (aborting one costs a DOMException)
  let controller: AbortController | undefined
  return new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      onBytes(chunk.length)
      if (buckets.length === 0) {
        callback(null, chunk)
        return
      }
      controller ??= new AbortController()
      const signal = controller.signal
      const wait = async () => {
        for (const bucket of buckets) await bucket.take(chunk.length, { signal })
      }
      wait().then(
        () => callback(null, chunk),
        (err: Error) => callback(err),
      )
    },
    destroy(err, callback) {
      controller?.abort()
      callback(err)
    },
  })
}

/**
 * Copies `source` into `sink`, counting every byte; through `meteredThrottle` when there
 * are buckets, else as a plain `pipe` with a counting listener: no extra stream hop, and
 * none of `pipeline`'s per-call cost (an AbortController aborted, so a DOMException
 * built, at every end: a forwarded request or a tunnel is one call). Either way `done`
 * is called once: without an error when `source` ended and `sink` finished, else with
 * the first error, both streams destroyed (as `pipeline` does).
 *
 * @example
 * meteredPipe(upstream, client, limits.buckets(who.client), (n) => meter.add(who, 'down', n), close)
 */
export function meteredPipe(
  source: Readable,
  sink: Writable,
  buckets: readonly TokenBucket[],
  onBytes: (n: number) => void,
  done: (err?: Error | null) => void,
): void {
  if (buckets.length > 0) {
    pipeline(source, meteredThrottle(buckets, onBytes), sink, (err) => done(err))
    return
  }
  let called = false
  const end = (err?: Error | null) => {
    if (called) return
    called = true
    if (err) {
      source.destroy()
      sink.destroy()
    }
    done(err)
  }
  source.on('data', (chunk: Buffer) => onBytes(chunk.length))
  source.pipe(sink)
  // a source that errors or closes before its end takes the sink along; its clean end reaches the sink through pipe
  finished(source, { writable: false }, (err) => {
    if (err) end(err)
  })
  finished(sink, { readable: false }, end)
}
