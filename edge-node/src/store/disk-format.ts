/**
 * On-disk layout of the disk tier. Internal.
 *
 * ```
 * <dir>/<h0h1>/<hash>.meta           header: version, key, size, body SHA-256, body id, durable flag, metadata
 *                                    (format 2: followed by the body itself; no .body file then)
 * <dir>/<h0h1>/<hash>.<id>.body      the body bytes, nothing else
 * <dir>/<h0h1>/<hash>.<rand>.tmp     a write in progress (deleted at start)
 * <dir>/index.bin                    index snapshot (keys, bodies, sizes, access times, verified
 *                                    flags), written by a clean close()
 * <dir>/dirty                        present while the tier runs: found at start, it marks a crash
 * ```
 * `hash` is the SHA-256 of the key (hex); `h0h1` its first byte, fanning files out
 * over 256 directories. A body file never changes once renamed into place: a new
 * body for the key gets a new random `id`, and the header names the body it goes
 * with. So replacing the header by rename switches body and metadata atomically, a
 * reader holding the old body keeps reading consistent bytes, and metadata can be
 * rewritten (after a 304) without touching a 2 GiB body.
 *
 * A header file is one line `SHOAL-STORE <version> <sha256 of the JSON>` followed by
 * the JSON record; a torn or edited header fails its checksum and is deleted.
 */
import { createHash, randomBytes } from 'node:crypto'
import { join } from 'node:path'
import type { StoreMeta } from './types.ts'
import { deepFreeze, sha256Hex } from './util.ts'

export const FORMAT_VERSION = 1
/** Headers that carry their body inline (small objects: one file per object). */
export const INLINE_FORMAT_VERSION = 2
const MAGIC = 'SHOAL-STORE'
const HASH_RE = /^[0-9a-f]{64}$/
const BODY_ID_RE = /^[0-9a-f]{16}$/

export const FANOUT_DIR_RE = /^[0-9a-f]{2}$/
export const META_FILE_RE = /^([0-9a-f]{64})\.meta$/
export const BODY_FILE_RE = /^([0-9a-f]{64})\.([0-9a-f]{16})\.body$/
export const TEMP_FILE_RE = /\.tmp$/
export const INDEX_FILE = 'index.bin'
export const DIRTY_FILE = 'dirty'

/** The header of one entry. */
export interface MetaRecord {
  v: typeof FORMAT_VERSION | typeof INLINE_FORMAT_VERSION
  key: string
  /** Body length in bytes. */
  size: number
  /** Body SHA-256, hex. */
  sha256: string
  /** Id of the body file this header goes with. */
  body: string
  /** The body was fsynced before this header was renamed into place. */
  durable: boolean
  meta: StoreMeta
  /**
   * The body itself, when the header file carries it (format 2): a view into the bytes
   * the header was decoded from, whose length the decoder checked against `size`.
   */
  inline?: Buffer
}

export const keyHash = (key: string): string => sha256Hex(key)
/**
 * A new body id: 16 hex digits, a random 32-bit prefix drawn once per process and a
 * counter, so ids never repeat within a run and almost never across runs (a body file is
 * created with O_EXCL: a repeat fails that write, it never overwrites).
 */
export const newBodyId = (() => {
  let prefix = ''
  let counter = 0
  return (): string => {
    if (prefix === '' || counter >= 0xffffffff) {
      prefix = randomBytes(4).toString('hex')
      counter = 0
    }
    counter++
    return prefix + counter.toString(16).padStart(8, '0')
  }
})()
export const fanoutDir = (root: string, hash: string): string => join(root, hash.slice(0, 2))
export const metaPath = (root: string, hash: string): string => join(root, hash.slice(0, 2), `${hash}.meta`)
export const bodyPath = (root: string, hash: string, id: string): string =>
  join(root, hash.slice(0, 2), `${hash}.${id}.body`)
export const tempPath = (root: string, hash: string): string =>
  join(root, hash.slice(0, 2), `${hash}.${randomBytes(6).toString('hex')}.tmp`)

