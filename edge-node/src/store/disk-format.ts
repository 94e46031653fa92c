/**
 * On-disk layout of the disk tier. Internal.
 *
 * ```
 * <dir>/<h0h1>/<hash>.meta           header: version, key, size, body SHA-256, body id, durable flag, metadata
 * <dir>/<h0h1>/<hash>.<id>.body      the body bytes, nothing else
 * <dir>/<h0h1>/<hash>.<rand>.tmp     a write in progress (deleted at start)
 * <dir>/access.bin                   last-access times and verified flags, written by close()
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
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import type { StoreMeta } from './types.ts'
import { deepFreeze, sha256Hex } from './util.ts'

export const FORMAT_VERSION = 1
const MAGIC = 'SHOAL-STORE'
const HASH_RE = /^[0-9a-f]{64}$/
const BODY_ID_RE = /^[0-9a-f]{16}$/

export const FANOUT_DIR_RE = /^[0-9a-f]{2}$/
export const META_FILE_RE = /^([0-9a-f]{64})\.meta$/
export const BODY_FILE_RE = /^([0-9a-f]{64})\.([0-9a-f]{16})\.body$/
export const TEMP_FILE_RE = /\.tmp$/
export const ACCESS_FILE = 'access.bin'
export const DIRTY_FILE = 'dirty'

/** The header of one entry. */
export interface MetaRecord {
  v: typeof FORMAT_VERSION
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
}

export const keyHash = (key: string): string => sha256Hex(key)
export const newBodyId = (): string => randomBytes(8).toString('hex')
export const fanoutDir = (root: string, hash: string): string => join(root, hash.slice(0, 2))
export const metaPath = (root: string, hash: string): string => join(root, hash.slice(0, 2), `${hash}.meta`)
export const bodyPath = (root: string, hash: string, id: string): string =>
  join(root, hash.slice(0, 2), `${hash}.${id}.body`)
export const tempPath = (root: string, hash: string): string =>
  join(root, hash.slice(0, 2), `${hash}.${randomBytes(6).toString('hex')}.tmp`)

/** Encodes a header file. `metaText` is the metadata's JSON text (already normalised). */
export function encodeMetaFile(record: Omit<MetaRecord, 'meta' | 'v'>, metaText: string): Buffer {
  const json = `{"v":${FORMAT_VERSION},"key":${JSON.stringify(record.key)},"size":${record.size},"sha256":"${record.sha256}","body":"${record.body}","durable":${record.durable},"meta":${metaText}}`
  return Buffer.from(`${MAGIC} ${FORMAT_VERSION} ${sha256Hex(json)}\n${json}`)
}

/** Decodes a header file; a string says why it is refused. */
export function decodeMetaFile(bytes: Buffer): MetaRecord | string {
  const newline = bytes.indexOf(10)
  if (newline < 0 || newline > 200) return 'no header line'
  const [magic, version, digest] = bytes.subarray(0, newline).toString('latin1').split(' ')
  if (magic !== MAGIC) return 'not a store header'
  if (version !== String(FORMAT_VERSION)) return `unsupported format version ${version}`
  const json = bytes.subarray(newline + 1)
  if (digest !== sha256Hex(json)) return 'header checksum mismatch'
  let value: unknown
  try {
    value = JSON.parse(json.toString('utf8'))
  } catch {
    return 'header is not JSON'
  }
  if (value === null || typeof value !== 'object') return 'header is not an object'
  const r = value as Record<string, unknown>
  if (r.v !== FORMAT_VERSION) return 'header version mismatch'
  if (typeof r.key !== 'string' || r.key.length === 0) return 'bad key'
  if (typeof r.size !== 'number' || !Number.isSafeInteger(r.size) || r.size < 0) return 'bad size'
  if (typeof r.sha256 !== 'string' || !HASH_RE.test(r.sha256)) return 'bad sha256'
  if (typeof r.body !== 'string' || !BODY_ID_RE.test(r.body)) return 'bad body id'
  if (typeof r.durable !== 'boolean') return 'bad durable flag'
  if (r.meta === null || typeof r.meta !== 'object' || Array.isArray(r.meta)) return 'bad meta'
  return {
    v: FORMAT_VERSION,
    key: r.key,
    size: r.size,
    sha256: r.sha256,
    body: r.body,
    durable: r.durable,
    meta: deepFreeze(r.meta as StoreMeta),
  }
}

const ACCESS_MAGIC = 0x53484143 // 'SHAC'
const ACCESS_VERSION = 1
const ACCESS_RECORD = 41 // 32-byte key hash, float64 time, flags (bit 0: body verified)

/** What `access.bin` keeps per entry across a clean restart. */
export interface AccessRecord {
  atime: number
  /** The body is known to be on disk as it was hashed (fsynced, or checked since). */
  verified: boolean
}

/** Encodes last-access times and flags: header, records, and a SHA-256 of all that. */
export function encodeAccessFile(
  entries: Iterable<{ hash: string; atime: number; verified: boolean }>,
  count: number,
): Buffer {
  const out = Buffer.allocUnsafe(12 + count * ACCESS_RECORD + 32)
  out.writeUInt32BE(ACCESS_MAGIC, 0)
  out.writeUInt32BE(ACCESS_VERSION, 4)
  out.writeUInt32BE(count, 8)
  let at = 12
  for (const { hash, atime, verified } of entries) {
    out.write(hash, at, 32, 'hex')
    out.writeDoubleBE(atime, at + 32)
    out.writeUInt8(verified ? 1 : 0, at + 40)
    at += ACCESS_RECORD
  }
  out.write(sha256Hex(out.subarray(0, at)), at, 32, 'hex')
  return out.subarray(0, at + 32)
}

/** Decodes access records by key hash; `undefined` when the file is not valid. */
export function decodeAccessFile(bytes: Buffer): Map<string, AccessRecord> | undefined {
  if (bytes.length < 44) return undefined
  if (bytes.readUInt32BE(0) !== ACCESS_MAGIC || bytes.readUInt32BE(4) !== ACCESS_VERSION) return undefined
  const count = bytes.readUInt32BE(8)
  const end = 12 + count * ACCESS_RECORD
  if (bytes.length !== end + 32) return undefined
  if (bytes.subarray(end).toString('hex') !== sha256Hex(bytes.subarray(0, end))) return undefined
  const records = new Map<string, AccessRecord>()
  for (let at = 12; at < end; at += ACCESS_RECORD) {
    records.set(bytes.subarray(at, at + 32).toString('hex'), {
      atime: bytes.readDoubleBE(at + 32),
      verified: (bytes.readUInt8(at + 40) & 1) === 1,
    })
  }
  return records
}
