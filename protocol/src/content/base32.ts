/**
 * Strict lowercase RFC 4648 base32 (alphabet a–z 2–7) without padding. Internal: only
 * CIDs use it. Decoding refuses anything that is not the one canonical encoding.
 */
import { InvalidCidError } from '../errors.ts'

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567'
const VALUES = new Int8Array(128).fill(-1)
for (let i = 0; i < ALPHABET.length; i++) VALUES[ALPHABET.charCodeAt(i)] = i

/** Encodes bytes as unpadded lowercase base32. */
export function encodeBase32(bytes: Uint8Array): string {
  let out = ''
  let buffer = 0
  let bits = 0
  for (const byte of bytes) {
    buffer = ((buffer << 8) | byte) & 0xfff
    bits += 8
    while (bits >= 5) {
      bits -= 5
      out += ALPHABET[(buffer >>> bits) & 31]
    }
  }
  if (bits > 0) out += ALPHABET[(buffer << (5 - bits)) & 31]
  return out
}

/**
 * Decodes unpadded lowercase base32; `offset` is where `text` sits in the full CID text,
 * so messages point at the right character.
 */
export function decodeBase32(text: string, offset: number): Uint8Array {
  // 5·length mod 8 is the number of bits left over after the last whole byte; 5 or more
  // means a length no byte string encodes to (1, 3 or 6 characters past a multiple of 8).
  const leftover = (text.length * 5) % 8
  if (leftover >= 5) throw new InvalidCidError(`invalid CID length: ${text.length + offset} characters`)
  const out = new Uint8Array((text.length * 5) >>> 3)
  let buffer = 0
  let bits = 0
  let j = 0
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    const value = code < 128 ? VALUES[code]! : -1
    if (value < 0) {
      const char = text[i]!
      const hint = char >= 'A' && char <= 'Z' ? ' (CIDs are lowercase)' : ''
      throw new InvalidCidError(`invalid character ${JSON.stringify(char)} at position ${i + offset}${hint}`)
    }
    buffer = ((buffer << 5) | value) & 0xfff
    bits += 5
    if (bits >= 8) {
      bits -= 8
      out[j++] = (buffer >>> bits) & 0xff
    }
  }
  if ((buffer & ((1 << bits) - 1)) !== 0) {
    throw new InvalidCidError('non-zero trailing bits in the last CID character (not canonical)')
  }
  return out
}
