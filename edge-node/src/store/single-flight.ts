import { AbortError } from '@shoal/protocol'

export interface SingleFlightOptions {
  /** Detaches this caller when aborted; the shared work is aborted only when every caller has detached. */
  signal?: AbortSignal
}

export interface SingleFlight<K, V> {
  /**
   * Runs `work` for `key`, or joins the run already in flight for it. Every caller
   * gets the same value or the same error; a settled run is forgotten (errors are
   * not cached). `work` receives a signal that aborts when every caller has aborted.
   */
  run(key: K, work: (signal: AbortSignal) => Promise<V>, options?: SingleFlightOptions): Promise<V>
  /** True while a run for `key` is in flight. */
  has(key: K): boolean
  /** Runs in flight. */
  readonly size: number
}

interface Flight<V> {
  promise: Promise<V>
  controller: AbortController
  waiters: number
}

/**
 * Coalesces concurrent calls for one key into one run: concurrent cache misses for
 * one object make one upstream fetch.
 *
 * A caller whose signal aborts is rejected at once with `AbortError` and detached;
 * the run goes on for the others. When the last caller detaches, the run's signal
 * aborts and the key is free, so the next caller starts afresh.
 *
 * @example
 * const flights = createSingleFlight<string, Buffer>()
 * const body = await flights.run(cid, (signal) => fetchFromPeers(cid, { signal }), { signal: req.signal })
 */
export function createSingleFlight<K, V>(): SingleFlight<K, V> {
  const flights = new Map<K, Flight<V>>()

  const start = (key: K, work: (signal: AbortSignal) => Promise<V>): Flight<V> => {
    const controller = new AbortController()
    const flight: Flight<V> = {
      controller,
      waiters: 0,
      promise: Promise.resolve()
        .then(() => work(controller.signal))
        .finally(() => {
          if (flights.get(key) === flight) flights.delete(key)
        }),
    }
    // Rejections are delivered to the waiters; this one only keeps an abandoned run quiet.
    flight.promise.catch(() => {})
    flights.set(key, flight)
    return flight
  }

  return {
    run(key, work, options = {}) {
      const { signal } = options
      if (signal?.aborted) {
        return Promise.reject(new AbortError('the operation was aborted', { cause: signal.reason }))
      }
      const flight = flights.get(key) ?? start(key, work)
      flight.waiters++
      if (signal === undefined) return flight.promise
      return new Promise<V>((resolve, reject) => {
        const onAbort = (): void => {
          flight.waiters--
          if (flight.waiters === 0) {
            if (flights.get(key) === flight) flights.delete(key)
            flight.controller.abort(signal.reason)
          }
          reject(new AbortError('the operation was aborted', { cause: signal.reason }))
        }
        signal.addEventListener('abort', onAbort, { once: true })
        flight.promise.then(
          (value) => {
            signal.removeEventListener('abort', onAbort)
            resolve(value)
          },
          (err: unknown) => {
            signal.removeEventListener('abort', onAbort)
            reject(err)
          },
        )
      })
    },

    has: (key) => flights.has(key),

    get size() {
      return flights.size
    },
  }
}
