/** Internal byte helpers; not exported from the package. */
import { HASH_SIZE } from './constants.ts'

/** Whether `a[aOffset..+32]` equals `b[bOffset..+32]`. */
export function equalHash(a: Uint8Array, aOffset: number, b: Uint8Array, bOffset: number): boolean {
  for (let i = 0; i < HASH_SIZE; i++) {
    if (a[aOffset + i] !== b[bOffset + i]) return false
  }
  return true
}

/**
 * A copy of `bytes[start, end)` as a plain Uint8Array. Not `bytes.slice()`: on a Node
 * Buffer that returns a view sharing memory with the caller's buffer.
 */
export function copyBytes(bytes: Uint8Array, start = 0, end = bytes.length): Uint8Array {
  return new Uint8Array(bytes.subarray(start, end))
}

/** Whether `value` is a non-negative safe integer. */
export function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0
}

/** A short printable description of an unexpected value for error messages. */
export function describe(value: unknown): string {
  if (value === null) return 'null'
  if (value instanceof Uint8Array) return `${value.length} bytes`
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)
  if (typeof value === 'object') return Object.prototype.toString.call(value)
  return String(value)
}
