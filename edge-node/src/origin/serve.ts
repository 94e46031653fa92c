/** Answers a request from a stored response: conditionals, ranges, HEAD, memory or disk. */
import type { ServerResponse } from 'node:http'
import type { Readable } from 'node:stream'
import { RangeNotSatisfiableError } from '@shoal/protocol'
import { contentRange, parseRange, unsatisfiedRange } from '../http/range.ts'
import { sendError } from '../http/respond.ts'
import { ifRangeAllows, notModified } from './conditional.ts'
import { ageAt } from './policy.ts'
import type { Pump } from './stream.ts'
import type { Hit, OriginContext, ReadRequest, XCache } from './types.ts'
import { bodyless, errorCode, withoutLength } from './util.ts'

export type ServeCached = (r: ReadRequest, res: ServerResponse, hit: Hit, xCache: XCache) => Promise<boolean>

export function createServeCached(ctx: Pick<OriginContext, 'metrics' | 'now'>, pump: Pump): ServeCached {
  const { metrics, now } = ctx
  /** Answers from a stored response; false when its body vanished before anything was sent. */
  return async (r, res, hit, xCache) => {
    const { entry, prepared } = hit
    if (xCache === 'HIT' || xCache === 'STALE') metrics?.cacheHits.inc({ tier: entry.tier })
    const headers: Record<string, string> = {
      ...prepared.serveHeaders,
      age: String(Math.floor(ageAt(prepared, now()))),
      'x-cache': xCache,
    }
    const { status } = prepared
    if (status >= 200 && status < 300 && notModified(r.conditionals, prepared)) {
      res.writeHead(304, withoutLength(headers))
      res.end()
      return true
    }
    let start = 0
    let end = entry.size
    let outStatus = status
    if (status === 200 && r.range !== undefined && ifRangeAllows(r.ifRange, prepared)) {
      const range = parseRange(r.range, entry.size)
      if (range.kind === 'unsatisfiable') {
        sendError(
          res,
          new RangeNotSatisfiableError(`the range is not within the ${entry.size} bytes of the object`),
          { ...withoutLength(headers), 'content-range': unsatisfiedRange(entry.size) } as Record<
            string,
            string
          >,
        )
        return true
      }
      if (range.kind === 'range') {
        outStatus = 206
        start = range.range.start
        end = range.range.end
        headers['content-range'] = contentRange(range.range, entry.size)
      }
    }
    if (!bodyless(outStatus)) headers['content-length'] = String(end - start)
    else delete headers['content-length']
    if (r.method === 'HEAD' || bodyless(outStatus)) {
      res.writeHead(outStatus, headers)
      res.end()
      return true
    }
    if (entry.tier === 'memory') {
      res.writeHead(outStatus, headers)
      res.end(start === 0 && end === entry.size ? entry.body : entry.body.subarray(start, end))
      return true
    }
    let stream: Readable
    try {
      stream = await entry.open({ start, end })
    } catch (err) {
      if (errorCode(err) === 'SHOAL_ERR_NOT_FOUND') return false
      throw err
    }
    res.writeHead(outStatus, headers)
    await pump(stream, res, { kind: 'full' }, undefined, undefined, false)
    return true
  }
}
