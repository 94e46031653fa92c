import { createHash } from 'node:crypto'
import { type FileHandle, mkdir, open, readFile, rename } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import {
  IntegrityError,
  InvalidArgumentError,
  NotFoundError,
  RangeNotSatisfiableError,
  ShoalError,
  TooLargeError,
  throwIfAborted,
} from '@shoal/protocol'
import { createBodyStream } from './body-stream.ts'
import {
  DEFAULT_BLOCK_BYTES,
  DEFAULT_INLINE_MAX_BYTES,
  DEFAULT_MAX_META_BYTES,
  DEFAULT_READ_ALL_MAX_BYTES,
  DEFAULT_READ_CHUNK_BYTES,
  DEFAULT_SCAN_CONCURRENCY,
  DEFAULT_WRITE_BUFFER_BYTES,
  DISK_MAX_OBJECT_DIVISOR,
} from './constants.ts'
import {
  bodyPath,
  DIRTY_FILE,
  decodeIndexFile,
  decodeMetaFile,
  encodeIndexFile,
  encodeMetaFile,
  fanoutDir,
  INDEX_FILE,
  keyHash,
  type MetaRecord,
  metaPath,
  newBodyId,
  type SnapshotRecord,
  tempPath,
} from './disk-format.ts'
import { removeQuietly, scanDir } from './disk-scan.ts'
import type {
  AbortOptions,
  BodyRange,
  BodySource,
  CommitOptions,
  EntryInfo,
  ObjectWriter,
  PutOptions,
  PutResult,
  StoreLogger,
  StoreMeta,
  StoreMetaInput,
  StoreMetrics,
  TierStats,
} from './types.ts'
import {
  abortError,
  checkInteger,
  checkKey,
  createKeyedLock,
  errorCode,
  iterateSource,
  mapLimit,
  type NormalizedMeta,
  normalizeMeta,
  sha256Hex,
  writeSmallFile,
} from './util.ts'

export interface DiskTierInit {
  /** Directory of the tier; created if missing. One process owns it at a time. */
  dir: string
  /** Bound in bytes: body and header files, each rounded up to whole blocks. */
  maxBytes: number
  /** Largest body. Default `maxBytes / 4`. */
  maxObjectBytes?: number
  /** Largest metadata as JSON text. Default 64 KiB. */
  maxMetaBytes?: number
  /**
   * fsync each body and header before it is renamed into place (and the directory
   * after). Default true. With false, writes are faster and a crash can lose them
   * but never serve them wrong: see the module documentation.
   */
  durable?: boolean
  /** Allocation unit files are charged in. Default 4 KiB. */
  blockBytes?: number
  /** Size of each read of a streamed body. Default 128 KiB. */
  readChunkBytes?: number
  /** Writes are coalesced into buffers of this size. Default 256 KiB. */
  writeBufferBytes?: number
  /**
   * Bodies up to this size that are still in memory at the commit are stored inside
   * their header file: one file per object. Default 256 KiB; 0 keeps every body in a
   * file of its own.
   */
  inlineMaxBytes?: number
  /** Files examined in parallel at start. Default 16. */
  scanConcurrency?: number
  /** Wall clock in ms, for access times. Default `Date.now`. */
  now?: () => number
}

export interface DiskTierComponents {
  logger?: StoreLogger
  metrics?: StoreMetrics
}

/** An object on disk, as found by `get`. Its body is read with `open` (streamed) or `readAll`. */
export interface DiskEntry {
  readonly tier: 'disk'
  readonly key: string
  /** Body length in bytes. */
  readonly size: number
  readonly meta: StoreMeta
  /** SHA-256 of the body, lowercase hex. */
  readonly sha256: string
  /** The entry's version when it was read (see `DiskTier.stat`). */
  readonly version: number
  /**
   * Streams body bytes `[start, end)` (default: all) in pieces of at most
   * `readChunkBytes`. A whole-body read is checked against the SHA-256 as it streams:
   * on mismatch the stream errors with `IntegrityError` before its last piece and the
   * entry is deleted. A partial range cannot be checked against a whole-body hash:
   * content addressed by a CID is checked per chunk by the caller (`verifyStream`
   * over the chunk-aligned range). Rejects with `NotFoundError` when the entry was
   * replaced or removed since `get`, `RangeNotSatisfiableError` for a bad range.
   */
  open(range?: BodyRange, options?: AbortOptions): Promise<Readable>
  /**
   * Reads and checks the whole body into one buffer, for objects the caller keeps in
   * memory anyway. `TooLargeError` above `maxBytes` (default 64 MiB), `IntegrityError`
   * (and the entry is deleted) when the bytes do not match.
   */
  readAll(options?: AbortOptions & { maxBytes?: number }): Promise<Buffer>
}

/** What the index knows of an entry, without touching the disk. */
export interface DiskEntryInfo {
  key: string
  size: number
  version: number
}

export interface DiskStartResult {
  objects: number
  bytes: number
  /** Temp files of interrupted writes deleted. */
  removedTemp: number
  /** Entries refused (bad header, missing or wrong-sized body) and deleted. */
  removedCorrupt: number
  /** Body files that no valid header named, deleted. */
  removedOrphans: number
  /** Entries evicted because the files found exceed `maxBytes`. */
  evicted: number
  /** False when the previous run did not close (a crash or a kill). */
  clean: boolean
  /** Headers read: after a clean close only entries missing from the snapshot need it. */
  headersRead: number
  durationMs: number
}

