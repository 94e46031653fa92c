import { InvalidCidError } from '../errors.ts'
import { decodeBase32, encodeBase32 } from './base32.ts'
import { copyBytes, describe, isCount } from './bytes.ts'
import { CID_TEXT_PREFIX, CID_VERSION, HASH_SIZE, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE } from './constants.ts'
import { decodeVarint, encodeVarint, MAX_VARINT_LENGTH } from './varint.ts'

/**
 * A content id: a commitment to `size` bytes cut into `chunkSize` chunks whose Merkle
 * root is `root`. `text` is its one canonical text form. Values are frozen; `root` is
 * owned by the CID and must not be written to.
 */
export type Cid = {
  readonly version: 1
  readonly chunkSize: number
  readonly size: number
  readonly root: Uint8Array
  readonly text: string
}

/**
 * Throws `InvalidCidError` when `value` is not an object: where a parsed `Cid` belongs,
 * `null`, `undefined` or a primitive is refused with a code instead of a `TypeError`
 * (the fields of an object are checked where they are used).
 */
export function assertCidObject(value: unknown): asserts value is object {
  if (typeof value !== 'object' || value === null)
    throw new InvalidCidError(`expected a parsed CID (parseCid), got ${describe(value)}`)
}

/** The fields a CID is made of. */
export type CidParts = { chunkSize: number; size: number; root: Uint8Array }

const MIN_LOG2 = Math.log2(MIN_CHUNK_SIZE)
const MAX_LOG2 = Math.log2(MAX_CHUNK_SIZE)
/** Binary CID: version, log2(chunkSize), size varint, root. */
const MAX_BINARY_LENGTH = 2 + MAX_VARINT_LENGTH + HASH_SIZE
const MAX_TEXT_LENGTH = CID_TEXT_PREFIX.length + Math.ceil((MAX_BINARY_LENGTH * 8) / 5)

/**
 * Whether `value` is an allowed chunk size: a power of two from 1 KiB to 16 MiB.
 *
 * @example
 * isValidChunkSize(262144) // true
 * isValidChunkSize(100_000) // false
 */
export function isValidChunkSize(value: unknown): value is number {
  return (
    typeof value === 'number' &&
    Number.isInteger(value) &&
    value >= MIN_CHUNK_SIZE &&
    value <= MAX_CHUNK_SIZE &&
    (value & (value - 1)) === 0
  )
}

/**
 * Builds a CID from its parts and computes its canonical text.
 * Throws `InvalidCidError` when a part is out of range.
 *
 * @example
 * const root = await hashChunk(new Uint8Array([0x63])) // one chunk: the root is its leaf
 * formatCid({ chunkSize: 262144, size: 1, root }).text
 * // 'saejacwl7zmysqljumvgcadjudd6kk4c4mshl6mtoy46y3xxrdba7q5wy'
 */
export function formatCid(parts: CidParts): Cid {
  const { chunkSize, size, root } = parts ?? ({} as Partial<CidParts>)
  if (!isValidChunkSize(chunkSize)) {
    throw new InvalidCidError(
      `chunk size must be a power of two from ${MIN_CHUNK_SIZE} to ${MAX_CHUNK_SIZE}, got ${describe(chunkSize)}`,
    )
  }
  if (!isCount(size))
    throw new InvalidCidError(`size must be an integer from 0 to 2^53 − 1, got ${describe(size)}`)
  if (!(root instanceof Uint8Array) || root.length !== HASH_SIZE) {
    throw new InvalidCidError(`root must be ${HASH_SIZE} bytes, got ${describe(root)}`)
  }
  const varint = encodeVarint(size)
  const binary = new Uint8Array(2 + varint.length + HASH_SIZE)
  binary[0] = CID_VERSION
  binary[1] = Math.log2(chunkSize)
  binary.set(varint, 2)
  binary.set(root, 2 + varint.length)
  return freeze(chunkSize, size, copyBytes(root), CID_TEXT_PREFIX + encodeBase32(binary))
}

/**
 * Parses the text form of a CID. Only the canonical text parses: anything else (wrong
 * prefix, uppercase, bad characters, non-zero trailing bits, a non-minimal size, another
 * version, a chunk size out of range, missing or trailing bytes) throws `InvalidCidError`.
 *
 * @example
 * const cid = parseCid('saejacwl7zmysqljumvgcadjudd6kk4c4mshl6mtoy46y3xxrdba7q5wy')
 * cid.size // 1
 * cid.chunkSize // 262144
 */
export function parseCid(text: string): Cid {
  if (typeof text !== 'string') throw new InvalidCidError(`a CID must be a string, got ${describe(text)}`)
  if (!text.startsWith(CID_TEXT_PREFIX)) {
    throw new InvalidCidError(`a CID starts with "${CID_TEXT_PREFIX}", got ${describe(text)}`)
  }
  // Bound the work done on hostile input before decoding anything.
  if (text.length > MAX_TEXT_LENGTH) {
    throw new InvalidCidError(`CID is too long: ${text.length} characters, at most ${MAX_TEXT_LENGTH}`)
  }
  const binary = decodeBase32(text.slice(CID_TEXT_PREFIX.length), CID_TEXT_PREFIX.length)
  if (binary.length < 2) throw new InvalidCidError('CID is too short')
  if (binary[0] !== CID_VERSION) throw new InvalidCidError(`unsupported CID version ${binary[0]}, expected 1`)
  const log2 = binary[1]!
  if (log2 < MIN_LOG2 || log2 > MAX_LOG2) {
    throw new InvalidCidError(`CID chunk size 2^${log2} is out of range 2^${MIN_LOG2}..2^${MAX_LOG2}`)
  }
  const { value: size, length } = decodeVarint(binary, 2)
  const rootStart = 2 + length
  const expected = rootStart + HASH_SIZE
  if (binary.length < expected) {
    throw new InvalidCidError(`CID is too short: ${binary.length} bytes, expected ${expected}`)
  }
  if (binary.length > expected) {
    throw new InvalidCidError(`CID has ${binary.length - expected} trailing bytes`)
  }
  return freeze(2 ** log2, size, binary.slice(rootStart), text)
}

/**
 * Whether `text` is a CID in canonical text form.
 *
 * @example
 * isCidText('hello') // false
 * isCidText('saejaa3ruboop7m32tcokkrhgxn4auldysaot7mzxhb3ikendayl27ia5') // true (empty content)
 */
export function isCidText(text: unknown): text is string {
  try {
    parseCid(text as string)
    return true
  } catch {
    return false
  }
}

function freeze(chunkSize: number, size: number, root: Uint8Array, text: string): Cid {
  return Object.freeze({ version: CID_VERSION, chunkSize, size, root, text })
}
