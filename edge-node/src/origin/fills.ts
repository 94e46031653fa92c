/**
 * Cache fills in flight, so that concurrent misses (and revalidations) of one key make
 * one upstream request, as nginx's `proxy_cache_lock` does: followers wait for the
 * leader's response head; when the leader will store the response they wait for the
 * entry and are served from the cache, otherwise they fetch on their own.
 */

/** How a fill ended. `failed` carries the upstream error, so followers answer with it too. */
export type FillOutcome = { kind: 'stored' } | { kind: 'not-stored' } | { kind: 'failed'; error: unknown }

export interface Fill {
  /** Resolves once the leader knows the response head: true when it is storing the response. */
  readonly head: Promise<boolean>
  /** Resolves when the fill has ended. */
  readonly done: Promise<FillOutcome>
  /** How it ended, once it has. */
  readonly outcome: FillOutcome | undefined
  /** Set by a purge or an invalidation while the fill runs: the leader must not commit. */
  invalidated: boolean
  /** Reports the head (idempotent). */
  storing(willStore: boolean): void
  /** Reports the end (idempotent); also settles `head` (false) when it was not yet. */
  finish(outcome: FillOutcome): void
}

/** What a follower learned. `timeout`: the leader took too long; fetch without caching. */
export type FollowOutcome = FillOutcome | { kind: 'timeout' }

export interface FillRegistry {
  get(key: string): Fill | undefined
  has(key: string): boolean
  /** Registers a new fill for `key`; it is forgotten when it finishes. */
  start(key: string): Fill
  /** The fills in flight, with their keys. */
  entries(): IterableIterator<[string, Fill]>
  /** Waits for the leader of `fill` for at most `timeoutMs`. */
  follow(fill: Fill, timeoutMs: number): Promise<FollowOutcome>
}

function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void
  const promise = new Promise<T>((r) => {
    resolve = r
  })
  return { promise, resolve }
}

export function createFillRegistry(): FillRegistry {
  const fills = new Map<string, Fill>()

  const timeout = <T>(promise: Promise<T>, ms: number): Promise<T | undefined> => {
    if (ms <= 0) return Promise.resolve(undefined)
    let timer: NodeJS.Timeout | undefined
    const timed = new Promise<undefined>((resolve) => {
      timer = setTimeout(resolve, ms, undefined)
    })
    return Promise.race([promise, timed]).finally(() => clearTimeout(timer))
  }

  return {
    get: (key) => fills.get(key),
    has: (key) => fills.has(key),
    entries: () => fills.entries(),

    start(key) {
      const head = deferred<boolean>()
      const done = deferred<FillOutcome>()
      let headSettled = false
      let ended: FillOutcome | undefined
      const fill: Fill = {
        head: head.promise,
        done: done.promise,
        get outcome() {
          return ended
        },
        invalidated: false,
        storing(willStore) {
          if (headSettled) return
          headSettled = true
          head.resolve(willStore)
        },
        finish(outcome) {
          if (ended !== undefined) return
          ended = outcome
          if (fills.get(key) === fill) fills.delete(key)
          fill.storing(false)
          done.resolve(outcome)
        },
      }
      fills.set(key, fill)
      return fill
    },

    async follow(fill, timeoutMs) {
      const started = Date.now()
      const willStore = await timeout(fill.head, timeoutMs)
      if (willStore === undefined) return { kind: 'timeout' }
      // Ended before a head (a failure), or not storing.
      if (!willStore) return fill.outcome ?? { kind: 'not-stored' }
      const outcome = await timeout(fill.done, timeoutMs - (Date.now() - started))
      return outcome ?? { kind: 'timeout' }
    },
  }
}
