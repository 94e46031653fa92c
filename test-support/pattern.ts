/**
 * Deterministic test bytes (xorshift32): the same `size` and `seed` give the same bytes,
 * for every package's tests.
 *
 * @example
 * const body = pattern(600_000, 4)
 */
export function pattern(size: number, seed = 7): Uint8Array {
  const out = new Uint8Array(size)
  let x = seed
  for (let i = 0; i < size; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    out[i] = x & 0xff
  }
  return out
}
