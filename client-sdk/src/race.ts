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

/** A moment (`performance.now()` time) at which `fire` is to be called. */
interface Deadline {
  at: number
  fire(): void
}

/**
 * Every race's hedge deadline on one timer, armed for the earliest and re-armed when it
 * fires (a timer wheel of one slot): a fetch answered before its hedge delay costs a set
 * insertion and deletion, not a timer of its own. The timer does not keep a process
 * alive (a race in flight has its request for that).
 */
function createDeadlines() {
  const pending = new Set<Deadline>()
  let timer: ReturnType<typeof setTimeout> | undefined
  let armedFor = Number.POSITIVE_INFINITY
  const arm = (at: number) => {
    if (timer !== undefined) {
      if (armedFor <= at) return
      clearTimeout(timer)
    }
    armedFor = at
    timer = setTimeout(scan, Math.max(0, at - performance.now()))
    ;(timer as { unref?: () => void }).unref?.()
  }
  const scan = () => {
    timer = undefined
    armedFor = Number.POSITIVE_INFINITY
    const now = performance.now()
    let next = Number.POSITIVE_INFINITY
    for (const d of pending) {
      // timers fire on whole milliseconds: a deadline less than one away is due now
      if (d.at <= now + 1) {
        pending.delete(d)
        d.fire()
      } else if (d.at < next) next = d.at
    }
    if (next !== Number.POSITIVE_INFINITY) arm(next)
  }
  return {
    add(d: Deadline) {
      pending.add(d)
      arm(d.at)
    },
    delete(d: Deadline) {
      pending.delete(d)
    },
  }
}

const deadlines = createDeadlines()

interface Running<C> {
  candidate: C
  controller: AbortController
  started: number
}

/**
 * One race's state. A class rather than a closure per step: a warm fetch runs one race,
 * and its allocations show in the time to first byte.
 */
class Race<C, R> {
  readonly init: RaceInit<C, R>
  readonly resolve: (win: RaceWin<C, R>) => void
  readonly reject: (error: unknown) => void
  readonly running: Running<C>[] = []
  readonly failures: { source: string; error: unknown }[]
  settled = false
  exhausted = false
  pulling = false
  launched = 0
  /** The pending hedge, on the shared clock. */
  hedge: Deadline | undefined = undefined
  /** After a win, the caller's abort goes on to the winner until `release()`. */
  winner: AbortController | undefined = undefined
  readonly onAbort: () => void
  readonly release: () => void

  constructor(init: RaceInit<C, R>, resolve: (win: RaceWin<C, R>) => void, reject: (error: unknown) => void) {
    this.init = init
    this.resolve = resolve
    this.reject = reject
    this.failures = init.failures ?? []
    this.onAbort = () => this.aborted()
    this.release = () => init.signal?.removeEventListener('abort', this.onAbort)
  }

  begin(): void {
    const { signal } = this.init
    if (signal?.aborted === true) {
      this.reject(new AbortError('the operation was aborted', { cause: signal.reason }))
      return
    }
    signal?.addEventListener('abort', this.onAbort, { once: true })
    void this.launch()
  }

  cleanup(keepListening: boolean): void {
    this.settled = true
    if (this.hedge !== undefined) deadlines.delete(this.hedge)
    if (!keepListening) this.release()
  }

  abortRunning(reason: () => Error): void {
    if (this.running.length === 0) return
    const now = performance.now()
    const error = reason()
    for (const run of this.running) {
      run.controller.abort(error)
      this.init.onLose?.(run.candidate, now - run.started)
    }
    this.running.length = 0
  }

  fail(): void {
    this.cleanup(false)
    this.reject(unavailable(this.init.what, this.failures))
  }

  aborted(): void {
    const reason = this.init.signal?.reason
    if (this.winner !== undefined) {
      this.winner.abort(new AbortError('the operation was aborted', { cause: reason }))
      return
    }
    if (this.settled) return
    this.cleanup(false)
    const err = new AbortError('the operation was aborted', { cause: reason })
    this.abortRunning(() => err)
    this.reject(err)
  }

  armHedge(candidate: C): void {
    if (this.hedge !== undefined) deadlines.delete(this.hedge)
    this.hedge = undefined
    const delay = this.init.delayFor(candidate)
    if (!Number.isFinite(delay) || this.running.length >= this.init.maxParallel) return
    const since = performance.now()
    const hedge: Deadline = {
      at: since + delay,
      fire: () => {
        if (this.hedge === hedge) this.hedge = undefined
        if (this.settled || this.running.length >= this.init.maxParallel || this.exhausted) return
        void this.launch(candidate, performance.now() - since)
      },
    }
    this.hedge = hedge
    deadlines.add(hedge)
  }

  indexOf(candidate: C): number {
    for (let i = 0; i < this.running.length; i++) if (this.running[i]!.candidate === candidate) return i
    return -1
  }

  /** Starts the next candidate; `hedgeFrom` when it is a hedge of a slow one. */
  async launch(hedgeFrom?: C, afterMs?: number): Promise<void> {
    if (this.settled || this.exhausted || this.pulling) return
    this.pulling = true
    let candidate: C | undefined
    try {
      const n = this.init.next(hedgeFrom !== undefined ? 'hedge' : this.launched === 0 ? 'first' : 'failover')
      this.launched++
      candidate = n instanceof Promise ? await n : n
    } catch (error) {
      this.failures.push({ source: 'tracker', error })
      candidate = undefined
    } finally {
      this.pulling = false
    }
    if (this.settled) return
    if (candidate === undefined) {
      if (hedgeFrom !== undefined) return
      this.exhausted = true
      if (this.running.length === 0) this.fail()
      return
    }
    if (hedgeFrom !== undefined) this.init.onHedge?.(hedgeFrom, candidate, afterMs ?? 0)
    const run: Running<C> = { candidate, controller: new AbortController(), started: performance.now() }
    this.running.push(run)
    this.armHedge(candidate)
    let promise: Promise<R>
    try {
      const { controller } = run
      promise = this.init.start(candidate, controller.signal, (reason) => controller.abort(reason))
    } catch (error) {
      promise = Promise.reject(error)
    }
    promise.then(
      (result) => this.won(run, result),
      (error: unknown) => this.lost(run, error),
    )
  }

  won(run: Running<C>, result: R): void {
    const at = this.indexOf(run.candidate)
    if (this.settled || at < 0) {
      run.controller.abort()
      this.init.dispose?.(result)
      return
    }
    this.running.splice(at, 1)
    this.cleanup(true)
    this.winner = run.controller
    this.abortRunning(() => new AbortError('another source answered first'))
    this.resolve({ candidate: run.candidate, result, controller: run.controller, release: this.release })
  }

  lost(run: Running<C>, error: unknown): void {
    const at = this.indexOf(run.candidate)
    if (this.settled || at < 0) return
    this.running.splice(at, 1)
    run.controller.abort()
    this.failures.push({ source: this.init.nameOf(run.candidate), error })
    this.init.onError?.(run.candidate, error)
    // replace it at once
    if (!this.exhausted) void this.launch()
    else if (this.running.length === 0 && !this.pulling) this.fail()
  }
}

/**
 * @example
 * const { candidate, result, controller, release } = await race({
 *   next: () => nodes.shift(), nameOf: (n) => n.url, start: (n, signal) => get(n, signal),
 *   delayFor: () => 50, maxParallel: 2, what: 'no node answered' })
 */
export function race<C, R>(init: RaceInit<C, R>): Promise<RaceWin<C, R>> {
  return new Promise<RaceWin<C, R>>((resolve, reject) => new Race(init, resolve, reject).begin())
}
