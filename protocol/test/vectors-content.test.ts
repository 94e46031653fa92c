import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import {
  computeCid,
  createProof,
  decodeProof,
  encodeProof,
  parseCid,
  verifyLeaves,
  verifyProof,
} from '../src/index.ts'
import vectorsFile from '../test-vectors/content.json' with { type: 'json' }

interface Vector {
  name: string
  input: { pattern: string; seed: number; length: number }
  inputHead: string
  inputSha256: string
  chunkSize: number
  size: number
  cid: string
  cidBinary: string
  root: string
  leaves: string[]
  proofs: { index: number; leaf: string; proof: string[] }[]
}

const file = vectorsFile as { pattern: { name: string; seed: number }; vectors: Vector[] }

/** The documented recipe, written again from the spec rather than imported. */
function xorshift32(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length)
  let x = seed >>> 0
  for (let at = 0; at < length; at += 4) {
    x = (x ^ (x << 13)) >>> 0
    x = (x ^ (x >>> 17)) >>> 0
    x = (x ^ (x << 5)) >>> 0
    for (let k = 0; k < 4 && at + k < length; k++) out[at + k] = (x >>> (8 * k)) & 0xff
  }
  return out
}

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex')
const unhex = (text: string) => new Uint8Array(Buffer.from(text, 'hex'))

describe('content test vectors', () => {
  it('cover the cases the spec lists', () => {
    expect(file.pattern).toMatchObject({ name: 'xorshift32', seed: 2463534242 })
    const lengths = file.vectors.map((v) => v.input.length)
    expect(lengths).toEqual(expect.arrayContaining([0, 1, 262144, 262145, 10 * 2 ** 20]))
    expect(file.vectors.some((v) => v.proofs.some((p) => p.proof.length > 0))).toBe(true)
  })

  for (const vector of file.vectors) {
    it(`recomputes "${vector.name}"`, async () => {
      expect(vector.input.pattern).toBe('xorshift32')
      const input = xorshift32(vector.input.length, vector.input.seed)
      expect(hex(input.subarray(0, 16))).toBe(vector.inputHead)
      expect(createHash('sha256').update(input).digest('hex')).toBe(vector.inputSha256)

      const { cid, leaves } = await computeCid(input, { chunkSize: vector.chunkSize })
      expect(cid.text).toBe(vector.cid)
      expect(cid.size).toBe(vector.size)
      expect(hex(cid.root)).toBe(vector.root)
      expect(hex(leaves)).toBe(vector.leaves.join(''))

      // The text form is "s" + base32 of the binary form.
      const parsed = parseCid(vector.cid)
      expect(parsed).toEqual(cid)
      const binary = unhex(vector.cidBinary)
      expect(binary[0]).toBe(1)
      expect(2 ** binary[1]!).toBe(vector.chunkSize)
      expect(hex(binary.subarray(binary.length - 32))).toBe(vector.root)
      expect(base32(binary)).toBe(vector.cid.slice(1))

      await verifyLeaves(parsed, unhex(vector.leaves.join('')))
      for (const { index, leaf, proof } of vector.proofs) {
        expect(createProof(leaves, index).map(hex)).toEqual(proof)
        expect(leaf).toBe(vector.leaves[index])
        const decoded = decodeProof(unhex(proof.join('')))
        expect(encodeProof(decoded)).toEqual(unhex(proof.join('')))
        await verifyProof(parsed, index, unhex(leaf), decoded)
      }
    })
  }
})

/** RFC 4648 base32, lowercase, unpadded, written out independently of the library. */
function base32(bytes: Uint8Array): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567'
  let bits = ''
  for (const b of bytes) bits += b.toString(2).padStart(8, '0')
  bits = bits.padEnd(Math.ceil(bits.length / 5) * 5, '0')
  let out = ''
  for (let i = 0; i < bits.length; i += 5) out += alphabet[Number.parseInt(bits.slice(i, i + 5), 2)]
  return out
}
