/**
 * One request to one source, as a composable pipeline (STYLE 9): a `Dispatch` turns a
 * `SourceRequest` into a `SourceResponse` that is ready when its first byte is; an
 * `Interceptor` wraps a dispatch with one concern (time-outs, observation, …), and
 * `compose` stacks them. Verification is not an interceptor: it happens in one place,
 * over whatever source won (`verifiedBody`).
 */
import type { Address } from 'viem'

/** Where bytes come from: a Shoal node (base URL) or a site's origin. Never trusted. */
export interface Source {
  kind: 'node' | 'origin'
  /** A node's base URL (with a trailing `/`), or the origin URL of the object. */
  url: string
  /** The node's address, when known (for reports). */
  address?: Address
}

export interface SourceRequest {
  source: Source
  /** The URL to GET. */
  url: string
  /** The byte span `[start, end)` to ask for with `Range`; the whole body when absent. */
  range?: { start: number; end: number }
  /** The size of the whole object, when known: a `Content-Range` or length must agree. */
  size?: number
  /** Most bytes accepted in a body without a range (e.g. a leaf list). */
  maxBytes?: number
  signal: AbortSignal
}

export interface SourceResponse {
  status: number
  headers: Headers
  /**
   * Exactly the asked span (or the whole body), the first piece already received. Read it
   * once. Bytes beyond the span are an error, never passed on.
   */
  body: AsyncIterable<Uint8Array>
  /** Milliseconds from the dispatch to the first byte. */
  ttfbMs: number
  /** Releases the request (cancels the body, clears timers); idempotent. */
  close(): void
}

export type Dispatch = (request: SourceRequest) => Promise<SourceResponse>
export type Interceptor = (next: Dispatch) => Dispatch

/**
 * Stacks interceptors: the first is the outermost.
 *
 * @example
 * const dispatch = compose(observe({ stats }), timeouts({ ttfbMs: 5000, stallMs: 5000 }))(httpDispatch(fetch))
 */
export function compose(...interceptors: Interceptor[]): (base: Dispatch) => Dispatch {
  return (base) => interceptors.reduceRight<Dispatch>((next, interceptor) => interceptor(next), base)
}

/** Wraps a response's body with `wrap`, keeping everything else; `close` runs `onClose` first. */
export function withBody(
  response: SourceResponse,
  body: AsyncIterable<Uint8Array>,
  onClose?: () => void,
): SourceResponse {
  return {
    ...response,
    body,
    close() {
      onClose?.()
      response.close()
    },
  }
}
