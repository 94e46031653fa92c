/**
 * Feeds what each source does into the client's `NodeStats`: time to first byte, and
 * failures (errors and time-outs) — but not requests the client itself cancelled (a
 * hedge's loser, the app's abort), which say nothing about the node.
 */
import { isShoalError } from '@shoal/protocol'
import { isAbort } from '../errors.ts'
import type { NodeStats } from '../node-stats.ts'
import type { Interceptor } from './dispatch.ts'

export interface ObserveComponents {
  stats: NodeStats
}

/**
 * @example
 * const dispatch = compose(observe({ stats }), timeouts(…))(httpDispatch(fetch))
 */
export function observe(components: ObserveComponents): Interceptor {
  const { stats } = components
  return (next) => async (req) => {
    const key = req.source.url
    // cancelled by the client, or a node that does not hold the object: not the node's fault
    const cancelled = (err: unknown) =>
      req.signal.aborted || isAbort(err) || (isShoalError(err) && err.code === 'SHOAL_ERR_NOT_FOUND')
    let res: Awaited<ReturnType<typeof next>>
    try {
      res = await next(req)
    } catch (err) {
      if (!cancelled(err)) stats.recordFailure(key, 'error')
      throw err
    }
    stats.recordTtfb(key, res.ttfbMs)
    res.onEnd(({ complete, error }) => {
      if (complete) stats.recordSuccess(key)
      else if (error !== undefined && !cancelled(error)) stats.recordFailure(key, 'error')
    })
    return res
  }
}
