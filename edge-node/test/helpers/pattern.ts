/**
 * Deterministic test bytes (xorshift32): the same `size` and `seed` give the same bytes.
 *
 * @example
 * const body = pattern(600_000, 4)
 */
export function pattern(size: number, seed = 7): Buffer {
  const out = Buffer.alloc(size)
  let x = seed
  for (let i = 0; i < size; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    out[i] = x & 0xff
  }
  return out
}
