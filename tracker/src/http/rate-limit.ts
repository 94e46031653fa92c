/**
 * Keyed token buckets (per client IP, per client key): `rate` tokens per second up to
 * `burst`. Refill is computed on use, so idle keys cost nothing but their entry; the
 * map is bounded and forgets the least recently used keys first (a forgotten key
 * starts again with a full bucket, which only errs towards letting requests through).
 */
import type { IncomingMessage } from 'node:http'
import { InvalidArgumentError } from '@shoal/protocol'
import type { RateLimit } from '../options.ts'

export interface KeyedRateLimiter {
  readonly rate: number
  readonly burst: number
  /** Takes `n` tokens for `key` when available; false when the key is over its limit. */
  take(key: string, n?: number): boolean
  /** Seconds until `n` tokens are available for `key` (0 when they are now). */
  retryAfter(key: string, n?: number): number
  readonly size: number
}

interface Bucket {
  tokens: number
  at: number
}

/**
 * @example
 * const perIp = createKeyedRateLimiter({ rate: 10, burst: 20 }, { maxKeys: 100_000 })
 * if (!perIp.take(ip)) throw new RateLimitedError('slow down')
 */
export function createKeyedRateLimiter(
  limit: RateLimit,
  init: { maxKeys: number; now?: () => number },
): KeyedRateLimiter {
  const { rate, burst } = limit
  if (!(rate > 0) || !(burst >= 1)) throw new InvalidArgumentError('rate must be > 0 and burst ≥ 1')
  const maxKeys = init.maxKeys
  const now = init.now ?? (() => performance.now())
  // Map iteration order is insertion order: re-inserting on use keeps it LRU.
  const buckets = new Map<string, Bucket>()

  const refill = (key: string): Bucket => {
    const t = now()
    let b = buckets.get(key)
    if (b === undefined) {
      b = { tokens: burst, at: t }
      if (buckets.size >= maxKeys) {
        const oldest = buckets.keys().next()
        if (oldest.done !== true) buckets.delete(oldest.value)
      }
    } else {
      b.tokens = Math.min(burst, b.tokens + ((t - b.at) * rate) / 1000)
      b.at = t
      buckets.delete(key)
    }
    buckets.set(key, b)
    return b
  }

  return {
    rate,
    burst,
    take(key, n = 1) {
      const b = refill(key)
      if (b.tokens < n) return false
      b.tokens -= n
      return true
    },
    retryAfter(key, n = 1) {
      const b = refill(key)
      return b.tokens >= n ? 0 : Math.ceil((n - b.tokens) / rate)
    },
    get size() {
      return buckets.size
    },
  }
}

/**
 * The client's IP: the socket's peer, or with `trustProxy` the last hop of
 * `X-Forwarded-For` (the one the trusted proxy added).
 */
export function clientIp(req: IncomingMessage, trustProxy: boolean): string {
  if (trustProxy) {
    const header = req.headers['x-forwarded-for']
    const value = Array.isArray(header) ? header[header.length - 1] : header
    if (value !== undefined && value !== '') {
      const hops = value.split(',')
      const last = hops[hops.length - 1]?.trim()
      if (last !== undefined && last !== '') return last
    }
  }
  return req.socket.remoteAddress ?? 'unknown'
}
