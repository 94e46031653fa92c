/**
 * Per-source time limits: the first byte must come within `ttfbMs`, and a body must never
 * wait more than `stallMs` for its next piece. Time the app spends not reading does not
 * count: the stall clock runs only while a read is pending. Either limit aborts the
 * request with `UpstreamTimeoutError` (`SHOAL_ERR_UPSTREAM_TIMEOUT`), closing its socket.
 */
import { UpstreamTimeoutError } from '@shoal/protocol'
import { type Interceptor, type SourceResponse, withBody } from './dispatch.ts'

export interface TimeoutsInit {
  ttfbMs: number
  stallMs: number
}

/**
 * @example
 * const dispatch = compose(timeouts({ ttfbMs: 5000, stallMs: 5000 }))(httpDispatch(fetch))
 */
export function timeouts(init: TimeoutsInit): Interceptor {
  const { ttfbMs, stallMs } = init
  return (next) => async (req) => {
    const controller = new AbortController()
    const outer = req.signal
    const onAbort = () => controller.abort(outer.reason)
    if (outer.aborted) controller.abort(outer.reason)
    else outer.addEventListener('abort', onAbort, { once: true })
    const release = () => outer.removeEventListener('abort', onAbort)
    const who = req.source.kind === 'node' ? `node ${req.source.url}` : `origin ${req.url}`

    const ttfbTimer = setTimeout(
      () => controller.abort(new UpstreamTimeoutError(`${who} sent no byte within ${ttfbMs} ms`)),
      ttfbMs,
    )
    let res: SourceResponse
    try {
      res = await next({ ...req, signal: controller.signal })
    } catch (err) {
      release()
      throw err
    } finally {
      clearTimeout(ttfbTimer)
    }

    // The stall watchdog: one timer, armed while a read is pending.
    let waitingSince: number | undefined
    let timer: ReturnType<typeof setTimeout> | undefined
    const check = () => {
      timer = undefined
      if (waitingSince === undefined) return
      const idle = performance.now() - waitingSince
      if (idle >= stallMs) {
        controller.abort(new UpstreamTimeoutError(`${who} stalled for ${stallMs} ms`))
      } else {
        timer = setTimeout(check, stallMs - idle)
      }
    }
    const stop = () => {
      if (timer !== undefined) clearTimeout(timer)
      timer = undefined
      waitingSince = undefined
      release()
    }
    const source = res.body[Symbol.asyncIterator]()
    const body: AsyncIterable<Uint8Array> = {
      [Symbol.asyncIterator]: () => ({
        async next() {
          waitingSince = performance.now()
          if (timer === undefined) timer = setTimeout(check, stallMs)
          try {
            const r = await source.next()
            if (r.done === true) stop()
            return r
          } catch (err) {
            stop()
            throw err
          } finally {
            waitingSince = undefined
          }
        },
        async return() {
          stop()
          await source.return?.()
          return { done: true, value: undefined }
        },
      }),
    }
    return withBody(res, body, stop)
  }
}
