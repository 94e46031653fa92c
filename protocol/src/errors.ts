/**
 * Typed errors with stable codes, shared by every Shoal package.
 *
 * Callers match on `error.code`, never on message text or on `instanceof`
 * across packages. Every HTTP service maps an error to the same JSON body:
 * `{"error":{"code":"SHOAL_ERR_…","message":"…"}}` with `httpStatusOf(code)`.
 */

/** Every error code Shoal emits, with the HTTP status a service answers it with. */
export const ERROR_CODES = {
  SHOAL_ERR_INVALID_ARGUMENT: 400,
  SHOAL_ERR_INVALID_CID: 400,
  SHOAL_ERR_INVALID_LEAVES: 400,
  SHOAL_ERR_INVALID_PROOF: 400,
  SHOAL_ERR_INVALID_FORMAT: 400,
  SHOAL_ERR_INVALID_SIGNATURE: 401,
  SHOAL_ERR_UNAUTHORIZED: 401,
  SHOAL_ERR_FORBIDDEN: 403,
  SHOAL_ERR_NOT_FOUND: 404,
  SHOAL_ERR_METHOD_NOT_ALLOWED: 405,
  SHOAL_ERR_PROXY_AUTH_REQUIRED: 407,
  SHOAL_ERR_TIMEOUT: 408,
  SHOAL_ERR_CONFLICT: 409,
  SHOAL_ERR_STALE: 409,
  SHOAL_ERR_EXPIRED: 401,
  SHOAL_ERR_REPLAY: 409,
  SHOAL_ERR_TOO_LARGE: 413,
  SHOAL_ERR_UNSUPPORTED_MEDIA_TYPE: 415,
  SHOAL_ERR_RANGE_NOT_SATISFIABLE: 416,
  SHOAL_ERR_HEADERS_TOO_LARGE: 431,
  SHOAL_ERR_RATE_LIMITED: 429,
  SHOAL_ERR_INTERNAL: 500,
  SHOAL_ERR_INTEGRITY: 502,
  SHOAL_ERR_UPSTREAM: 502,
  SHOAL_ERR_UNAVAILABLE: 503,
  SHOAL_ERR_UPSTREAM_TIMEOUT: 504,
  SHOAL_ERR_ABORTED: 499,
} as const

export type ErrorCode = keyof typeof ERROR_CODES

/** The JSON body every Shoal service answers an error with. */
export interface ErrorBody {
  error: {
    code: string
    message: string
  }
}

export interface ShoalErrorOptions {
  cause?: unknown
}

/**
 * Base of every Shoal error. `code` is stable; `message` is for people.
 *
 * @example
 * throw new ShoalError('SHOAL_ERR_NOT_FOUND', 'no site named "blog"')
 */
export class ShoalError extends Error {
  override name = 'ShoalError'
  readonly code: ErrorCode

  constructor(code: ErrorCode, message: string, options: ShoalErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
  }

  /** The HTTP status a service answers this error with. */
  get status(): number {
    return ERROR_CODES[this.code]
  }

  toJSON(): ErrorBody {
    return errorBody(this.code, this.message)
  }
}

function defineError(name: string, code: ErrorCode) {
  const Class = class extends ShoalError {
    override name = name
    constructor(message: string, options: ShoalErrorOptions = {}) {
      super(code, message, options)
    }
  }
  Object.defineProperty(Class, 'name', { value: name })
  return Class
}

/** An argument or option is missing, of the wrong type or out of range. */
export const InvalidArgumentError = defineError('InvalidArgumentError', 'SHOAL_ERR_INVALID_ARGUMENT')
/** A content id is malformed or not in canonical form. */
export const InvalidCidError = defineError('InvalidCidError', 'SHOAL_ERR_INVALID_CID')
/** A chunk-hash list ("leaves") is truncated, oversized or does not match its CID. */
export const InvalidLeavesError = defineError('InvalidLeavesError', 'SHOAL_ERR_INVALID_LEAVES')
/** An inclusion proof has the wrong length or does not lead to the root. */
export const InvalidProofError = defineError('InvalidProofError', 'SHOAL_ERR_INVALID_PROOF')
/** Bytes do not match the content id they were fetched for. */
export const IntegrityError = defineError('IntegrityError', 'SHOAL_ERR_INTEGRITY')
/** An encoded record is malformed, has unknown fields or is not canonical. */
export const InvalidFormatError = defineError('InvalidFormatError', 'SHOAL_ERR_INVALID_FORMAT')
/** A signature is malformed or was not made by the key the record names. */
export const InvalidSignatureError = defineError('InvalidSignatureError', 'SHOAL_ERR_INVALID_SIGNATURE')
/** A ticket, request or record is past its expiry or outside its freshness window. */
export const ExpiredError = defineError('ExpiredError', 'SHOAL_ERR_EXPIRED')
/** A record is older than (or as old as) one already accepted. */
export const StaleError = defineError('StaleError', 'SHOAL_ERR_STALE')
/** A nonce or signed request was seen before. */
export const ReplayError = defineError('ReplayError', 'SHOAL_ERR_REPLAY')
/** No such content, site, node or path. */
export const NotFoundError = defineError('NotFoundError', 'SHOAL_ERR_NOT_FOUND')
/** A body, object or field is larger than allowed. */
export const TooLargeError = defineError('TooLargeError', 'SHOAL_ERR_TOO_LARGE')
/** A byte range cannot be satisfied for the object's size. */
export const RangeNotSatisfiableError = defineError(
  'RangeNotSatisfiableError',
  'SHOAL_ERR_RANGE_NOT_SATISFIABLE',
)
/** An upstream (origin, peer, node) failed or answered garbage. */
export const UpstreamError = defineError('UpstreamError', 'SHOAL_ERR_UPSTREAM')
/** An upstream did not answer in time. */
export const UpstreamTimeoutError = defineError('UpstreamTimeoutError', 'SHOAL_ERR_UPSTREAM_TIMEOUT')
/** The caller aborted the operation through its `AbortSignal`. */
export const AbortError = defineError('AbortError', 'SHOAL_ERR_ABORTED')

