import { AbortError, InvalidArgumentError } from '@shoal/protocol'

export interface TokenBucketInit {
  /** Sustained rate in bytes per second. */
  rate: number
  /** Largest burst in bytes; defaults to one second of `rate`. */
  burst?: number
  /** Clock in milliseconds, injectable for tests. */
  now?: () => number
}

export interface TokenBucket {
  readonly rate: number
  readonly burst: number
  /** Takes up to `n` tokens now and returns how many were granted (possibly 0). */
  tryTake(n: number): number
  /** Takes exactly `n` tokens now if available; true when taken. */
  tryTakeAll(n: number): boolean
  /** Waits until `n` tokens (at most `burst` at a time) are taken. */
  take(n: number, options?: { signal?: AbortSignal }): Promise<void>
}

/**
 * A token bucket for egress bandwidth caps: `rate` bytes per second with a burst.
 * Time-based refill, no timers while idle.
 *
 * @example
 * const bucket = createTokenBucket({ rate: 10 * 2 ** 20 }) // 10 MiB/s
 * for await (const piece of throttle(body, bucket)) res.write(piece)
 */
export function createTokenBucket(init: TokenBucketInit): TokenBucket {
  const { rate } = init
  if (!Number.isFinite(rate) || rate <= 0)
    throw new InvalidArgumentError('rate must be a number of bytes per second > 0')
  const burst = init.burst ?? rate
  if (!Number.isFinite(burst) || burst < 1)
    throw new InvalidArgumentError('burst must be a number of bytes ≥ 1')
  const now = init.now ?? (() => performance.now())
  let tokens = burst
  let last = now()

  const refill = (): void => {
    const t = now()
    tokens = Math.min(burst, tokens + ((t - last) * rate) / 1000)
    last = t
  }

  const tryTake = (n: number): number => {
    refill()
    const granted = Math.max(0, Math.min(n, Math.floor(tokens)))
    tokens -= granted
    return granted
  }

  const tryTakeAll = (n: number): boolean => {
    refill()
    if (tokens < n) return false
    tokens -= n
    return true
  }

  const take = async (n: number, options: { signal?: AbortSignal } = {}): Promise<void> => {
    let left = n
    while (left > 0) {
      if (options.signal?.aborted === true) throw new AbortError('aborted while waiting for bandwidth')
      left -= tryTake(Math.min(left, burst))
      if (left <= 0) return
      const waitMs = Math.max(1, Math.ceil((Math.min(left, burst) - tokens) / (rate / 1000)))
      await sleep(Math.min(waitMs, 1000), options.signal)
    }
  }

  return { rate, burst, tryTake, tryTakeAll, take }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(done, ms)
    function done(): void {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }
    function onAbort(): void {
      clearTimeout(timer)
      reject(new AbortError('aborted while waiting for bandwidth', { cause: signal?.reason }))
    }
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/**
 * Yields `source` no faster than the buckets allow (all of them: e.g. a global cap
 * and a per-client cap). Large pieces are split so that one piece never waits
 * for more than a burst.
 */
export async function* throttle(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  buckets: readonly TokenBucket[],
  options: { signal?: AbortSignal } = {},
): AsyncGenerator<Uint8Array> {
  if (buckets.length === 0) {
    yield* source
    return
  }
  const step = Math.max(1, Math.min(...buckets.map((b) => b.burst), 64 * 1024))
  for await (const piece of source) {
    for (let off = 0; off < piece.length; off += step) {
      const part = piece.subarray(off, Math.min(piece.length, off + step))
      for (const bucket of buckets) await bucket.take(part.length, options)
      yield part
    }
  }
}
