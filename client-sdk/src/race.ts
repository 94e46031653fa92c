/**
 * Hedged racing over candidate sources (helia's `Promise.any` + abort-the-losers, with a
 * delay): start on the first candidate; if it has not answered after its hedge delay,
 * start the next one too (up to `maxParallel` at once); when one fails, start the next at
 * once. The first to answer wins and every other request is aborted. When every
 * candidate failed, `UnavailableError` lists what each one did.
 */
import { AbortError } from '@shoal/protocol'
import { unavailable } from './errors.ts'

export interface RaceInit<C, R> {
  /**
   * The next candidate, or `undefined` when there are no more. May ask a tracker. For a
   * `hedge`, `undefined` only means "none worth a speculative request" (e.g. the rest are
   * cooling off): they are still tried when a request fails.
   */
  next(why: 'first' | 'hedge' | 'failover'): Promise<C | undefined> | C | undefined
  /** A name for the candidate (its URL): failures and events use it. */
  nameOf(candidate: C): string
  /** Starts one request; `signal` aborts it (a loser, or the caller's abort); `abort` aborts it with a reason. */
  start(candidate: C, signal: AbortSignal, abort: (reason: Error) => void): Promise<R>
  /** How long to wait on `candidate` before hedging (ms); `Infinity` never hedges. */
  delayFor(candidate: C): number
  maxParallel: number
  signal?: AbortSignal
  /** What `UnavailableError` says when every candidate failed. */
  what: string
  /**
   * Where failures are collected (and listed by the final `UnavailableError`); pass the
   * same list to every race of one fetch so the error names every source that failed.
   */
  failures?: { source: string; error: unknown }[]
  onHedge?(from: C, to: C, afterMs: number): void
  onError?(candidate: C, error: unknown): void
  /** A candidate lost without having answered, after `elapsedMs`. */
  onLose?(candidate: C, elapsedMs: number): void
  /** Releases a result that arrived after the race was decided. */
  dispose?(result: R): void
}

export interface RaceWin<C, R> {
  candidate: C
  result: R
  /** Aborts the winner's request: call it when done with `result`. */
  controller: AbortController
  /**
   * Until this is called, aborting the race's `signal` aborts the winner's request too
   * (so a body being read stops at once): call it when done with `result`.
   */
  release(): void
}

/**
 * @example
 * const { candidate, result, controller } = await race({
 *   next: () => nodes.shift(), nameOf: (n) => n.url, start: (n, signal) => get(n, signal),
 *   delayFor: () => 50, maxParallel: 2, what: 'no node answered' })
 */
export function race<C, R>(init: RaceInit<C, R>): Promise<RaceWin<C, R>> {
  const { signal } = init
  return new Promise<RaceWin<C, R>>((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(new AbortError('the operation was aborted', { cause: signal.reason }))
      return
    }
    const running = new Map<C, { controller: AbortController; started: number }>()
    const failures = init.failures ?? []
    let settled = false
    let exhausted = false
    let pulling = false
    let launched = 0
    let hedgeTimer: ReturnType<typeof setTimeout> | undefined

    // after a win, the caller's abort goes on to the winner until `release()`
    let winner: AbortController | undefined
    const release = () => signal?.removeEventListener('abort', onAbort)
    const cleanup = (keepListening = false) => {
      settled = true
      if (hedgeTimer !== undefined) clearTimeout(hedgeTimer)
      if (!keepListening) release()
    }
    const abortRunning = (reason: () => Error) => {
      if (running.size === 0) return
      const now = performance.now()
      const error = reason()
      for (const [candidate, run] of running) {
        run.controller.abort(error)
        init.onLose?.(candidate, now - run.started)
      }
      running.clear()
    }
    const fail = () => {
      cleanup()
      reject(unavailable(init.what, failures))
    }
    function onAbort() {
      if (winner !== undefined) {
        winner.abort(new AbortError('the operation was aborted', { cause: signal?.reason }))
        return
      }
      if (settled) return
      cleanup()
      const err = new AbortError('the operation was aborted', { cause: signal?.reason })
      abortRunning(() => err)
      reject(err)
    }
    signal?.addEventListener('abort', onAbort, { once: true })

    const armHedge = (candidate: C) => {
      if (hedgeTimer !== undefined) clearTimeout(hedgeTimer)
      hedgeTimer = undefined
      const delay = init.delayFor(candidate)
      if (!Number.isFinite(delay) || running.size >= init.maxParallel) return
      const since = performance.now()
      hedgeTimer = setTimeout(() => {
        hedgeTimer = undefined
        if (settled || running.size >= init.maxParallel || exhausted) return
        void launch(candidate, performance.now() - since)
      }, delay)
    }

    /** Starts the next candidate; `hedgeFrom` when it is a hedge of a slow one. */
    const launch = async (hedgeFrom?: C, afterMs?: number): Promise<void> => {
      if (settled || exhausted || pulling) return
      pulling = true
      let candidate: C | undefined
      try {
        const n = init.next(hedgeFrom !== undefined ? 'hedge' : launched === 0 ? 'first' : 'failover')
        launched++
        candidate = n instanceof Promise ? await n : n
      } catch (error) {
        failures.push({ source: 'tracker', error })
        candidate = undefined
      } finally {
        pulling = false
      }
      if (settled) return
      if (candidate === undefined) {
        if (hedgeFrom !== undefined) return
        exhausted = true
        if (running.size === 0) fail()
        return
      }
      if (hedgeFrom !== undefined) init.onHedge?.(hedgeFrom, candidate, afterMs ?? 0)
      const chosen = candidate
      const controller = new AbortController()
      running.set(chosen, { controller, started: performance.now() })
      armHedge(chosen)
      let promise: Promise<R>
      try {
        promise = init.start(chosen, controller.signal, (reason) => controller.abort(reason))
      } catch (error) {
        promise = Promise.reject(error)
      }
      promise.then(
        (result) => {
          if (settled || !running.has(chosen)) {
            controller.abort()
            init.dispose?.(result)
            return
          }
          running.delete(chosen)
          cleanup(true)
          winner = controller
          abortRunning(() => new AbortError('another source answered first'))
          resolve({ candidate: chosen, result, controller, release })
        },
        (error: unknown) => {
          if (settled || !running.has(chosen)) return
          running.delete(chosen)
          controller.abort()
          failures.push({ source: init.nameOf(chosen), error })
          init.onError?.(chosen, error)
          // replace it at once
          if (!exhausted) void launch()
          else if (running.size === 0 && !pulling) fail()
        },
      )
    }

    void launch()
  })
}
