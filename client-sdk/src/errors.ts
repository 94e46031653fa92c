/**
 * How the client turns failures into typed errors. Every error it throws carries a code
 * from `@shoal/protocol`; callers match on `error.code`.
 */
import {
  AbortError,
  ERROR_CODES,
  type ErrorCode,
  isShoalError,
  parseErrorBody,
  ShoalError,
  UnavailableError,
  UpstreamError,
} from '@shoal/protocol'
import type { FailureInfo } from './events.ts'

/** One source's failure, as listed by an `UnavailableError`. */
export interface SourceFailure extends FailureInfo {
  /** The node's base URL, the origin URL, or `tracker`. */
  source: string
}

/** `SHOAL_ERR_UNAVAILABLE` with what each source answered (`failures`, and `cause` an `AggregateError`). */
export type UnavailableWithFailures = InstanceType<typeof UnavailableError> & {
  readonly failures: readonly SourceFailure[]
}

export function infoOf(err: unknown): FailureInfo {
  if (isShoalError(err)) return { code: err.code, message: err.message }
  return { code: 'SHOAL_ERR_INTERNAL', message: err instanceof Error ? err.message : String(err) }
}

/**
 * @example
 * throw unavailable('no node could serve saej…', [{ source: 'http://a/', error }])
 */
export function unavailable(
  message: string,
  failures: readonly { source: string; error: unknown }[],
): UnavailableWithFailures {
  const err = new UnavailableError(message, {
    cause: new AggregateError(
      failures.map((f) => f.error),
      message,
    ),
  }) as UnavailableWithFailures
  Object.defineProperty(err, 'failures', {
    value: Object.freeze(failures.map((f) => ({ source: f.source, ...infoOf(f.error) }))),
    enumerable: true,
  })
  return err
}

/**
 * What a failed `fetch` (or body read) means: the abort reason when `signal` was aborted
 * (time-outs abort with a typed reason), `AbortError` for a bare abort, else an
 * `UpstreamError` saying what failed.
 */
export function failureOf(err: unknown, signal: AbortSignal | undefined, what: string): Error {
  if (signal?.aborted === true) {
    const reason: unknown = signal.reason
    if (isShoalError(reason)) return reason as unknown as Error
    return new AbortError('the operation was aborted', { cause: reason })
  }
  if (isShoalError(err)) return err as unknown as Error
  return new UpstreamError(what, { cause: err })
}

/** Turns a non-2xx answer of a node or origin into a typed error (its JSON body's code if it has one). */
export async function errorOfResponse(res: Response, from: string): Promise<Error> {
  let parsed: ReturnType<typeof parseErrorBody>
  if ((res.headers.get('content-type') ?? '').includes('json')) {
    parsed = parseErrorBody(await res.json().catch(() => undefined))
  } else {
    await res.body?.cancel().catch(() => {})
  }
  if (parsed !== undefined && Object.hasOwn(ERROR_CODES, parsed.error.code)) {
    return new ShoalError(parsed.error.code as ErrorCode, `${from}: ${parsed.error.message}`)
  }
  if (res.status === 404) return new ShoalError('SHOAL_ERR_NOT_FOUND', `${from} answered 404`)
  return new UpstreamError(`${from} answered ${res.status}`)
}

/** True when `err` is (or was caused by) the caller's abort. */
export function isAbort(err: unknown): boolean {
  return isShoalError(err) && err.code === 'SHOAL_ERR_ABORTED'
}
