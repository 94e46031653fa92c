/** Small HTTP helpers of the origin cache. Internal. */
import type { ServerResponse } from 'node:http'
import { validateHeaderName, validateHeaderValue } from 'node:http'
import type { Readable } from 'node:stream'
import { UpstreamError } from '@shoal/protocol'
import type { UpstreamResponse } from '../upstream/http-upstream.ts'

export const noop = (): void => {}

export function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : undefined
}

/** Content-Length of a response, when present and well-formed. */
export function contentLengthOf(headers: Record<string, string | string[]>): number | undefined {
  const value = headers['content-length']
  if (typeof value !== 'string' || !/^\d+$/.test(value.trim())) return undefined
  const n = Number(value.trim())
  return Number.isSafeInteger(n) ? n : undefined
}

/** Throws `UpstreamError` when the origin sent a field the node cannot forward as is. */
export function checkHeaders(headers: Record<string, string | string[]>): void {
  try {
    for (const [name, value] of Object.entries(headers)) {
      validateHeaderName(name)
      if (typeof value === 'string') validateHeaderValue(name, value)
      else for (const item of value) validateHeaderValue(name, item)
    }
  } catch (err) {
    throw new UpstreamError('the origin sent a malformed response header', { cause: err })
  }
}

/** Lets go of a response body: drained when small (the connection is kept), else destroyed. */
export function discard(up: UpstreamResponse): void {
  const body = up.body as Readable & { dump?: (opts?: { limit: number }) => Promise<void> }
  if (typeof body.dump === 'function') body.dump({ limit: 64 * 1024 }).catch(noop)
  else body.destroy()
}

/** Resolves when `res` can take more, or is closed. */
export function drained(res: ServerResponse): Promise<void> {
  if (res.destroyed) return Promise.resolve()
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done)
      res.off('close', done)
      resolve()
    }
    res.on('drain', done)
    res.on('close', done)
  })
}

/** Headers without the representation's length and range (a 304, a 416). */
export function withoutLength(headers: Record<string, string | string[]>): Record<string, string | string[]> {
  const out = { ...headers }
  delete out['content-length']
  delete out['content-range']
  return out
}

export function bodyless(status: number): boolean {
  return status === 204 || status === 304 || (status >= 100 && status < 200)
}
