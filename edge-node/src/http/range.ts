/**
 * `Range` request header parsing (RFC 9110 §14). Only single byte ranges are
 * served as 206; a multi-range request is answered with the whole representation,
 * which the RFC allows and which avoids multipart bodies on the hot path.
 */

/** A satisfiable byte range, `end` exclusive. */
export interface ByteRange {
  start: number
  end: number
}

/** What a Range header asks for, given the representation's size. */
export type RangeRequest = { kind: 'none' } | { kind: 'range'; range: ByteRange } | { kind: 'unsatisfiable' }

const DIGITS = /^\d+$/

/**
 * Parses a `Range` header for a representation of `size` bytes.
 *
 * Invalid syntax, other units and multiple ranges yield `none` (serve the whole
 * representation, as RFC 9110 lets a server ignore Range); a syntactically valid
 * single range that selects no byte yields `unsatisfiable` (416).
 *
 * @example
 * parseRange('bytes=0-99', 1000) // { kind: 'range', range: { start: 0, end: 100 } }
 * parseRange('bytes=-10', 1000)  // last 10 bytes: { start: 990, end: 1000 }
 * parseRange('bytes=2000-', 1000) // { kind: 'unsatisfiable' }
 */
export function parseRange(header: string | undefined, size: number): RangeRequest {
  if (header === undefined) return { kind: 'none' }
  const trimmed = header.trim()
  if (!trimmed.toLowerCase().startsWith('bytes=')) return { kind: 'none' }
  const spec = trimmed.slice(6).trim()
  if (spec.includes(',')) return { kind: 'none' }
  const dash = spec.indexOf('-')
  if (dash < 0) return { kind: 'none' }
  const first = spec.slice(0, dash).trim()
  const last = spec.slice(dash + 1).trim()
  if (first === '') {
    // suffix range: the last N bytes
    if (!DIGITS.test(last)) return { kind: 'none' }
    const n = Number(last)
    if (!Number.isSafeInteger(n)) return { kind: 'none' }
    if (n === 0 || size === 0) return { kind: 'unsatisfiable' }
    return { kind: 'range', range: { start: Math.max(0, size - n), end: size } }
  }
  if (!DIGITS.test(first) || (last !== '' && !DIGITS.test(last))) return { kind: 'none' }
  const start = Number(first)
  const lastByte = last === '' ? size - 1 : Number(last)
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(lastByte)) return { kind: 'none' }
  if (last !== '' && lastByte < start) return { kind: 'none' }
  if (start >= size) return { kind: 'unsatisfiable' }
  return { kind: 'range', range: { start, end: Math.min(lastByte + 1, size) } }
}

/** The `Content-Range` value for a served range. */
export function contentRange(range: ByteRange, size: number): string {
  return `bytes ${range.start}-${range.end - 1}/${size}`
}

/** The `Content-Range` value for a 416 answer. */
export function unsatisfiedRange(size: number): string {
  return `bytes */${size}`
}
