/**
 * The schedule shared by the tracker's probe loops (the URL probe, `prober.ts`, and the
 * mesh probe, `reachability/mesh-prober.ts`): each target is probed about once per
 * interval, never twice at once, with at most `concurrency` probes in flight, each
 * bounded by `timeoutMs` and aborted on `stop()`.
 *
 * Built not to starve the API at 100k+ targets:
 * - a min-heap of due times, so each tick only looks at what is due;
 * - the next probe of a target is `interval ± jitter` (or what `nextDelayMs` says, e.g.
 *   a back-off), so a burst of registrations spreads out instead of probing in lockstep;
 * - at most `maxLaunchPerTick` probes started per event-loop turn before yielding.
 */

const DEFAULT_MAX_LAUNCH_PER_TICK = 64

export interface ProbeLoopInit {
  intervalMs: number
  concurrency: number
  timeoutMs: number
  jitter: number
  maxLaunchPerTick?: number
}

export interface ProbeLoopComponents<T, R> {
  /** Probes one target; `signal` aborts on timeout and on `stop()`. Must not throw. */
  run: (node: string, target: T, signal: AbortSignal) => Promise<R>
  /** Told each scheduled probe's result, unless the target was updated, removed or the loop stopped meanwhile. */
  onResult: (node: string, target: T, result: R) => void
  /** Delay before a target's next probe (ms); `interval ± jitter` by default. */
  nextDelayMs?: (node: string) => number
  /** Whether an upsert changes nothing (then the target keeps its schedule); `===` by default. */
  same?: (a: T, b: T) => boolean
  clock?: () => number
  random?: () => number
  /** Told the number of probes in flight whenever it changes. */
  onInFlight?: (inFlight: number) => void
  /** Told how far behind the schedule is (s) on each tick. */
  onLag?: (seconds: number) => void
}

export interface ProbeLoop<T> {
  /**
   * Adds or updates a target: probed at once, or with `spread` at a random point of the
   * next interval. Returns false when the target was already there unchanged.
   */
  upsert(node: string, target: T, options?: { spread?: boolean }): boolean
  remove(node: string): void
  has(node: string): boolean
  /** A signal for a probe outside the schedule: aborts on timeout, on `stop()` and on `signal`. */
  signal(signal?: AbortSignal): AbortSignal
  /** True until `stop()`: results of probes still in flight after it are dropped. */
  readonly live: boolean
  start(): void
  /** Stops scheduling and aborts probes in flight. */
  stop(): Promise<void>
  stats(): { targets: number; inFlight: number; lagMs: number }
}

interface Entry<T> {
  node: string
  target: T
  due: number
  /** Bumped on upsert/remove: heap entries with an old generation are skipped. */
  gen: number
  inFlight: boolean
}

interface HeapEntry {
  due: number
  key: string
  gen: number
}

/** A binary min-heap on `due`. */
class DueHeap {
  private readonly items: HeapEntry[] = []
  peek(): HeapEntry | undefined {
    return this.items[0]
  }
  push(e: HeapEntry): void {
    const a = this.items
    a.push(e)
    let i = a.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (a[p]!.due <= e.due) break
      a[i] = a[p]!
      i = p
    }
    a[i] = e
  }
  pop(): HeapEntry | undefined {
    const a = this.items
    const top = a[0]
    const last = a.pop()
    if (top === undefined || last === undefined || a.length === 0) return top
    let i = 0
    for (;;) {
      let c = 2 * i + 1
      if (c >= a.length) break
      if (c + 1 < a.length && a[c + 1]!.due < a[c]!.due) c++
      if (a[c]!.due >= last.due) break
      a[i] = a[c]!
      i = c
    }
    a[i] = last
    return top
  }
}

/**
 * @example
 * const loop = createProbeLoop({ intervalMs: 30_000, concurrency: 64, timeoutMs: 5_000, jitter: 0.1 },
 *   { run: (node, url, signal) => probeOnce(node, url, signal), onResult: (node, url, outcome) => record(node, outcome) })
 * loop.upsert(address, httpUrl)
 * loop.start()
 */
