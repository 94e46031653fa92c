/**
 * Requests the cache does not answer: other methods (bodies streamed), bypassed reads,
 * forwarded ranges; and the invalidation that follows an unsafe method (RFC 9111 §4.4).
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { performance } from 'node:perf_hooks'
import type { UpstreamResponse } from '../upstream/http-upstream.ts'
import { appendVia, endToEndResponseHeaders, forwardRequestHeaders, headerValue } from './headers.ts'
import { baseKey, isVariantOf } from './keys.ts'
import type { Pump } from './stream.ts'
import type { OriginContext, OriginTarget, OriginUpstream, XCache } from './types.ts'
import { bodyless, checkHeaders, discard, errorCode, noop } from './util.ts'

export type PassThrough = (
  req: IncomingMessage,
  res: ServerResponse,
  target: OriginTarget,
  method: string,
  xCache: XCache,
  invalidateAfter: boolean,
  /** The client to use instead of the cache's (the fast path's raw one). */
  via?: OriginUpstream,
) => Promise<void>

export function createPassThrough(ctx: OriginContext, pump: Pump): PassThrough {
  const { store, upstream, logger, metrics, viaName, fills, forwardClientIp } = ctx
  const clientIpOf = (req: IncomingMessage): string | undefined =>
    forwardClientIp ? req.socket?.remoteAddress : undefined

  /** Keys of the target and of same-origin `Location`/`Content-Location` (RFC 9111 §4.4). */
  const invalidate = async (target: OriginTarget, received: Record<string, string | string[]>) => {
    const keys = new Set([baseKey(target.site, target.path)])
    const origin = new URL(target.origin)
    const basePath = origin.pathname.replace(/\/$/, '')
    for (const name of ['location', 'content-location']) {
      const value = headerValue(received, name)
      if (value === undefined) continue
      let url: URL
      try {
        url = new URL(value, `${target.origin}${target.path}`)
      } catch {
        continue
      }
      if (url.origin !== origin.origin || !url.pathname.startsWith(`${basePath}/`)) continue
      keys.add(baseKey(target.site, `${url.pathname.slice(basePath.length)}${url.search}`))
    }
    for (const key of keys) {
      for (const [fillKey, fill] of fills.entries()) {
        if (fillKey === key || isVariantOf(fillKey, key)) fill.invalidated = true
      }
      // The marker of a varying object goes with it: its variants are unreachable from then on.
      await store.delete(key).catch(noop)
    }
  }

  return async (req, res, target, method, xCache, invalidateAfter, via) => {
    const declared = req.headers['content-length']
    const hasBody =
      method !== 'GET' &&
      method !== 'HEAD' &&
      (declared !== undefined ? declared !== '0' : req.headers['transfer-encoding'] !== undefined)
    const headers = forwardRequestHeaders(req.headers, {
      viaName,
      fill: false,
      hasBody,
      clientIp: clientIpOf(req),
    })
    const controller = new AbortController()
    const onClose = (): void => {
      if (!res.writableFinished) controller.abort()
    }
    res.on('close', onClose)
    try {
      const started = performance.now()
      let up: UpstreamResponse
      try {
        up = await (via ?? upstream).request(`${target.origin}${target.path}`, {
          method,
          headers,
          body: hasBody ? req : null,
          signal: controller.signal,
        })
      } catch (err) {
        if (controller.signal.aborted) return
        logger?.warn({ site: target.site, code: errorCode(err) }, 'origin request failed')
        throw err
      }
      metrics?.upstreamSeconds.observe({ upstream: 'origin' }, (performance.now() - started) / 1000)
      const received = endToEndResponseHeaders(up.headers)
      try {
        checkHeaders(received)
      } catch (err) {
        up.body.destroy()
        throw err
      }
      if (invalidateAfter && up.status >= 200 && up.status < 400) await invalidate(target, received)
      res.writeHead(up.status, { ...received, via: appendVia(received.via, viaName), 'x-cache': xCache })
      if (method === 'HEAD' || bodyless(up.status)) {
        discard(up)
        res.end()
        return
      }
      await pump(up.body, res, { kind: 'full' }, undefined, undefined, true)
    } finally {
      res.off('close', onClose)
    }
  }
}
