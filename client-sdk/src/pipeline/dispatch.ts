/**
 * One request to one source, as a composable pipeline (STYLE 9): a `Dispatch` turns a
 * `SourceRequest` into a `SourceResponse` that is ready when its first byte is; an
 * `Interceptor` wraps a dispatch with one concern (time-outs, observation, …), and
 * `compose` stacks them. Interceptors follow a body through `progress` and `onEnd`
 * rather than wrapping it, so a piece costs the same however many are stacked. Verification is not an interceptor: it happens in one place,
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
  /**
   * A node reachable only through the mesh: dial `peerId` at `multiaddrs` (its `url` is
   * then `shoal-mesh://<peerId>/`, a name for stats and events, never fetched over HTTP).
   */
  mesh?: { peerId: string; multiaddrs: string[] }
}

export interface SourceRequest {
  source: Source
  /** The URL to GET. */
  url: string
  /** The byte span `[start, end)` to ask for with `Range`; the whole body when absent. */
  range?: { start: number; end: number }
  /** The size of the whole object, when known: a `Content-Range` or length must agree. */
  size?: number
  /**
   * Keep the pieces covering at least the last `retain` bytes received (plus the latest
   * piece), so that `recent` can give them back: the evidence of a chunk that fails.
   */
  retain?: number
  /** Extra request headers (e.g. `shoal-session`, naming the payment session the bytes count for). */
  headers?: Readonly<Record<string, string>>
  /** Most bytes accepted in a body without a range (e.g. a leaf list). */
  maxBytes?: number
  signal: AbortSignal
  /**
   * Aborts `signal` with a reason, when the request's owner offers it: interceptors that
   * give up on a source (time-outs) call it instead of linking a controller of their own.
   */
  abort?: (reason: Error) => void
}

/** How a body is being read, kept up to date by the base dispatch (interceptors watch it instead of wrapping the body). */
export interface SourceProgress {
  /** `performance.now()` when the pending read started, or `undefined` when no read is pending. */
  waitingSince: number | undefined
  /** Bytes passed on so far. */
  bytes: number
}

/** How a body ended: read to its end (`complete`), failed (`error`), or closed early (neither). */
export interface SourceEnd {
  complete: boolean
  error?: unknown
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
  readonly progress: SourceProgress
  /**
   * A copy of body bytes `[start, end)` (offsets in the body, 0 = its first byte) when the
   * request asked to `retain` them and they are all still held; else `undefined`.
   */
  recent(start: number, end: number): Uint8Array | undefined
  /** Calls `fn` once when the body ends (at once if it already has). */
  onEnd(fn: (end: SourceEnd) => void): void
  /** Releases the request (cancels the body); idempotent. */
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
