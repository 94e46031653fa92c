import { pattern as patternBytes } from '../../../test-support/pattern.ts'

/**
 * Deterministic test bytes (test-support's xorshift32 pattern) as a Buffer, without a copy.
 *
 * @example
 * const body = pattern(600_000, 4)
 */
export function pattern(size: number, seed = 7): Buffer {
  const bytes = patternBytes(size, seed)
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}