export function createProbeLoop<T, R>(
  init: ProbeLoopInit,
  components: ProbeLoopComponents<T, R>,
): ProbeLoop<T> {
  const clock = components.clock ?? Date.now
  const random = components.random ?? Math.random
  const same = components.same ?? ((a: T, b: T) => a === b)
  const maxLaunch = init.maxLaunchPerTick ?? DEFAULT_MAX_LAUNCH_PER_TICK
  const entries = new Map<string, Entry<T>>()
  const heap = new DueHeap()
  let inFlight = 0
  let running = false
  let timer: NodeJS.Timeout | undefined
  let immediate: NodeJS.Immediate | undefined
  const stopController = new AbortController()
  const pending = new Set<Promise<void>>()

  const nextDue = (node: string, now: number): number =>
    now + (components.nextDelayMs?.(node) ?? init.intervalMs * (1 + init.jitter * (2 * random() - 1)))

  const launch = (e: Entry<T>): void => {
    e.inFlight = true
    inFlight++
    components.onInFlight?.(inFlight)
    const signal = AbortSignal.any([stopController.signal, AbortSignal.timeout(init.timeoutMs)])
    const key = e.node.toLowerCase()
    const p = components
      .run(e.node, e.target, signal)
      .then((result) => {
        if (!stopController.signal.aborted && entries.get(key) === e)
          components.onResult(e.node, e.target, result)
      })
      .catch(() => {})
      .finally(() => {
        e.inFlight = false
        inFlight--
        components.onInFlight?.(inFlight)
        pending.delete(p)
        if (running && entries.get(key) === e) {
          e.due = nextDue(e.node, clock())
          heap.push({ due: e.due, key, gen: e.gen })
        }
        schedule(0)
      })
    pending.add(p)
  }

  const pump = (): void => {
    immediate = undefined
    if (!running) return
    const now = clock()
    let launched = 0
    while (inFlight < init.concurrency && launched < maxLaunch) {
      const top = heap.peek()
      if (top === undefined || top.due > now) break
      heap.pop()
      const e = entries.get(top.key)
      if (e === undefined || e.gen !== top.gen || e.inFlight) continue
      launch(e)
      launched++
    }
    const top = heap.peek()
    components.onLag?.(top !== undefined && top.due < now ? (now - top.due) / 1000 : 0)
    if (launched === maxLaunch && inFlight < init.concurrency) schedule(0)
    else if (top !== undefined && inFlight < init.concurrency) schedule(Math.max(0, top.due - now))
  }

  const schedule = (delayMs: number): void => {
    if (!running) return
    if (delayMs <= 0) {
      if (timer !== undefined) {
        clearTimeout(timer)
        timer = undefined
      }
      immediate ??= setImmediate(pump)
      return
    }
    if (immediate !== undefined) return
    if (timer !== undefined) clearTimeout(timer)
    timer = setTimeout(
      () => {
        timer = undefined
        pump()
      },
      Math.min(delayMs, 1_000),
    )
    timer.unref()
  }

  return {
    upsert(node, target, options = {}) {
      const key = node.toLowerCase()
      const e = entries.get(key)
      if (e !== undefined && same(e.target, target)) return false
      const now = clock()
      const due = options.spread === true ? now + random() * init.intervalMs : now
      const next: Entry<T> = { node, target, due, gen: (e?.gen ?? 0) + 1, inFlight: false }
      entries.set(key, next)
      heap.push({ due: next.due, key, gen: next.gen })
      schedule(0)
      return true
    },
    remove(node) {
      entries.delete(node.toLowerCase())
    },
    has(node) {
      return entries.has(node.toLowerCase())
    },
    signal(signal) {
      return AbortSignal.any([
        stopController.signal,
        AbortSignal.timeout(init.timeoutMs),
        ...(signal ? [signal] : []),
      ])
    },
    get live() {
      return !stopController.signal.aborted
    },
    start() {
      if (running) return
      running = true
      schedule(0)
    },
    async stop() {
      running = false
      if (timer !== undefined) clearTimeout(timer)
      if (immediate !== undefined) clearImmediate(immediate)
      timer = undefined
      immediate = undefined
      stopController.abort()
      await Promise.allSettled([...pending])
    },
    stats() {
      const top = heap.peek()
      const now = clock()
      return {
        targets: entries.size,
        inFlight,
        lagMs: top !== undefined && top.due < now ? now - top.due : 0,
      }
    },
  }
}