/** The caller is not authenticated for this operation. */
export const UnauthorizedError = defineError('UnauthorizedError', 'SHOAL_ERR_UNAUTHORIZED')
/** The caller is known but not allowed to do this. */
export const ForbiddenError = defineError('ForbiddenError', 'SHOAL_ERR_FORBIDDEN')
/** The method is not supported on this resource. */
export const MethodNotAllowedError = defineError('MethodNotAllowedError', 'SHOAL_ERR_METHOD_NOT_ALLOWED')
/** A relay request came without a valid relay ticket. */
export const ProxyAuthRequiredError = defineError('ProxyAuthRequiredError', 'SHOAL_ERR_PROXY_AUTH_REQUIRED')
/** The client was too slow to send its request. */
export const TimeoutError = defineError('TimeoutError', 'SHOAL_ERR_TIMEOUT')
/** The request conflicts with the current state (e.g. a URL claimed by another key). */
export const ConflictError = defineError('ConflictError', 'SHOAL_ERR_CONFLICT')
/** The body's media type is not accepted here. */
export const UnsupportedMediaTypeError = defineError(
  'UnsupportedMediaTypeError',
  'SHOAL_ERR_UNSUPPORTED_MEDIA_TYPE',
)
/** The request head is larger than allowed. */
export const HeadersTooLargeError = defineError('HeadersTooLargeError', 'SHOAL_ERR_HEADERS_TOO_LARGE')
/** Too many requests from this caller; retry later. */
export const RateLimitedError = defineError('RateLimitedError', 'SHOAL_ERR_RATE_LIMITED')
/** The service cannot answer now (shutting down, overloaded, no node available). */
export const UnavailableError = defineError('UnavailableError', 'SHOAL_ERR_UNAVAILABLE')

/** True when `value` is an error object carrying one of Shoal's codes. */
export function isShoalError(value: unknown): value is { code: ErrorCode; message: string } {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { code?: unknown }).code === 'string' &&
    Object.hasOwn(ERROR_CODES, (value as { code: string }).code)
  )
}

/** The HTTP status for a code; 500 for anything that is not a Shoal code. */
export function httpStatusOf(code: string): number {
  return Object.hasOwn(ERROR_CODES, code) ? ERROR_CODES[code as ErrorCode] : 500
}

/** Builds the shared JSON error body. */
export function errorBody(code: string, message: string): ErrorBody {
  return { error: { code, message } }
}

/**
 * Maps anything thrown to the status and JSON body a service answers with.
 * Errors that are not Shoal's become a 500 with a generic message, so internals
 * never leak to clients.
 */
export function toErrorResponse(err: unknown): { status: number; body: ErrorBody } {
  if (isShoalError(err)) return { status: httpStatusOf(err.code), body: errorBody(err.code, err.message) }
  return { status: 500, body: errorBody('SHOAL_ERR_INTERNAL', 'internal error') }
}

/**
 * Parses an error body a Shoal service sent, or `undefined` when `value` is not one.
 * Used by clients to turn a remote error back into a typed error.
 */
export function parseErrorBody(value: unknown): ErrorBody | undefined {
  if (typeof value !== 'object' || value === null) return undefined
  const error = (value as { error?: unknown }).error
  if (typeof error !== 'object' || error === null) return undefined
  const { code, message } = error as { code?: unknown; message?: unknown }
  if (typeof code !== 'string' || typeof message !== 'string') return undefined
  return errorBody(code, message)
}

/**
 * The typed error a remote Shoal service named in its error body, or an `UpstreamError`
 * when the body is not one (`prefix` says who answered, e.g. `tracker`).
 *
 * @example
 * if (res.statusCode >= 300) throw remoteError(res.statusCode, await res.body.json().catch(() => undefined), 'tracker')
 */
export function remoteError(status: number, body: unknown, prefix: string): Error {
  const parsed = parseErrorBody(body)
  if (parsed !== undefined && Object.hasOwn(ERROR_CODES, parsed.error.code)) {
    return new ShoalError(parsed.error.code as ErrorCode, `${prefix}: ${parsed.error.message}`)
  }
  return new UpstreamError(`${prefix} answered ${status}`)
}

/** Throws an `AbortError` (with the signal's reason as cause) when `signal` is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) throw new AbortError('the operation was aborted', { cause: signal.reason })
}
