/**
 * Per-client limits of the relay: concurrent tunnels and in-flight forwarded requests,
 * and a bandwidth bucket per client on top of the relay-wide one(s).
 */
import { InvalidArgumentError, RateLimitedError } from '@shoal/protocol'
import { createTokenBucket, type TokenBucket } from '../limits/token-bucket.ts'

export interface ClientLimitsInit {
  /** Tunnels plus in-flight forwarded requests one client may hold at once. */
  maxConcurrentPerClient: number
  /** Bytes per second per client (both directions together); unlimited when absent. */
  clientBytesPerSecond?: number
}

export interface ClientLimits {
  /** Takes a slot for `client`; the returned function gives it back (idempotent). */
  acquire(client: string): () => void
  /** The buckets a client's bytes go through (per-client first, then `shared`). */
  buckets(client: string): TokenBucket[]
  /** Clients holding slots. */
  readonly active: number
}

/**
 * @example
 * const limits = createClientLimits({ maxConcurrentPerClient: 16, clientBytesPerSecond: 2 ** 20 }, [globalBucket])
 * const release = limits.acquire(client) // throws RateLimitedError when full
 */
export function createClientLimits(
  init: ClientLimitsInit,
  shared: readonly TokenBucket[] = [],
): ClientLimits {
  if (!Number.isSafeInteger(init.maxConcurrentPerClient) || init.maxConcurrentPerClient < 1)
    throw new InvalidArgumentError('maxConcurrentPerClient must be an integer ≥ 1')
  const clients = new Map<string, { slots: number; bucket?: TokenBucket }>()
  return {
    get active() {
      return clients.size
    },
    acquire(client) {
      let c = clients.get(client)
      if (c === undefined) {
        c = {
          slots: 0,
          ...(init.clientBytesPerSecond !== undefined
            ? { bucket: createTokenBucket({ rate: init.clientBytesPerSecond }) }
            : {}),
        }
        clients.set(client, c)
      }
      if (c.slots >= init.maxConcurrentPerClient)
        throw new RateLimitedError(
          `at most ${init.maxConcurrentPerClient} tunnels or requests at once per client`,
        )
      c.slots++
      const held = c
      let released = false
      return () => {
        if (released) return
        released = true
        held.slots--
        if (held.slots === 0 && clients.get(client) === held) clients.delete(client)
      }
    },
    buckets(client) {
      const bucket = clients.get(client)?.bucket
      return bucket === undefined ? [...shared] : [bucket, ...shared]
    },
  }
}
