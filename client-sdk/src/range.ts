/**
 * The `Range` header of a request, as one byte span of an object of known size. A header
 * that is not a single `bytes` range is ignored (RFC 9110 §14.2: a recipient may ignore
 * Range); a range outside the object is `RangeNotSatisfiableError`.
 */
import { RangeNotSatisfiableError } from '@shoal/protocol'

const RANGE_RE = /^bytes=(\d*)-(\d*)$/

/**
 * `[start, end)` to serve, or `undefined` for the whole object.
 *
 * @example
 * parseRange('bytes=0-99', 1000)  // { start: 0, end: 100 }
 * parseRange('bytes=-100', 1000)  // { start: 900, end: 1000 }
 * parseRange('bytes=990-', 1000)  // { start: 990, end: 1000 }
 */
export function parseRange(header: string | null, size: number): { start: number; end: number } | undefined {
  if (header === null) return undefined
  const m = RANGE_RE.exec(header.trim())
  if (m === null || (m[1] === '' && m[2] === '')) return undefined
  const unsatisfiable = () =>
    new RangeNotSatisfiableError(`range ${header} is outside the ${size} bytes of the object`)
  if (m[1] === '') {
    const suffix = Number(m[2])
    if (!Number.isSafeInteger(suffix)) return undefined
    if (suffix === 0 || size === 0) throw unsatisfiable()
    return { start: Math.max(0, size - suffix), end: size }
  }
  const start = Number(m[1])
  const last = m[2] === '' ? size - 1 : Number(m[2])
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(last)) return undefined
  if (start >= size) throw unsatisfiable()
  if (last < start) return undefined
  return { start, end: Math.min(size, last + 1) }
}