/**
 * Encodes a header file. `metaText` is the metadata's JSON text (already normalised).
 * With `inline`, the body follows the JSON in the same file (format 2, whose first line
 * also gives the JSON's length): `SHOAL-STORE 2 <sha256 of the JSON> <JSON bytes>`.
 */
export function encodeMetaFile(
  record: Omit<MetaRecord, 'meta' | 'v' | 'inline'>,
  metaText: string,
  inline?: Uint8Array,
): Buffer {
  const version = inline === undefined ? FORMAT_VERSION : INLINE_FORMAT_VERSION
  const json = `{"v":${version},"key":${JSON.stringify(record.key)},"size":${record.size},"sha256":"${record.sha256}","body":"${record.body}","durable":${record.durable},"meta":${metaText}}`
  if (inline === undefined) return Buffer.from(`${MAGIC} ${version} ${sha256Hex(json)}\n${json}`)
  const jsonBytes = Buffer.byteLength(json)
  const line = `${MAGIC} ${version} ${sha256Hex(json)} ${jsonBytes}\n`
  const lineBytes = Buffer.byteLength(line)
  const out = Buffer.allocUnsafe(lineBytes + jsonBytes + inline.byteLength)
  out.write(line, 0, 'latin1')
  out.write(json, lineBytes, 'utf8')
  out.set(inline, lineBytes + jsonBytes)
  return out
}

/** Decodes a header file; a string says why it is refused. */
export function decodeMetaFile(bytes: Buffer): MetaRecord | string {
  const newline = bytes.indexOf(10)
  if (newline < 0 || newline > 200) return 'no header line'
  const [magic, version, digest, jsonLength] = bytes.subarray(0, newline).toString('latin1').split(' ')
  if (magic !== MAGIC) return 'not a store header'
  const v = Number(version)
  if (v !== FORMAT_VERSION && v !== INLINE_FORMAT_VERSION) return `unsupported format version ${version}`
  let json = bytes.subarray(newline + 1)
  let inline: Buffer | undefined
  if (v === INLINE_FORMAT_VERSION) {
    const n = Number(jsonLength)
    if (!Number.isSafeInteger(n) || n <= 0 || n > json.length) return 'bad JSON length'
    inline = json.subarray(n)
    json = json.subarray(0, n)
  }
  if (digest !== sha256Hex(json)) return 'header checksum mismatch'
  let value: unknown
  try {
    value = JSON.parse(json.toString('utf8'))
  } catch {
    return 'header is not JSON'
  }
  if (value === null || typeof value !== 'object') return 'header is not an object'
  const r = value as Record<string, unknown>
  if (r.v !== v) return 'header version mismatch'
  if (typeof r.key !== 'string' || r.key.length === 0) return 'bad key'
  if (typeof r.size !== 'number' || !Number.isSafeInteger(r.size) || r.size < 0) return 'bad size'
  if (typeof r.sha256 !== 'string' || !HASH_RE.test(r.sha256)) return 'bad sha256'
  if (typeof r.body !== 'string' || !BODY_ID_RE.test(r.body)) return 'bad body id'
  if (typeof r.durable !== 'boolean') return 'bad durable flag'
  if (r.meta === null || typeof r.meta !== 'object' || Array.isArray(r.meta)) return 'bad meta'
  // A torn inline file is cut short: its body is not the length the header says.
  if (inline !== undefined && inline.length !== r.size)
    return `inline body is ${inline.length} bytes, not ${r.size}`
  const record: MetaRecord = {
    v,
    key: r.key,
    size: r.size,
    sha256: r.sha256,
    body: r.body,
    durable: r.durable,
    meta: deepFreeze(r.meta as StoreMeta),
  }
  if (inline !== undefined) record.inline = inline
  return record
}

const INDEX_MAGIC = 0x53484958 // 'SHIX'
const INDEX_VERSION = 1
/** Fixed part of a record: hash 32, body id 8, size 8, header bytes 4, atime 8, flags 1, key length 4. */
const INDEX_RECORD_FIXED = 65
const INDEX_CHUNK = 1024 * 1024