export interface DiskTierStats extends TierStats {
  /** Bytes of writes in progress (temp files), counted against the bound. */
  pendingBytes: number
  /** Writers neither committed nor aborted. */
  writers: number
  /** Entries evicted by the bound since start. */
  evictions: number
}

export interface DiskUpdateOptions extends AbortOptions {
  /** As `PutOptions.onCommit`, when the new metadata becomes visible. */
  onCommit?: (result: PutResult) => void
}

export interface DiskEntriesOptions extends AbortOptions {
  /** Only keys starting with this. */
  prefix?: string
}

export interface DiskTier {
  readonly dir: string
  readonly maxBytes: number
  readonly maxObjectBytes: number
  readonly durable: boolean
  /** Rebuilds the index from the files (idempotent). Every other call needs it first. */
  start(options?: AbortOptions): Promise<DiskStartResult>
  /** Aborts open writers, waits for pending work and saves the index snapshot; idempotent. */
  close(options?: AbortOptions): Promise<void>
  has(key: string): boolean
  /** The index's view of `key` (no I/O, no recency change). */
  stat(key: string): DiskEntryInfo | undefined
  /** Marks `key` as just used; false when absent. */
  touch(key: string): boolean
  /** The entry for `key` (one small header read), marking it used; `undefined` when absent. */
  get(key: string, options?: AbortOptions): Promise<DiskEntry | undefined>
  /** Stores a body from a buffer or a stream; see `createWriter`. */
  put(key: string, meta: StoreMetaInput, source: BodySource, options?: PutOptions): Promise<PutResult>
  /** A writer for one entry, committed only when the caller says the bytes are good. */
  createWriter(key: string, meta: StoreMetaInput, options?: PutOptions): ObjectWriter
  /** Atomically replaces the metadata of an entry (the body stays); false when absent. */
  updateMeta(key: string, meta: StoreMetaInput, options?: DiskUpdateOptions): Promise<boolean>
  /** Removes the entry, and makes writers of `key` in progress fail their commit. */
  delete(key: string, options?: AbortOptions): Promise<boolean>
  /** A snapshot of the keys, least recently used first. */
  keys(): string[]
  /** Keys with their metadata (one header read each). */
  entries(options?: DiskEntriesOptions): AsyncGenerator<EntryInfo, void, undefined>
  stats(): DiskTierStats
}

interface IndexEntry {
  readonly key: string
  readonly hash: string
  readonly bodyId: string
  readonly size: number
  /** The body was fsynced before it became visible (recorded in its header). */
  readonly durable: boolean
  metaBytes: number
  footprint: number
  version: number
  atime: number
  /** The body is known to hold what was hashed: fsynced, or checked since. */
  verified: boolean
  /** Written without fsync in this run, to be synced by close(). */
  unsynced: boolean
  /** The body is inside the header file (no body file). */
  readonly inline: boolean
}

interface WriterHandle {
  invalidated: boolean
  abort(reason?: unknown): Promise<void>
}

type Lifecycle = 'new' | 'open' | 'closing' | 'closed'

const HEX64 = /^[0-9a-f]{64}$/
const EMPTY = new Uint8Array(0)
const noop = (): void => {}

/**
 * The disk tier: content-addressed files bounded in bytes, rebuilt from the files at
 * start, evicting the least recently used.
 *
 * Writes stream into a temp file beside their destination while hashing, are fsynced
 * when `durable`, and become visible by `rename`: a header names its body, so a crash
 * never leaves a torn entry visible, and anything that does not check out at start
 * (temp files, bad headers, wrong body lengths, orphan bodies) is deleted.
 *
 * With `durable: false` a crash may leave a body whose length is right but whose
 * bytes never reached the disk. The tier then trusts only bodies written durably or
 * checked since: after an unclean start, the first read of any other entry, even a
 * partial range, checks its whole body first; a clean `close()` fsyncs what it wrote.
 *
 * @example
 * const disk = createDiskTier({ dir: '/var/cache/shoal', maxBytes: 20 * 2 ** 30 })
 * await disk.start()
 * await disk.put(key, { contentType: 'video/mp4' }, upstreamBody, { expectedSize })
 * const entry = await disk.get(key)
 * if (entry !== undefined) await pipeline(await entry.open({ start: 0, end: 1024 }), res)
 * await disk.close()
 */
