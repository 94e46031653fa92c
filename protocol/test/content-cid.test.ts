import { describe, expect, it } from 'vitest'
import { encodeBase32 } from '../src/content/base32.ts'
import {
  alignRange,
  type Cid,
  chunkCount,
  chunkSpan,
  DEFAULT_CHUNK_SIZE,
  formatCid,
  isCidText,
  isValidChunkSize,
  MAX_CHUNK_SIZE,
  MAX_CONTENT_SIZE,
  MIN_CHUNK_SIZE,
  parseCid,
} from '../src/index.ts'

const root = Uint8Array.from({ length: 32 }, (_, i) => i * 7 + 1)

/** The code of what `fn` throws; fails the test when it does not throw. */
function codeOf(fn: () => unknown): string {
  try {
    fn()
  } catch (error) {
    return (error as { code?: string }).code ?? `not a Shoal error: ${String(error)}`
  }
  throw new Error('expected a throw')
}

function messageOf(fn: () => unknown): string {
  try {
    fn()
  } catch (error) {
    return (error as Error).message
  }
  throw new Error('expected a throw')
}

/** A CID text from raw binary, bypassing formatCid's checks. */
function textOf(bytes: number[]): string {
  return `s${encodeBase32(Uint8Array.from(bytes))}`
}

const binary = (size: number[], log2 = 18, version = 1) => [version, log2, ...size, ...root]

