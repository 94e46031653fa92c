/**
 * The two-way copy of a `CONNECT` tunnel, metered both ways.
 *
 * Download (destination → client), the heavy direction, reads the upstream socket the
 * relay made into one reused buffer (`net.connect({ onread })`, `tunnelDownstream()`)
 * instead of a fresh 64 KiB backing store per read: a relay moving 1 MiB objects
 * otherwise spent about a third of its CPU in major collections of those buffers
 * (benchmarks/relay/README.md). A write of the buffer that does not complete at once
 * keeps a reference to it, so reading stops until that write is done: at most one
 * buffer's worth is in user space per tunnel, the kernel's socket buffers hold the rest.
 * Upload (client → destination) is a plain `pipe`: the client's socket is the HTTP
 * server's, made before the relay knows it will be a tunnel.
 *
 * Two `pipeline()` calls (one per direction) put eight `close` listeners and as many
 * `error` listeners on each socket, which with the relay's own bookkeeping crossed
 * Node's limit of ten and printed `MaxListenersExceededWarning` on every tunnel. A
 * tunnel instead listens once per socket for its whole life: one `error` and one
 * `close` handler tear both sides down.
 */
import type { OnReadOpts, Socket } from 'node:net'
import type { Duplex, Transform, Writable } from 'node:stream'
import type { TokenBucket } from '../limits/token-bucket.ts'
import { meteredThrottle } from './pipe.ts'

/** Bytes of a tunnel's download buffer: one read of the upstream socket at most. */
export const TUNNEL_READ_BYTES = 64 * 1024

/**
 * The download side of one tunnel: hand `onread` to `net.connect` for the upstream
 * socket, then `meteredTunnel` starts it. Bytes read before it started are held (reading
 * stops) until then.
 */
export interface TunnelDownstream {
  readonly onread: OnReadOpts
  /**
   * Delivers what the upstream reads into `sink`, counting every byte read with
   * `onBytes` and waiting for `buckets` before each write; `sink` is ended after the
   * upstream's end once nothing is pending. `fail` is called on a bucket's error.
   */
  start(
    upstream: Socket,
    sink: Writable,
    buckets: readonly TokenBucket[],
    onBytes: (n: number) => void,
    fail: (err: Error) => void,
  ): void
  /** Stops delivering (the tunnel is torn down); a pending bucket wait is aborted. */
  stop(): void
}

/**
 * @example
 * const down = tunnelDownstream()
 * const upstream = net.connect({ host, port, onread: down.onread })
 * await once(upstream, 'connect')
 * meteredTunnel(client, upstream, down, buckets, onUp, onDown, () => {})
 */
export function tunnelDownstream(bytes: number = TUNNEL_READ_BYTES): TunnelDownstream {
  const buffer = Buffer.allocUnsafe(bytes)
  let upstream: Socket | undefined
  let sink: Writable | undefined
  let buckets: readonly TokenBucket[] = []
  let onBytes: (n: number) => void = () => {}
  let fail: (err: Error) => void = () => {}
  /** Bytes read but not yet handed to `sink` (before `start`, or waiting for buckets). */
  let held = 0
  /** The buffer is in use (held, waiting for buckets, or in a write not yet done): reading is stopped. */
  let busy = false
  let ended = false
  let stopped = false
  // made only when a bucket has to be waited for (aborting one costs a DOMException)
  let controller: AbortController | undefined

  /** The buffer is free again: read on, or end the sink after the upstream's end. */
  const free = () => {
    busy = false
    if (stopped) return
    if (ended) sink!.end()
    else upstream!.resume()
  }
  const written = (err?: Error | null) => {
    // a failed write destroys the sink, whose `error`/`close` tears the tunnel down
    if (err || !busy || stopped || held > 0 || sink!.writableLength > 0) return
    free()
  }
  /** Writes `n` bytes of the buffer; true when the write completed at once (the buffer is free). */
  const write = (n: number): boolean => {
    sink!.write(buffer.subarray(0, n), written)
    // a write done at once left nothing queued (`writableLength` drops before write returns)
    if (sink!.writableLength === 0) return true
    busy = true
    return false
  }
  /** Counts and delivers `n` bytes read into the buffer; false stops reading. */
  const deliver = (n: number): boolean => {
    onBytes(n)
    if (buckets.length === 0) return write(n)
    busy = true
    held = n
    controller ??= new AbortController()
    const signal = controller.signal
    const wait = async () => {
      for (const bucket of buckets) await bucket.take(n, { signal })
    }
    wait().then(
      () => {
        held = 0
        if (!stopped && write(n)) free()
      },
      (err: Error) => {
        held = 0
        if (!stopped) fail(err)
      },
    )
    return false
  }

  return {
    onread: {
      buffer,
      callback(n: number): boolean {
        if (stopped) return false
        if (sink === undefined) {
          // not started yet (data before the tunnel was set up): keep it, stop reading
          held = n
          busy = true
          return false
        }
        return deliver(n)
      },
    },
    start(socket, to, withBuckets, count, onFail) {
      upstream = socket
      sink = to
      buckets = withBuckets
      onBytes = count
      fail = onFail
      socket.once('end', () => {
        ended = true
        if (!busy && !stopped) to.end()
      })
      if (held > 0) {
        const n = held
        held = 0
        if (deliver(n)) free()
      }
    },
    stop() {
      stopped = true
      controller?.abort()
    },
  }
}

/**
 * Copies `client → upstream` (counted by `onUp`) and `upstream → client` through
 * `downstream` (`onDown`; the upstream socket must have been made with
 * `downstream.onread`), through the buckets when there are any. When either side
 * errors or closes before its end, both are destroyed and `done` is called once; after
 * the destination's clean end, the client gets every byte read and an end, and the
 * tunnel is done when the client's socket closes.
 *
 * @example
 * meteredTunnel(socket, upstream, down, limits.buckets(who.client), (n) => meter.add(who, 'up', n), (n) => meter.add(who, 'down', n), () => {})
 */
export function meteredTunnel(
  client: Duplex,
  upstream: Socket,
  downstream: TunnelDownstream,
  buckets: readonly TokenBucket[],
  onUp: (n: number) => void,
  onDown: (n: number) => void,
  done: () => void,
): void {
  let throttle: Transform | undefined
  let finished = false
  const finish = () => {
    if (finished) return
    finished = true
    downstream.stop()
    client.destroy()
    upstream.destroy()
    throttle?.destroy()
    done()
  }
  client.on('error', finish)
  client.once('close', finish)
  upstream.on('error', finish)
  // a clean end of the destination reaches the client through the downstream; anything else tears down
  upstream.once('close', () => {
    if (!upstream.readableEnded) finish()
  })
  if (buckets.length === 0) {
    client.on('data', (chunk: Buffer) => onUp(chunk.length))
    client.pipe(upstream)
  } else {
    throttle = meteredThrottle(buckets, onUp)
    throttle.once('error', finish)
    client.pipe(throttle).pipe(upstream)
  }
  downstream.start(upstream, client, buckets, onDown, finish)
}