/** What `index.bin` keeps per entry across a clean restart. */
export interface SnapshotRecord {
  hash: string
  key: string
  bodyId: string
  size: number
  metaBytes: number
  atime: number
  /** The body is known to be on disk as it was hashed (fsynced, or checked since). */
  verified: boolean
  durable: boolean
  /** The body is inside the header file (`metaBytes` is then the whole file). */
  inline: boolean
}

/**
 * Encodes the index snapshot in pieces of about 1 MiB (a large index is never one
 * buffer): a header, the records, and a SHA-256 of everything before it.
 */
export function* encodeIndexFile(entries: Iterable<SnapshotRecord>, count: number): Generator<Buffer> {
  const hasher = createHash('sha256')
  const emit = (piece: Buffer): Buffer => {
    hasher.update(piece)
    return piece
  }
  const head = Buffer.allocUnsafe(12)
  head.writeUInt32BE(INDEX_MAGIC, 0)
  head.writeUInt32BE(INDEX_VERSION, 4)
  head.writeUInt32BE(count, 8)
  yield emit(head)
  let chunk = Buffer.allocUnsafe(INDEX_CHUNK)
  let at = 0
  for (const e of entries) {
    const keyBytes = Buffer.byteLength(e.key)
    const need = INDEX_RECORD_FIXED + keyBytes
    if (at + need > chunk.length) {
      if (at > 0) yield emit(chunk.subarray(0, at))
      chunk = Buffer.allocUnsafe(Math.max(INDEX_CHUNK, need))
      at = 0
    }
    chunk.write(e.hash, at, 32, 'hex')
    chunk.write(e.bodyId, at + 32, 8, 'hex')
    chunk.writeDoubleBE(e.size, at + 40)
    chunk.writeUInt32BE(e.metaBytes, at + 48)
    chunk.writeDoubleBE(e.atime, at + 52)
    chunk.writeUInt8((e.verified ? 1 : 0) | (e.durable ? 2 : 0) | (e.inline ? 4 : 0), at + 60)
    chunk.writeUInt32BE(keyBytes, at + 61)
    chunk.write(e.key, at + INDEX_RECORD_FIXED, keyBytes, 'utf8')
    at += need
  }
  if (at > 0) yield emit(chunk.subarray(0, at))
  yield hasher.digest()
}

/** Decodes the index snapshot by key hash; `undefined` when the file is not valid. */
export function decodeIndexFile(bytes: Buffer): Map<string, SnapshotRecord> | undefined {
  if (bytes.length < 44) return undefined
  if (bytes.readUInt32BE(0) !== INDEX_MAGIC || bytes.readUInt32BE(4) !== INDEX_VERSION) return undefined
  const end = bytes.length - 32
  if (!createHash('sha256').update(bytes.subarray(0, end)).digest().equals(bytes.subarray(end)))
    return undefined
  const count = bytes.readUInt32BE(8)
  const records = new Map<string, SnapshotRecord>()
  let at = 12
  for (let i = 0; i < count; i++) {
    if (at + INDEX_RECORD_FIXED > end) return undefined
    const keyBytes = bytes.readUInt32BE(at + 61)
    if (at + INDEX_RECORD_FIXED + keyBytes > end) return undefined
    const flags = bytes.readUInt8(at + 60)
    const record: SnapshotRecord = {
      hash: bytes.toString('hex', at, at + 32),
      bodyId: bytes.toString('hex', at + 32, at + 40),
      size: bytes.readDoubleBE(at + 40),
      metaBytes: bytes.readUInt32BE(at + 48),
      atime: bytes.readDoubleBE(at + 52),
      verified: (flags & 1) === 1,
      durable: (flags & 2) === 2,
      inline: (flags & 4) === 4,
      key: bytes.toString('utf8', at + INDEX_RECORD_FIXED, at + INDEX_RECORD_FIXED + keyBytes),
    }
    if (!Number.isSafeInteger(record.size) || record.size < 0) return undefined
    records.set(record.hash, record)
    at += INDEX_RECORD_FIXED + keyBytes
  }
  return at === end ? records : undefined
}
