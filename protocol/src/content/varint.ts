/**
 * Unsigned LEB128 for sizes up to 2^53 − 1. Internal. Arithmetic instead of bit shifts,
 * which would truncate to 32 bits.
 */
import { InvalidCidError } from '../errors.ts'
import { MAX_CONTENT_SIZE } from './constants.ts'

/** At most 8 bytes: 8 · 7 = 56 bits ≥ 53. */
export const MAX_VARINT_LENGTH = 8

/** The minimal LEB128 encoding of a non-negative safe integer. */
export function encodeVarint(value: number): Uint8Array {
  const out: number[] = []
  let rest = value
  while (rest >= 0x80) {
    out.push((rest % 0x80) | 0x80)
    rest = Math.floor(rest / 0x80)
  }
  out.push(rest)
  return Uint8Array.from(out)
}

/** Decodes a minimal LEB128 varint at `offset`; returns the value and its length. */
export function decodeVarint(bytes: Uint8Array, offset: number): { value: number; length: number } {
  let value = 0
  let scale = 1
  for (let i = 0; i < MAX_VARINT_LENGTH; i++) {
    const byte = bytes[offset + i]
    if (byte === undefined) throw new InvalidCidError('CID is too short: the size varint is cut off')
    value += (byte & 0x7f) * scale
    if ((byte & 0x80) === 0) {
      if (byte === 0 && i > 0) throw new InvalidCidError('CID size varint is not minimally encoded')
      if (value > MAX_CONTENT_SIZE) throw new InvalidCidError('CID size is larger than 2^53 − 1')
      return { value, length: i + 1 }
    }
    scale *= 0x80
  }
  throw new InvalidCidError(`CID size varint is longer than ${MAX_VARINT_LENGTH} bytes`)
}
