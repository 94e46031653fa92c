/**
 * A small in-memory time series of a cumulative counter: how much it grew in each
 * fixed bucket (default 10 s) over a window (default the last hour). It is fed the
 * counter's running total (`observe(total)`), so the hot path pays nothing: the owner
 * samples on a timer and before each read. Growth between two samples lands in the
 * bucket of the later one.
 *
 * @example
 * const served = createCounterSeries({ bucketMs: 10_000, buckets: 360 })
 * served.observe(totalBytes())
 * served.points() // [{ t: 1764000000000, value: 5120 }, …] oldest first
 */
import { InvalidArgumentError } from '@shoal/protocol'

export const DEFAULT_SERIES_BUCKET_MS = 10_000
export const DEFAULT_SERIES_BUCKETS = 360

export interface CounterSeriesInit {
  bucketMs?: number
  /** Buckets kept (the window is `bucketMs × buckets`). */
  buckets?: number
}

export interface CounterSeriesComponents {
  clock?: () => number
}

export interface SeriesPoint {
  /** Start of the bucket, ms since the epoch. */
  t: number
  /** Growth of the counter within the bucket. */
  value: number
}

export interface CounterSeries {
  readonly bucketMs: number
  readonly buckets: number
  /** Records the counter's running total now. A total lower than the last is a restart: counted from 0. */
  observe(total: number): void
  /** One point per bucket of the window, oldest first, the current (partial) bucket last. */
  points(): SeriesPoint[]
}

export function createCounterSeries(
  init: CounterSeriesInit = {},
  components: CounterSeriesComponents = {},
): CounterSeries {
  const bucketMs = init.bucketMs ?? DEFAULT_SERIES_BUCKET_MS
  const buckets = init.buckets ?? DEFAULT_SERIES_BUCKETS
  if (!Number.isSafeInteger(bucketMs) || bucketMs < 1)
    throw new InvalidArgumentError('bucketMs must be a positive integer')
  if (!Number.isSafeInteger(buckets) || buckets < 1 || buckets > 100_000)
    throw new InvalidArgumentError('buckets must be an integer from 1 to 100000')
  const clock = components.clock ?? Date.now
  /** Growth by bucket number (`floor(t / bucketMs)`), only buckets of the window. */
  const growth = new Map<number, number>()
  let last: number | undefined

  const prune = (current: number) => {
    for (const key of growth.keys()) if (key <= current - buckets) growth.delete(key)
  }

  return {
    bucketMs,
    buckets,
    observe(total) {
      if (!Number.isFinite(total) || total < 0) throw new InvalidArgumentError('total must be a number ≥ 0')
      const bucket = Math.floor(clock() / bucketMs)
      const delta = last === undefined ? 0 : total >= last ? total - last : total
      last = total
      if (delta > 0) growth.set(bucket, (growth.get(bucket) ?? 0) + delta)
      prune(bucket)
    },
    points() {
      const current = Math.floor(clock() / bucketMs)
      prune(current)
      const out: SeriesPoint[] = []
      for (let b = current - buckets + 1; b <= current; b++)
        out.push({ t: b * bucketMs, value: growth.get(b) ?? 0 })
      return out
    },
  }
}
