/**
 * Per-source time limits: the first byte must come within `ttfbMs`, and a body must never
 * wait more than `stallMs` for its next piece. Time the app spends not reading does not
 * count: the stall clock runs only while a read is pending. Either limit aborts the
 * request with `UpstreamTimeoutError` (`SHOAL_ERR_UPSTREAM_TIMEOUT`), closing its socket.
 *
 * Deadlines are kept by one watchdog per interceptor, not a timer per request or per
 * piece: it wakes every tick (an eighth of the shorter limit, 5 ms to 250 ms) while some
 * request is watched, and reads the body's `progress`, so a limit fires at most one tick
 * late and a piece costs nothing here.
 */
import { UpstreamTimeoutError } from '@shoal/protocol'
import type { Interceptor, SourceResponse } from './dispatch.ts'

export interface TimeoutsInit {
  ttfbMs: number
  stallMs: number
}

interface Watch {
  /** True when the limit is reached at `now`. */
  due(now: number): boolean
  fire(): void
}

function createWatchdog(tickMs: number) {
  const watched = new Set<Watch>()
  let timer: ReturnType<typeof setTimeout> | undefined
  const scan = () => {
    timer = undefined
    const now = performance.now()
    for (const w of watched) {
      if (w.due(now)) {
        watched.delete(w)
        w.fire()
      }
    }
    if (watched.size > 0) timer = setTimeout(scan, tickMs)
  }
  return {
    watch(w: Watch) {
      watched.add(w)
      if (timer === undefined) timer = setTimeout(scan, tickMs)
    },
    unwatch(w: Watch) {
      watched.delete(w)
    },
  }
}

/**
 * @example
 * const dispatch = compose(timeouts({ ttfbMs: 5000, stallMs: 5000 }))(httpDispatch(fetch))
 */
export function timeouts(init: TimeoutsInit): Interceptor {
  const { ttfbMs, stallMs } = init
  const watchdog = createWatchdog(Math.min(250, Math.max(5, Math.floor(Math.min(ttfbMs, stallMs) / 8))))
  return (next) => async (req) => {
    const who = req.source.kind === 'node' ? `node ${req.source.url}` : `origin ${req.url}`
    // abort through the request's owner when it says how; else through a linked controller
    let abort = req.abort
    let signal = req.signal
    let release: (() => void) | undefined
    if (abort === undefined) {
      const controller = new AbortController()
      const outer = req.signal
      const onAbort = () => controller.abort(outer.reason)
      if (outer.aborted) controller.abort(outer.reason)
      else outer.addEventListener('abort', onAbort, { once: true })
      release = () => outer.removeEventListener('abort', onAbort)
      abort = (reason) => controller.abort(reason)
      signal = controller.signal
    }
    const kill = abort
    const deadline = performance.now() + ttfbMs
    const first: Watch = {
      due: (now) => now >= deadline,
      fire: () => kill(new UpstreamTimeoutError(`${who} sent no byte within ${ttfbMs} ms`)),
    }
    watchdog.watch(first)
    let res: SourceResponse
    try {
      res = await next(signal === req.signal ? req : { ...req, signal, abort })
    } catch (err) {
      release?.()
      throw err
    } finally {
      watchdog.unwatch(first)
    }
    // the stall clock runs only while a read is pending
    const { progress } = res
    const stall: Watch = {
      due: (now) => progress.waitingSince !== undefined && now - progress.waitingSince >= stallMs,
      fire: () => kill(new UpstreamTimeoutError(`${who} stalled for ${stallMs} ms`)),
    }
    watchdog.watch(stall)
    res.onEnd(() => {
      watchdog.unwatch(stall)
      release?.()
    })
    return res
  }
}