describe('formatCid / parseCid', () => {
  it('formats the binary layout: version, log2 chunk size, LEB128 size, root', () => {
    const cid = formatCid({ chunkSize: DEFAULT_CHUNK_SIZE, size: 300, root })
    expect(cid.text).toBe(textOf(binary([0xac, 0x02])))
    expect(cid).toMatchObject({ version: 1, chunkSize: DEFAULT_CHUNK_SIZE, size: 300 })
    expect(cid.root).toEqual(root)
    expect(Object.isFrozen(cid)).toBe(true)
  })

  it('copies the root so later writes to the input do not change the CID', () => {
    const input = root.slice()
    const cid = formatCid({ chunkSize: 1024, size: 0, root: input })
    input[0] = 0xff
    expect(cid.root[0]).toBe(root[0])
  })

  it('round-trips every chunk size and sizes at varint boundaries up to 2^53 − 1', () => {
    const sizes = [0, 1, 127, 128, 16383, 16384, 2 ** 32, 2 ** 49 - 1, 2 ** 49, MAX_CONTENT_SIZE]
    for (let log2 = 10; log2 <= 24; log2++) {
      for (const size of sizes) {
        const cid = formatCid({ chunkSize: 2 ** log2, size, root })
        expect(cid.text).toMatch(/^s[a-z2-7]+$/)
        const parsed = parseCid(cid.text)
        expect(parsed).toEqual(cid)
      }
    }
  })

  it('uses lowercase, URL- and DNS-label-safe text', () => {
    const { text } = formatCid({ chunkSize: DEFAULT_CHUNK_SIZE, size: 10 * 2 ** 20, root })
    expect(text).toMatch(/^[a-z0-9]+$/)
    expect(text.length).toBeLessThanOrEqual(63)
    expect(encodeURIComponent(text)).toBe(text)
    // One DNS label (≤ 63 characters) up to 256 MiB − 1; larger sizes take a 5-byte varint.
    expect(formatCid({ chunkSize: 1024, size: 2 ** 28 - 1, root }).text).toHaveLength(62)
    expect(formatCid({ chunkSize: 1024, size: 2 ** 28, root }).text).toHaveLength(64)
    expect(formatCid({ chunkSize: 1024, size: MAX_CONTENT_SIZE, root }).text).toHaveLength(69)
    expect(formatCid({ chunkSize: 1024, size: 0, root }).text).toHaveLength(57)
  })

  it('refuses parts out of range with InvalidCidError', () => {
    const bad = [
      { chunkSize: 1000, size: 1, root },
      { chunkSize: 512, size: 1, root },
      { chunkSize: MAX_CHUNK_SIZE * 2, size: 1, root },
      { chunkSize: 1024.5, size: 1, root },
      { chunkSize: Number.NaN, size: 1, root },
      { chunkSize: 1024, size: -1, root },
      { chunkSize: 1024, size: 1.5, root },
      { chunkSize: 1024, size: MAX_CONTENT_SIZE + 1, root },
      { chunkSize: 1024, size: 1, root: root.subarray(1) },
      { chunkSize: 1024, size: 1, root: [...root] as unknown as Uint8Array },
    ]
    for (const parts of bad) expect(codeOf(() => formatCid(parts))).toBe('SHOAL_ERR_INVALID_CID')
    expect(codeOf(() => formatCid(undefined as never))).toBe('SHOAL_ERR_INVALID_CID')
  })

  const valid = formatCid({ chunkSize: DEFAULT_CHUNK_SIZE, size: 300, root }).text
  const malformed: [string, string, RegExp][] = [
    ['empty string', '', /starts with "s"/],
    ['wrong prefix', `b${valid.slice(1)}`, /starts with "s"/],
    ['uppercase prefix', `S${valid.slice(1)}`, /starts with "s"/],
    ['uppercase', valid.toUpperCase().replace(/^S/, 's'), /lowercase/],
    ['one uppercase letter', `${valid.slice(0, 5)}${valid[5]!.toUpperCase()}${valid.slice(6)}`, /position 5/],
    ['digit 1 (not in the alphabet)', `${valid.slice(0, -2)}1${valid.slice(-1)}`, /invalid character "1"/],
    ['digit 0', `${valid.slice(0, 3)}0${valid.slice(4)}`, /invalid character "0"/],
    ['padding', `${valid}=`, /invalid character "="|length/],
    ['whitespace', ` ${valid}`, /starts with "s"/],
    ['trailing newline', `${valid}\n`, /invalid character|length/],
    ['non-ASCII', `${valid.slice(0, 3)}é${valid.slice(4)}`, /invalid character "é"/],
    ['impossible base32 length', `${valid}a`, /length/],
    ['non-zero trailing bits', `${valid.slice(0, -1)}${valid.endsWith('a') ? 'b' : 'z'}`, /trailing bits/],
    ['version 2', textOf(binary([1], 18, 2)), /version 2/],
    ['version 0', textOf(binary([1], 18, 0)), /version 0/],
    ['chunk size 2^9', textOf(binary([1], 9)), /out of range/],
    ['chunk size 2^25', textOf(binary([1], 25)), /out of range/],
    ['non-minimal varint 0x81 0x00', textOf(binary([0x81, 0x00])), /minimal/],
    ['non-minimal varint for zero', textOf(binary([0x80, 0x00])), /minimal/],
    ['varint over 8 bytes', textOf([1, 18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), /longer/],
    [
      'varint over 8 bytes and a root',
      textOf(binary([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])),
      /too long/,
    ],
    ['size 2^53', textOf(binary([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10])), /2\^53/],
    ['root one byte short', textOf(binary([1]).slice(0, -1)), /too short/],
    ['varint cut off', textOf([1, 18, 0x80]), /cut off/],
    ['only a version', textOf([1]), /too short/],
    ['one trailing byte', textOf([...binary([1]), 0]), /trailing bytes/],
    ['two CIDs glued', textOf([...binary([1]), ...binary([1])]), /too long|trailing/],
    ['far too long', `s${'a'.repeat(5000)}`, /too long/],
  ]
  for (const [what, text, message] of malformed) {
    it(`refuses a CID with ${what}`, () => {
      expect(codeOf(() => parseCid(text))).toBe('SHOAL_ERR_INVALID_CID')
      expect(messageOf(() => parseCid(text))).toMatch(message)
      expect(isCidText(text)).toBe(false)
    })
  }

  it('refuses values that are not strings', () => {
    for (const value of [undefined, null, 42, root, { text: valid }]) {
      expect(codeOf(() => parseCid(value as never))).toBe('SHOAL_ERR_INVALID_CID')
      expect(isCidText(value)).toBe(false)
    }
  })

  it('accepts exactly the canonical text', () => {
    expect(isCidText(valid)).toBe(true)
    expect(parseCid(valid).text).toBe(valid)
  })
})

describe('isValidChunkSize', () => {
  it('accepts powers of two from 1 KiB to 16 MiB only', () => {
    expect([MIN_CHUNK_SIZE, DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE].every(isValidChunkSize)).toBe(true)
    expect(
      [0, 512, 1023, 1025, 3072, MAX_CHUNK_SIZE * 2, -1024, '1024', Number.NaN].some(isValidChunkSize),
    ).toBe(false)
  })
})

const cidOf = (size: number, chunkSize = 1024): Cid => formatCid({ chunkSize, size, root })

describe('chunkCount / chunkSpan', () => {
  it('counts max(1, ceil(size / chunkSize)) chunks', () => {
    expect(chunkCount(cidOf(0))).toBe(1)
    expect(chunkCount(cidOf(1))).toBe(1)
    expect(chunkCount(cidOf(1024))).toBe(1)
    expect(chunkCount(cidOf(1025))).toBe(2)
    expect(chunkCount(cidOf(10 * 2 ** 20, DEFAULT_CHUNK_SIZE))).toBe(40)
    expect(chunkCount(cidOf(MAX_CONTENT_SIZE))).toBe(2 ** 43)
  })

  it('gives each chunk its span, the last one short', () => {
    const cid = cidOf(2500)
    expect(chunkSpan(cid, 0)).toEqual({ start: 0, end: 1024 })
    expect(chunkSpan(cid, 1)).toEqual({ start: 1024, end: 2048 })
    expect(chunkSpan(cid, 2)).toEqual({ start: 2048, end: 2500 })
    expect(chunkSpan(cidOf(0), 0)).toEqual({ start: 0, end: 0 })
  })

  it('refuses chunk indexes outside the object', () => {
    for (const index of [3, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '1']) {
      expect(codeOf(() => chunkSpan(cidOf(2500), index as number))).toBe('SHOAL_ERR_INVALID_ARGUMENT')
    }
  })
})

describe('alignRange', () => {
  const cid = cidOf(2500)

  it('widens a range to whole chunks', () => {
    expect(alignRange(cid, 0, 2500)).toEqual({ fetchStart: 0, fetchEnd: 2500, firstChunk: 0, lastChunk: 2 })
    expect(alignRange(cid, 1000, 1030)).toEqual({
      fetchStart: 0,
      fetchEnd: 2048,
      firstChunk: 0,
      lastChunk: 1,
    })
    expect(alignRange(cid, 1024, 2048)).toEqual({
      fetchStart: 1024,
      fetchEnd: 2048,
      firstChunk: 1,
      lastChunk: 1,
    })
    expect(alignRange(cid, 2048, 2049)).toEqual({
      fetchStart: 2048,
      fetchEnd: 2500,
      firstChunk: 2,
      lastChunk: 2,
    })
    expect(alignRange(cid, 2499, 2500)).toEqual({
      fetchStart: 2048,
      fetchEnd: 2500,
      firstChunk: 2,
      lastChunk: 2,
    })
    expect(alignRange(cid, 1023, 1025)).toEqual({
      fetchStart: 0,
      fetchEnd: 2048,
      firstChunk: 0,
      lastChunk: 1,
    })
  })

  it('refuses empty, reversed and out-of-object ranges with RangeNotSatisfiableError', () => {
    for (const [start, end] of [
      [0, 0],
      [5, 5],
      [6, 5],
      [0, 2501],
      [2500, 2501],
      [2500, 2500],
    ] as const) {
      expect(codeOf(() => alignRange(cid, start, end))).toBe('SHOAL_ERR_RANGE_NOT_SATISFIABLE')
    }
  })

  it('refuses bounds that are not integers ≥ 0 with InvalidArgumentError', () => {
    for (const [start, end] of [
      [-1, 5],
      [0, -1],
      [0.5, 5],
      [0, Number.NaN],
      [0, Number.POSITIVE_INFINITY],
      ['0', 5],
    ]) {
      expect(codeOf(() => alignRange(cid, start as number, end as number))).toBe('SHOAL_ERR_INVALID_ARGUMENT')
    }
  })

  it('aligns [0, 0) of the empty object to its one empty chunk and refuses anything else', () => {
    const empty = cidOf(0)
    expect(alignRange(empty, 0, 0)).toEqual({ fetchStart: 0, fetchEnd: 0, firstChunk: 0, lastChunk: 0 })
    expect(codeOf(() => alignRange(empty, 0, 1))).toBe('SHOAL_ERR_RANGE_NOT_SATISFIABLE')
    expect(codeOf(() => alignRange(empty, 1, 1))).toBe('SHOAL_ERR_RANGE_NOT_SATISFIABLE')
  })
})
