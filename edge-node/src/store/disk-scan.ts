/**
 * Rebuilds the disk tier's index from its files at start. Internal.
 *
 * Only headers are read, and each body file's length is checked against its header
 * (one `stat`). After a clean close the snapshot it wrote stands in for the headers,
 * so a clean start costs one `stat` per entry. Temp files left by a crash, headers that fail their checksum or name
 * a missing or wrong-sized body, and bodies no header names are deleted: nothing
 * that is not provably whole is ever indexed.
 */
import { readdir, readFile, stat, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import {
  BODY_FILE_RE,
  decodeMetaFile,
  FANOUT_DIR_RE,
  keyHash,
  META_FILE_RE,
  type SnapshotRecord,
  TEMP_FILE_RE,
} from './disk-format.ts'
import type { StoreLogger } from './types.ts'
import { abortError, errorCode, mapLimit } from './util.ts'

export interface ScannedEntry {
  key: string
  hash: string
  bodyId: string
  size: number
  metaBytes: number
  /** The header says the body was fsynced before it became visible. */
  durable: boolean
  /** The body is inside the header file. */
  inline: boolean
  /** Last modification of the entry, ms since the epoch. */
  mtimeMs: number
}

export interface ScanReport {
  /** Entries found whole. */
  entries: ScannedEntry[]
  /** Temp files of interrupted writes deleted. */
  removedTemp: number
  /** Headers refused (bad checksum, version, key, missing or wrong-sized body) and deleted with their body. */
  removedCorrupt: number
  /** Body files no valid header named (including those of refused headers), deleted. */
  removedOrphans: number
  /** Headers read and checked (entries known from the snapshot need only a `stat`). */
  headersRead: number
}

export interface ScanOptions {
  concurrency: number
  maxMetaBytes: number
  /** Largest body a header file may carry inline. */
  inlineMaxBytes: number
  logger?: StoreLogger | undefined
  signal?: AbortSignal | undefined
  /**
   * Entries of the snapshot a clean close wrote, by key hash: their headers are not
   * read again, only their body length is checked.
   */
  known?: ReadonlyMap<string, SnapshotRecord> | undefined
}

/** Scans `root` (which must exist), deleting what cannot be served. */
export async function scanDir(root: string, options: ScanOptions): Promise<ScanReport> {
  const { concurrency, maxMetaBytes, inlineMaxBytes, logger, signal, known } = options
  const report: ScanReport = {
    entries: [],
    removedTemp: 0,
    removedCorrupt: 0,
    removedOrphans: 0,
    headersRead: 0,
  }
  const top = await readdir(root, { withFileTypes: true })
  const dirs = top.filter((d) => d.isDirectory() && FANOUT_DIR_RE.test(d.name)).map((d) => d.name)

  await mapLimit(dirs, Math.max(1, Math.ceil(concurrency / 4)), async (name) => {
    if (signal?.aborted) throw abortError(signal, 'scanning the cache was aborted')
    const dir = join(root, name)
    const files = await readdir(dir)
    const bodies = new Set<string>()
    const metas: string[] = []
    for (const file of files) {
      if (TEMP_FILE_RE.test(file)) {
        await removeQuietly(join(dir, file))
        report.removedTemp++
      } else if (META_FILE_RE.test(file)) metas.push(file)
      else if (BODY_FILE_RE.test(file)) bodies.add(file)
      else logger?.debug('unknown file in cache directory left alone', { file: join(dir, file) })
    }
    const used = new Set<string>()
    await mapLimit(metas, concurrency, async (file) => {
      const hash = (META_FILE_RE.exec(file) as RegExpExecArray)[1] as string
      const path = join(dir, file)
      const snapshot = known?.get(hash)
      if (snapshot === undefined) report.headersRead++
      const checked =
        snapshot === undefined
          ? await checkEntry(dir, hash, path, bodies, maxMetaBytes, inlineMaxBytes)
          : await checkKnown(dir, snapshot, bodies, path)
      if (typeof checked === 'string') {
        logger?.warn('corrupt cache entry deleted', { file: path, reason: checked })
        report.removedCorrupt++
        await removeQuietly(path)
        return
      }
      if (!checked.inline) used.add(`${hash}.${checked.bodyId}.body`)
      report.entries.push(checked)
    })
    for (const body of bodies) {
      if (used.has(body)) continue
      await removeQuietly(join(dir, body))
      report.removedOrphans++
    }
  })
  return report
}

async function checkEntry(
  dir: string,
  hash: string,
  path: string,
  bodies: ReadonlySet<string>,
  maxMetaBytes: number,
  inlineMaxBytes: number,
): Promise<ScannedEntry | string> {
  let bytes: Buffer
  let mtimeMs: number
  try {
    const info = await stat(path)
    // A header is its metadata plus a few hundred bytes and the key (and an inline body);
    // anything much larger is not ours.
    if (info.size > maxMetaBytes * 2 + 64 * 1024 + inlineMaxBytes) return 'header file too large'
    mtimeMs = info.mtimeMs
    bytes = await readFile(path)
  } catch (err) {
    return `unreadable header (${errorCode(err) ?? 'error'})`
  }
  const record = decodeMetaFile(bytes)
  if (typeof record === 'string') return record
  if (keyHash(record.key) !== hash) return 'key does not match the file name'
  // An inline body's length was checked as it was decoded; its bytes are checked whenever it is read.
  const inline = record.inline !== undefined
  if (!inline) {
    const body = `${hash}.${record.body}.body`
    if (!bodies.has(body)) return 'body file missing'
    try {
      const info = await stat(join(dir, body))
      if (info.size !== record.size) return `body length ${info.size} is not ${record.size}`
      mtimeMs = info.mtimeMs
    } catch {
      return 'body file missing'
    }
  }
  return {
    key: record.key,
    hash,
    bodyId: record.body,
    size: record.size,
    metaBytes: bytes.length,
    durable: record.durable,
    inline,
    mtimeMs: Math.max(mtimeMs, 0),
  }
}

/**
 * Checks an entry the snapshot describes: its body file (or, for an inline entry, its
 * header file) must be there with the right length.
 */
async function checkKnown(
  dir: string,
  snapshot: SnapshotRecord,
  bodies: ReadonlySet<string>,
  metaFile: string,
): Promise<ScannedEntry | string> {
  const body = `${snapshot.hash}.${snapshot.bodyId}.body`
  if (!snapshot.inline && !bodies.has(body)) return 'body file missing'
  const what = snapshot.inline ? 'header' : 'body'
  const expected = snapshot.inline ? snapshot.metaBytes : snapshot.size
  let info: Awaited<ReturnType<typeof stat>>
  try {
    info = await stat(snapshot.inline ? metaFile : join(dir, body))
  } catch {
    return `${what} file missing`
  }
  if (info.size !== expected) return `${what} length ${info.size} is not ${expected}`
  return {
    key: snapshot.key,
    hash: snapshot.hash,
    bodyId: snapshot.bodyId,
    size: snapshot.size,
    metaBytes: snapshot.metaBytes,
    durable: snapshot.durable,
    inline: snapshot.inline,
    mtimeMs: Math.max(info.mtimeMs, 0),
  }
}

/** Deletes a file, ignoring one that is already gone. */
export async function removeQuietly(path: string): Promise<void> {
  try {
    await unlink(path)
  } catch (err) {
    if (errorCode(err) !== 'ENOENT') throw err
  }
}
