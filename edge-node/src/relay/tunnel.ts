/**
 * The two-way copy of a `CONNECT` tunnel, metered both ways.
 *
 * Two `pipeline()` calls (one per direction) put eight `close` listeners and as many
 * `error` listeners on each socket (every pipeline watches both of its ends twice),
 * which with the relay's own bookkeeping crossed Node's limit of ten and printed
 * `MaxListenersExceededWarning` on every tunnel. A tunnel instead listens once per
 * socket for its whole life: one `error` and one `close` handler tear both sides down,
 * and each direction is a plain `pipe` (which adds a single `close` on its sink).
 */
import type { Duplex, Transform } from 'node:stream'
import type { TokenBucket } from '../limits/token-bucket.ts'
import { meteredThrottle } from './pipe.ts'

/**
 * Copies `client → upstream` (counted by `onUp`) and `upstream → client` (`onDown`),
 * through the buckets when there are any. When either side errors or closes, both are
 * destroyed and `done` is called once.
 *
 * @example
 * meteredTunnel(socket, upstream, limits.buckets(who.client), (n) => meter.add(who, 'up', n), (n) => meter.add(who, 'down', n), () => {})
 */
export function meteredTunnel(
  client: Duplex,
  upstream: Duplex,
  buckets: readonly TokenBucket[],
  onUp: (n: number) => void,
  onDown: (n: number) => void,
  done: () => void,
): void {
  const throttles: Transform[] = []
  let finished = false
  const finish = () => {
    if (finished) return
    finished = true
    client.destroy()
    upstream.destroy()
    for (const t of throttles) t.destroy()
    done()
  }
  const copy = (source: Duplex, sink: Duplex, onBytes: (n: number) => void) => {
    if (buckets.length === 0) {
      source.on('data', (chunk: Buffer) => onBytes(chunk.length))
      source.pipe(sink)
      return
    }
    const throttle = meteredThrottle(buckets, onBytes)
    throttle.once('error', finish)
    throttles.push(throttle)
    source.pipe(throttle).pipe(sink)
  }
  for (const socket of [client, upstream]) {
    socket.on('error', finish)
    socket.once('close', finish)
  }
  copy(client, upstream, onUp)
  copy(upstream, client, onDown)
}