export function createDiskTier(init: DiskTierInit, components: DiskTierComponents = {}): DiskTier {
  if (init == null || typeof init !== 'object')
    throw new InvalidArgumentError('disk tier options are required')
  if (typeof init.dir !== 'string' || init.dir.length === 0) {
    throw new InvalidArgumentError('dir must be a non-empty path')
  }
  const root = init.dir
  const maxBytes = checkInteger('maxBytes', init.maxBytes, 1)
  const maxObjectBytes = checkInteger(
    'maxObjectBytes',
    init.maxObjectBytes ?? Math.floor(maxBytes / DISK_MAX_OBJECT_DIVISOR),
    0,
    maxBytes,
  )
  const maxMetaBytes = checkInteger('maxMetaBytes', init.maxMetaBytes ?? DEFAULT_MAX_META_BYTES, 2)
  if (init.durable !== undefined && typeof init.durable !== 'boolean') {
    throw new InvalidArgumentError('durable must be a boolean')
  }
  const durable = init.durable ?? true
  const blockBytes = checkInteger('blockBytes', init.blockBytes ?? DEFAULT_BLOCK_BYTES, 1)
  const readChunkBytes = checkInteger('readChunkBytes', init.readChunkBytes ?? DEFAULT_READ_CHUNK_BYTES, 1)
  const writeBufferBytes = checkInteger(
    'writeBufferBytes',
    init.writeBufferBytes ?? DEFAULT_WRITE_BUFFER_BYTES,
    1,
  )
  const inlineMaxBytes = checkInteger('inlineMaxBytes', init.inlineMaxBytes ?? DEFAULT_INLINE_MAX_BYTES, 0)
  const scanConcurrency = checkInteger('scanConcurrency', init.scanConcurrency ?? DEFAULT_SCAN_CONCURRENCY, 1)
  const now = init.now ?? Date.now
  if (typeof now !== 'function') throw new InvalidArgumentError('now must be a function')
  const { logger, metrics } = components

  /** Entries in recency order: the first is the least recently used. */
  const index = new Map<string, IndexEntry>()
  const writers = new Map<string, Set<WriterHandle>>()
  const background = new Set<Promise<void>>()
  const madeDirs = new Set<string>()
  const keyedLock = createKeyedLock()
  const inflight = new Set<Promise<unknown>>()
  /** Serialises changes to one key's files; close() waits for every such section. */
  const withLock = <T>(key: string, fn: () => Promise<T>): Promise<T> => {
    const run = keyedLock(key, fn)
    const settled = run.then(noop, noop)
    inflight.add(settled)
    void settled.then(() => inflight.delete(settled))
    return run
  }
  let lifecycle: Lifecycle = 'new'
  let starting: Promise<DiskStartResult> | undefined
  let closing: Promise<void> | undefined
  let bytes = 0
  let pendingBytes = 0
  let writerCount = 0
  let versions = 0
  let evictions = 0

  const blocks = (n: number): number => Math.ceil(n / blockBytes) * blockBytes

  const ensureOpen = (): void => {
    if (lifecycle !== 'open') {
      throw new ShoalError(
        'SHOAL_ERR_UNAVAILABLE',
        lifecycle === 'new' ? 'the disk tier is not started' : 'the disk tier is closed',
      )
    }
  }

  const report = (): void => {
    metrics?.cacheBytes.set({ tier: 'disk' }, bytes)
    metrics?.cacheObjects.set({ tier: 'disk' }, index.size)
  }

  /** Runs a task in the background; close() waits for it, failures are logged. */
  const track = (task: Promise<unknown>): void => {
    const done = task.then(noop, (err: unknown) => {
      logger?.warn('cache file cleanup failed', { error: String(err) })
    })
    background.add(done)
    void done.finally(() => background.delete(done))
  }

  const ensureDir = async (hash: string): Promise<string> => {
    const dir = fanoutDir(root, hash)
    if (!madeDirs.has(dir)) {
      await mkdir(dir, { recursive: true })
      madeDirs.add(dir)
    }
    return dir
  }

  const fsyncDir = async (dir: string): Promise<void> => {
    if (process.platform === 'win32') return
    try {
      const handle = await open(dir, 'r')
      try {
        await handle.sync()
      } finally {
        await handle.close()
      }
    } catch (err) {
      logger?.warn('fsync of a cache directory failed', { dir, error: String(err) })
    }
  }

  const fsyncFile = async (path: string): Promise<void> => {
    try {
      const handle = await open(path, 'r')
      try {
        await handle.sync()
      } finally {
        await handle.close()
      }
    } catch (err) {
      if (errorCode(err) !== 'ENOENT') throw err
    }
  }

  /** Writes a small file by temp + (fsync) + rename. */
  const writeFileAtomic = async (path: string, data: Buffer, hash: string, sync: boolean): Promise<void> => {
    await ensureDir(hash)
    const tmp = tempPath(root, hash)
    try {
      await writeSmallFile(tmp, data, 'wx', sync)
      await rename(tmp, path)
    } catch (err) {
      await removeQuietly(tmp).catch(noop)
      throw err
    }
  }

  /** Reads a header: the record, a reason it is bad, or `undefined` when the file is gone. */
  const readRecord = async (hash: string): Promise<MetaRecord | string | undefined> => {
    let data: Buffer
    try {
      data = await readFile(metaPath(root, hash))
    } catch (err) {
      if (errorCode(err) === 'ENOENT') return undefined
      throw err
    }
    return decodeMetaFile(data)
  }

  const addToIndex = (entry: IndexEntry): void => {
    index.set(entry.key, entry)
    bytes += entry.footprint
  }

  const dropFromIndex = (entry: IndexEntry): void => {
    if (index.get(entry.key) !== entry) return
    index.delete(entry.key)
    bytes -= entry.footprint
  }

  const touchEntry = (entry: IndexEntry): void => {
    entry.atime = now()
    index.delete(entry.key)
    index.set(entry.key, entry)
  }

  /** Deletes an entry's files, unless a newer entry for the key took their place. Under the key's lock. */
  const removeFilesLocked = async (entry: IndexEntry): Promise<void> => {
    const current = index.get(entry.key)
    if (current === undefined) await removeQuietly(metaPath(root, entry.hash))
    if (!entry.inline && current?.bodyId !== entry.bodyId) {
      await removeQuietly(bodyPath(root, entry.hash, entry.bodyId))
    }
  }

  const removeEntry = (entry: IndexEntry): void => {
    dropFromIndex(entry)
    report()
    track(withLock(entry.key, () => removeFilesLocked(entry)))
  }

  /** Evicts least recently used entries until the bound holds (never `keep`). */
  const makeRoom = (keep?: IndexEntry): void => {
    if (bytes + pendingBytes <= maxBytes) return
    for (const entry of index.values()) {
      if (bytes + pendingBytes <= maxBytes) break
      if (entry === keep) continue
      evictions++
      removeEntry(entry)
    }
  }

  const corrupted = (entry: IndexEntry, reason: string): void => {
    metrics?.integrityFailures.inc({ source: 'disk' })
    logger?.warn('corrupt cache entry deleted', { hash: entry.hash, reason })
    if (index.get(entry.key) === entry) removeEntry(entry)
  }

  /** Opens the body of `owner`; a body gone while its entry is still indexed was removed from outside. */
  const openBodyFile = async (
    owner: IndexEntry | undefined,
    hash: string,
    bodyId: string,
  ): Promise<FileHandle> => {
    try {
      return await open(bodyPath(root, hash, bodyId), 'r')
    } catch (err) {
      if (errorCode(err) !== 'ENOENT') throw err
      if (owner !== undefined && index.get(owner.key) === owner) {
        logger?.warn('cache body file vanished; entry dropped', { hash })
        removeEntry(owner)
      }
      throw new NotFoundError('the cache entry was replaced or removed', { cause: err })
    }
  }

  const drain = async (stream: Readable): Promise<void> => {
    for await (const _ of stream) {
      // reading is the point: the stream checks the hash
    }
  }

  /** Checks a range against a body of `size` bytes. */
  const checkRange = (range: BodyRange, size: number): { start: number; end: number } => {
    const start = range.start ?? 0
    const end = range.end ?? size
    if (
      !Number.isSafeInteger(start) ||
      !Number.isSafeInteger(end) ||
      start < 0 ||
      end < start ||
      end > size
    ) {
      throw new RangeNotSatisfiableError(`bytes [${start}, ${end}) are not within ${size}`)
    }
    return { start, end }
  }

  /**
   * An entry whose body came inside its header file (already read whole, and small):
   * every read checks it against its SHA-256 first, so even a torn write of the right
   * length (a crash without fsync) is never served.
   */
  const makeInlineEntry = (
    live: IndexEntry | undefined,
    record: MetaRecord,
    inline: Buffer,
    fail: (reason: string) => void,
  ): DiskEntry => {
    let checked = false
    const check = (): void => {
      if (checked) return
      if (sha256Hex(inline) !== record.sha256) {
        fail('sha256 mismatch')
        throw new IntegrityError('body does not match its SHA-256')
      }
      checked = true
      if (live !== undefined) live.verified = true
    }
    return {
      tier: 'disk',
      key: record.key,
      size: record.size,
      meta: record.meta,
      sha256: record.sha256,
      version: live?.version ?? -1,

      async open(range = {}, options = {}) {
        const { start, end } = checkRange(range, record.size)
        throwIfAborted(options.signal)
        check()
        const pieces: Buffer[] = []
        for (let at = start; at < end; at += readChunkBytes) {
          pieces.push(inline.subarray(at, Math.min(end, at + readChunkBytes)))
        }
        return Readable.from(pieces, { objectMode: true })
      },

      async readAll(options = {}) {
        const limit = options.maxBytes ?? DEFAULT_READ_ALL_MAX_BYTES
        if (record.size > limit)
          throw new TooLargeError(`body of ${record.size} bytes is larger than ${limit}`)
        throwIfAborted(options.signal)
        check()
        // A buffer of its own: the caller may keep it (memory) without the header beside it.
        const body = Buffer.allocUnsafeSlow(record.size)
        body.set(inline, 0)
        return body
      },
    }
  }

  /**
   * `live` is the index entry of the body `record` names, or `undefined` in the rare
   * race where the index has moved on: such an entry is treated as unverified, and
   * never deletes an index entry it does not own.
   */
  const makeEntry = (live: IndexEntry | undefined, record: MetaRecord): DiskEntry => {
    const { size, sha256 } = record
    const hash = keyHash(record.key)
    const fail = (reason: string): void => {
      if (live !== undefined) corrupted(live, reason)
    }
    if (record.inline !== undefined) return makeInlineEntry(live, record, record.inline, fail)
    const streamBody = async (start: number, end: number, signal: AbortSignal | undefined) =>
      createBodyStream({
        handle: await openBodyFile(live, hash, record.body),
        start,
        end,
        chunkBytes: readChunkBytes,
        sha256: start === 0 && end === size ? sha256 : undefined,
        onCorrupt: (err) => fail(err.message),
        onVerified: () => {
          if (live !== undefined) live.verified = true
        },
        signal,
      })
    return {
      tier: 'disk',
      key: record.key,
      size,
      meta: record.meta,
      sha256,
      version: live?.version ?? -1,

      async open(range = {}, options = {}) {
        const { start, end } = checkRange(range, size)
        throwIfAborted(options.signal)
        const whole = start === 0 && end === size
        // A body not known to be on disk as hashed is checked whole before any part is served.
        if (!whole && live?.verified !== true) await drain(await streamBody(0, size, options.signal))
        return streamBody(start, end, options.signal)
      },

      async readAll(options = {}) {
        const limit = options.maxBytes ?? DEFAULT_READ_ALL_MAX_BYTES
        if (size > limit) throw new TooLargeError(`body of ${size} bytes is larger than ${limit}`)
        throwIfAborted(options.signal)
        const handle = await openBodyFile(live, hash, record.body)
        try {
          const body = Buffer.allocUnsafeSlow(size)
          let at = 0
          while (at < size) {
            throwIfAborted(options.signal)
            const { bytesRead } = await handle.read(body, at, size - at, at)
            if (bytesRead === 0) {
              fail('short body')
              throw new IntegrityError('body file is shorter than its header says')
            }
            at += bytesRead
          }
          if (sha256Hex(body) !== sha256) {
            fail('sha256 mismatch')
            throw new IntegrityError('body does not match its SHA-256')
          }
          if (live !== undefined) live.verified = true
          return body
        } finally {
          await handle.close()
        }
      },
    }
  }

  const registerWriter = (key: string, writer: WriterHandle): void => {
    let set = writers.get(key)
    if (set === undefined) {
      set = new Set()
      writers.set(key, set)
    }
    set.add(writer)
    writerCount++
  }

  const unregisterWriter = (key: string, writer: WriterHandle): void => {
    const set = writers.get(key)
    if (set?.delete(writer) !== true) return
    writerCount--
    if (set.size === 0) writers.delete(key)
  }

  const createWriter = (key: string, meta: StoreMetaInput, options: PutOptions = {}): ObjectWriter => {
    ensureOpen()
    checkKey(key)
    const normalized = normalizeMeta(meta, maxMetaBytes)
    const { signal, expectedSize, expectedSha256, onCommit } = options
    if (expectedSize !== undefined) {
      checkInteger('expectedSize', expectedSize, 0)
      if (expectedSize > maxObjectBytes) {
        throw new TooLargeError(`object of ${expectedSize} bytes is larger than ${maxObjectBytes}`)
      }
    }
    if (expectedSha256 !== undefined && (typeof expectedSha256 !== 'string' || !HEX64.test(expectedSha256))) {
      throw new InvalidArgumentError('expectedSha256 must be 64 lowercase hex digits')
    }
    if (onCommit !== undefined && typeof onCommit !== 'function') {
      throw new InvalidArgumentError('onCommit must be a function')
    }
    if (signal?.aborted) throw abortError(signal)

    const hash = keyHash(key)
    // The body is written in place under its final name: no header names it until the
    // commit, and a body no header names is an orphan that the next start deletes.
    const bodyId = newBodyId()
    const bodyFile = bodyPath(root, hash, bodyId)
    const hasher = createHash('sha256')
    let handle: FileHandle | undefined
    let opening: Promise<FileHandle> | undefined
    let fileOffset = 0
    let stage: Buffer | undefined
    let staged = 0
    let written = 0
    let reserved = 0
    let state: 'open' | 'committing' | 'installing' | 'committed' | 'aborted' = 'open'
    let abortReason: unknown
    let finished = false
    let chain: Promise<unknown> = Promise.resolve()

    // A function, not an inline test: the state changes across awaits.
    const isAborted = (): boolean => state === 'aborted'
    const openFile = (): Promise<FileHandle> => {
      opening ??= (async () => {
        if (isAborted()) throw stateError()
        await ensureDir(hash)
        const file = await open(bodyFile, 'wx', 0o600)
        handle = file
        if (isAborted()) {
          // Aborted while the file was being created: the cleanup may have run already.
          await file.close().catch(noop)
          await removeQuietly(bodyFile).catch(noop)
          throw stateError()
        }
        return file
      })()
      return opening
    }

    const writeOut = async (data: Uint8Array): Promise<void> => {
      const file = await openFile()
      let at = 0
      while (at < data.byteLength) {
        const { bytesWritten } = await file.write(data, at, data.byteLength - at, fileOffset)
        at += bytesWritten
        fileOffset += bytesWritten
      }
    }

    const flushStage = async (): Promise<void> => {
      if (stage === undefined || staged === 0) return
      const n = staged
      staged = 0
      await writeOut(stage.subarray(0, n))
    }

    /** Checks a piece against the limits and counts and hashes it; false for an empty piece. */
    const accept = (chunk: Uint8Array): boolean => {
      const next = written + chunk.byteLength
      if (next > maxObjectBytes) {
        throw new TooLargeError(`object is larger than ${maxObjectBytes} bytes`)
      }
      if (expectedSize !== undefined && next > expectedSize) {
        throw new IntegrityError(`body is longer than the expected ${expectedSize} bytes`)
      }
      if (chunk.byteLength === 0) return false
      written = next
      hasher.update(chunk)
      reserve()
      return true
    }

    const reserve = (): void => {
      const need = blocks(written) - reserved
      if (need <= 0) return
      reserved += need
      pendingBytes += need
      makeRoom()
    }

    const finish = (): void => {
      if (finished) return
      finished = true
      pendingBytes -= reserved
      reserved = 0
      unregisterWriter(key, self)
      signal?.removeEventListener('abort', onAbort)
    }

    const cleanup = async (): Promise<void> => {
      stage = undefined
      if (opening !== undefined) await opening.catch(noop)
      const file = handle
      handle = undefined
      if (file !== undefined) await file.close().catch(noop)
      await removeQuietly(bodyFile).catch(noop)
    }

    let aborting: Promise<void> | undefined
    /** Idempotent: every caller waits until the temp file is gone. */
    const abort = (reason?: unknown): Promise<void> => {
      if (aborting !== undefined) return aborting
      if (state !== 'open' && state !== 'committing') return Promise.resolve()
      state = 'aborted'
      abortReason = reason
      finish()
      aborting = cleanup()
      return aborting
    }

    const self: WriterHandle = { invalidated: false, abort }
    const onAbort = (): void => {
      void abort(abortError(signal, 'the write was aborted'))
    }
    registerWriter(key, self)
    signal?.addEventListener('abort', onAbort, { once: true })

    /** The error for a call on a writer that can no longer take it. */
    const stateError = (): Error => {
      if (state === 'aborted') {
        return abortReason instanceof Error && 'code' in abortReason
          ? abortReason
          : abortError(undefined, 'the writer was aborted')
      }
      return new InvalidArgumentError(`the writer is ${state === 'committed' ? 'committed' : 'committing'}`)
    }

    /** Runs a step after the earlier ones; a failing step aborts the writer. */
    const step = <T>(fn: () => Promise<T>): Promise<T> => {
      const run = chain.then(fn)
      chain = run.catch(noop)
      return run.catch(async (err: unknown) => {
        if (state === 'aborted') throw stateError()
        await abort(err)
        throw err
      })
    }

    /** `held`: the whole body when none of it is on disk yet (written here, in one go). */
    const install = async (
      sha256: string,
      finalMeta: NormalizedMeta,
      held: Uint8Array | undefined,
    ): Promise<PutResult> => {
      if (state !== 'committing') throw stateError()
      if (self.invalidated) {
        throw new ShoalError('SHOAL_ERR_CONFLICT', 'the entry was deleted while it was being written')
      }
      ensureOpen()
      state = 'installing'
      // A small body still in memory goes inside its header: one file for the object.
      const inline = held !== undefined && held.byteLength <= inlineMaxBytes ? held : undefined
      const header = encodeMetaFile(
        { key, size: written, sha256, body: bodyId, durable },
        finalMeta.text,
        inline,
      )
      try {
        try {
          await ensureDir(hash)
          if (held !== undefined && inline === undefined) await writeSmallFile(bodyFile, held, 'wx', durable)
          // A header that replaces another must switch atomically; a first header may be
          // written in place when not durable (a torn one fails its checksum at start).
          if (durable || index.has(key)) await writeFileAtomic(metaPath(root, hash), header, hash, durable)
          else await writeSmallFile(metaPath(root, hash), header, 'w', false)
        } catch (err) {
          await removeQuietly(bodyFile).catch(noop)
          throw err
        }
      } catch (err) {
        state = 'committing' // so that the failure aborts the writer and frees what it holds
        throw err
      }
      if (durable) await fsyncDir(fanoutDir(root, hash))
      if (self.invalidated) {
        // Deleted while its files were written: they go (the delete, waiting for this key's
        // lock, removes only the entry it saw in the index before).
        await removeQuietly(metaPath(root, hash)).catch(noop)
        if (inline === undefined) await removeQuietly(bodyFile).catch(noop)
        state = 'committing'
        throw new ShoalError('SHOAL_ERR_CONFLICT', 'the entry was deleted while it was being written')
      }
      // Visible from here on.
      const previous = index.get(key)
      if (previous !== undefined) {
        dropFromIndex(previous)
        if (!previous.inline) track(removeQuietly(bodyPath(root, previous.hash, previous.bodyId)))
      }
      const entry: IndexEntry = {
        key,
        hash,
        bodyId,
        size: written,
        durable,
        metaBytes: header.length,
        footprint: inline === undefined ? blocks(written) + blocks(header.length) : blocks(header.length),
        version: ++versions,
        atime: now(),
        verified: true,
        unsynced: !durable,
        inline: inline !== undefined,
      }
      addToIndex(entry)
      state = 'committed'
      finish()
      makeRoom(entry)
      report()
      const result: PutResult = { key, size: written, sha256, meta: finalMeta.meta, version: entry.version }
      try {
        onCommit?.(result)
      } catch (err) {
        logger?.warn('onCommit hook failed', { error: String(err) })
      }
      return result
    }

    return {
      key,
      get bytesWritten() {
        return written
      },

      write(chunk, writeOptions = {}) {
        if (!(chunk instanceof Uint8Array)) {
          return Promise.reject(new InvalidArgumentError('chunk must be a Uint8Array'))
        }
        return step(async () => {
          if (state !== 'open') throw stateError()
          throwIfAborted(writeOptions.signal)
          if (!accept(chunk)) return
          if (chunk.byteLength >= writeBufferBytes) {
            await flushStage()
            await writeOut(chunk)
            return
          }
          if (staged + chunk.byteLength > writeBufferBytes) await flushStage()
          if (stage === undefined || staged + chunk.byteLength > stage.length) {
            // Grow by doubling up to writeBufferBytes, so a small object never costs a full buffer.
            const grown = Buffer.allocUnsafeSlow(
              Math.min(
                writeBufferBytes,
                Math.max(staged + chunk.byteLength, 2 * (stage?.length ?? 0), expectedSize ?? 0, 4096),
              ),
            )
            if (stage !== undefined) stage.copy(grown, 0, 0, staged)
            stage = grown
          }
          stage.set(chunk, staged)
          staged += chunk.byteLength
        })
      },

      commit(commitOptions: CommitOptions = {}) {
        let finalMeta = normalized
        const last = commitOptions.body
        try {
          if (commitOptions.meta !== undefined) finalMeta = normalizeMeta(commitOptions.meta, maxMetaBytes)
          if (last !== undefined && !(last instanceof Uint8Array)) {
            throw new InvalidArgumentError('body must be a Uint8Array')
          }
        } catch (err) {
          return Promise.reject(err)
        }
        return step(async () => {
          if (state !== 'open') throw stateError()
          throwIfAborted(commitOptions.signal)
          if (last !== undefined) accept(last)
          state = 'committing'
          if (expectedSize !== undefined && written !== expectedSize) {
            throw new IntegrityError(`body is ${written} bytes, expected ${expectedSize}`)
          }
          const sha256 = hasher.digest('hex')
          if (expectedSha256 !== undefined && sha256 !== expectedSha256) {
            throw new IntegrityError('body does not match the expected SHA-256')
          }
          // Nothing on disk yet (a small body, held in memory): written whole by install().
          let held: Uint8Array | undefined
          if (opening === undefined) {
            const inStage = stage === undefined ? EMPTY : stage.subarray(0, staged)
            held =
              last === undefined || last.byteLength === 0
                ? inStage
                : inStage.byteLength === 0
                  ? last
                  : Buffer.concat([inStage, last])
          } else {
            await flushStage()
            if (last !== undefined && last.byteLength > 0) await writeOut(last)
            const file = await openFile()
            if (durable) await file.datasync()
            handle = undefined
            await file.close()
          }
          if (state !== 'committing') throw stateError()
          return withLock(key, () => install(sha256, finalMeta, held))
        })
      },

      abort,
    }
  }

  const tier: DiskTier = {
    dir: root,
    maxBytes,
    maxObjectBytes,
    durable,

    start(options = {}) {
      if (closing !== undefined || lifecycle === 'closing' || lifecycle === 'closed') {
        return Promise.reject(new ShoalError('SHOAL_ERR_UNAVAILABLE', 'the disk tier is closed'))
      }
      starting ??= doStart(options).catch((err: unknown) => {
        starting = undefined
        throw err
      })
      return starting
    },

    close(options = {}) {
      if (closing !== undefined) return closing
      if (starting === undefined) {
        lifecycle = 'closed'
        closing = Promise.resolve()
        return closing
      }
      closing = starting.then(
        () => doClose(options),
        () => {
          lifecycle = 'closed'
        },
      )
      return closing
    },

    has: (key) => index.has(key),

    stat(key) {
      const entry = index.get(key)
      return entry === undefined ? undefined : { key, size: entry.size, version: entry.version }
    },

    touch(key) {
      const entry = index.get(key)
      if (entry === undefined) return false
      touchEntry(entry)
      return true
    },

    async get(key, options = {}) {
      ensureOpen()
      throwIfAborted(options.signal)
      const entry = index.get(key)
      if (entry === undefined) return undefined
      touchEntry(entry)
      const record = await readRecord(entry.hash)
      if (record === undefined) {
        // Every change renames a header over another or drops the entry from the index
        // first: a header missing under a live entry was removed from outside.
        if (index.get(key) === entry) {
          logger?.warn('cache header file vanished; entry dropped', { hash: entry.hash })
          removeEntry(entry)
        }
        return undefined
      }
      if (typeof record === 'string' || record.key !== key) {
        corrupted(entry, typeof record === 'string' ? record : 'key mismatch')
        return undefined
      }
      // A commit may have switched the header since the index was read: use the entry it names.
      const current = index.get(key)
      const live =
        current?.bodyId === record.body ? current : entry.bodyId === record.body ? entry : undefined
      return makeEntry(live, record)
    },

    async put(key, meta, source, options = {}) {
      const writer = createWriter(key, meta, options)
      try {
        for await (const chunk of iterateSource(source, options.signal)) await writer.write(chunk)
        return await writer.commit({ signal: options.signal })
      } catch (err) {
        await writer.abort(err)
        throw err
      }
    },

    createWriter,

    async updateMeta(key, meta, options = {}) {
      ensureOpen()
      checkKey(key)
      const normalized = normalizeMeta(meta, maxMetaBytes)
      throwIfAborted(options.signal)
      return withLock(key, async () => {
        const entry = index.get(key)
        if (entry === undefined) return false
        const record = await readRecord(entry.hash)
        if (record === undefined || (typeof record !== 'string' && record.body !== entry.bodyId)) return false
        if (typeof record === 'string' || record.key !== key) {
          corrupted(entry, typeof record === 'string' ? record : 'key mismatch')
          return false
        }
        const header = encodeMetaFile(
          { key, size: record.size, sha256: record.sha256, body: record.body, durable: record.durable },
          normalized.text,
          record.inline,
        )
        await writeFileAtomic(metaPath(root, entry.hash), header, entry.hash, durable)
        if (durable) await fsyncDir(fanoutDir(root, entry.hash))
        else entry.unsynced = true
        // Evicted meanwhile: its removal, queued behind this, deletes the new header too.
        if (index.get(key) !== entry) return false
        bytes -= entry.footprint
        entry.metaBytes = header.length
        entry.footprint = entry.inline ? blocks(header.length) : blocks(entry.size) + blocks(header.length)
        bytes += entry.footprint
        entry.version = ++versions
        makeRoom(entry)
        report()
        try {
          options.onCommit?.({
            key,
            size: record.size,
            sha256: record.sha256,
            meta: normalized.meta,
            version: entry.version,
          })
        } catch (err) {
          logger?.warn('onCommit hook failed', { error: String(err) })
        }
        return true
      })
    },

    async delete(key, options = {}) {
      ensureOpen()
      checkKey(key)
      for (const writer of writers.get(key) ?? []) writer.invalidated = true
      const entry = index.get(key)
      if (entry !== undefined) {
        dropFromIndex(entry)
        report()
      }
      throwIfAborted(options.signal)
      await withLock(key, async () => {
        if (entry === undefined) return
        await removeFilesLocked(entry)
        if (durable) await fsyncDir(fanoutDir(root, entry.hash))
      })
      return entry !== undefined
    },

    keys: () => Array.from(index.keys()),

    async *entries(options = {}) {
      ensureOpen()
      const { prefix, signal } = options
      for (const key of Array.from(index.keys())) {
        if (prefix !== undefined && !key.startsWith(prefix)) continue
        throwIfAborted(signal)
        const entry = index.get(key)
        if (entry === undefined) continue
        const record = await readRecord(entry.hash)
        if (record === undefined || typeof record === 'string' || record.key !== key) continue
        yield { key, size: record.size, sha256: record.sha256, meta: record.meta }
      }
    },

    stats: () => ({
      bytes,
      objects: index.size,
      maxBytes,
      pendingBytes,
      writers: writerCount,
      evictions,
    }),
  }

  async function doStart(options: AbortOptions): Promise<DiskStartResult> {
    const began = performance.now()
    throwIfAborted(options.signal)
    await mkdir(root, { recursive: true })
    const dirtyPath = join(root, DIRTY_FILE)
    let clean = true
    try {
      await readFile(dirtyPath)
      clean = false
    } catch (err) {
      if (errorCode(err) !== 'ENOENT') throw err
    }
    let snapshot: Map<string, SnapshotRecord> | undefined
    try {
      snapshot = decodeIndexFile(await readFile(join(root, INDEX_FILE)))
      if (snapshot === undefined) logger?.warn('cache index snapshot is corrupt; reading every header', {})
    } catch (err) {
      if (errorCode(err) !== 'ENOENT') throw err
    }
    // From here until a clean close, a crash must be detectable.
    await writeFileAtomicRoot(dirtyPath, Buffer.from(`${now()}\n`))

    const scan = await scanDir(root, {
      concurrency: scanConcurrency,
      maxMetaBytes,
      inlineMaxBytes,
      logger,
      signal: options.signal,
      // Headers are trusted from the snapshot only when the run that wrote it closed cleanly.
      known: clean ? snapshot : undefined,
    })
    const found = scan.entries.map((s) => {
      const record = snapshot?.get(s.hash)
      // Trust a body that was fsynced before it became visible, or that a clean run vouched for.
      const verified = s.durable || (clean && record?.verified === true)
      return { s, atime: record?.atime ?? s.mtimeMs, verified }
    })
    found.sort((a, b) => a.atime - b.atime)
    for (const { s, atime, verified } of found) {
      addToIndex({
        key: s.key,
        hash: s.hash,
        bodyId: s.bodyId,
        size: s.size,
        durable: s.durable,
        metaBytes: s.metaBytes,
        footprint: s.inline ? blocks(s.metaBytes) : blocks(s.size) + blocks(s.metaBytes),
        version: ++versions,
        atime,
        verified,
        unsynced: false,
        inline: s.inline,
      })
    }
    lifecycle = 'open'
    const before = index.size
    makeRoom()
    const evicted = before - index.size
    evictions = 0
    report()
    const result: DiskStartResult = {
      objects: index.size,
      bytes,
      removedTemp: scan.removedTemp,
      removedCorrupt: scan.removedCorrupt,
      removedOrphans: scan.removedOrphans,
      evicted,
      clean,
      headersRead: scan.headersRead,
      durationMs: performance.now() - began,
    }
    logger?.info('disk cache ready', { dir: root, ...result })
    return result
  }

  async function writeFileAtomicRoot(path: string, data: Buffer | Iterable<Buffer>): Promise<void> {
    const tmp = `${path}.tmp`
    const handle = await open(tmp, 'w', 0o600)
    try {
      if (Buffer.isBuffer(data)) await handle.writeFile(data)
      else for (const piece of data) await handle.write(piece)
      await handle.datasync()
    } finally {
      await handle.close()
    }
    await rename(tmp, path)
    await fsyncDir(root)
  }

  async function doClose(options: AbortOptions): Promise<void> {
    lifecycle = 'closing'
    const active = Array.from(writers.values()).flatMap((set) => Array.from(set))
    await Promise.all(active.map((writer) => writer.abort(abortError(undefined, 'the disk tier is closing'))))
    // Let commits, updates and removals in flight finish.
    while (inflight.size > 0 || background.size > 0) {
      await Promise.all([...inflight, ...background])
    }
    lifecycle = 'closed'
    throwIfAborted(options.signal)
    // Make what this run wrote without fsync durable, so the next run can trust it.
    const unsynced = Array.from(index.values()).filter((entry) => entry.unsynced)
    const dirs = new Set<string>()
    await mapLimit(unsynced, scanConcurrency, async (entry) => {
      throwIfAborted(options.signal)
      if (!entry.inline) await fsyncFile(bodyPath(root, entry.hash, entry.bodyId))
      await fsyncFile(metaPath(root, entry.hash))
      dirs.add(fanoutDir(root, entry.hash))
      entry.unsynced = false
    })
    for (const dir of dirs) await fsyncDir(dir)
    const records = (function* (): Generator<SnapshotRecord> {
      for (const e of index.values()) {
        yield {
          hash: e.hash,
          key: e.key,
          bodyId: e.bodyId,
          size: e.size,
          metaBytes: e.metaBytes,
          atime: e.atime,
          verified: e.verified,
          durable: e.durable,
          inline: e.inline,
        }
      }
    })()
    await writeFileAtomicRoot(join(root, INDEX_FILE), encodeIndexFile(records, index.size))
    await removeQuietly(join(root, DIRTY_FILE))
    await fsyncDir(root)
    logger?.info('disk cache closed', { dir: root, objects: index.size, bytes })
  }

  return tier
}
