import { ConflictError, IntegrityError, InvalidArgumentError } from '@shoal/protocol'
import {
  createDiskTier,
  type DiskEntry,
  type DiskStartResult,
  type DiskTier,
  type DiskTierInit,
} from './disk-tier.ts'
import { createMemoryTier, type MemoryEntry, type MemoryTier, type MemoryTierInit } from './memory-tier.ts'
import type {
  AbortOptions,
  BodySource,
  EntryInfo,
  ObjectWriter,
  PutOptions,
  PutResult,
  StoreLogger,
  StoreMetaInput,
  StoreMetrics,
  TierStats,
} from './types.ts'
import { abortError, checkInteger, checkKey, errorCode, iterateSource, sha256Hex } from './util.ts'

/** What `get` returns: a body in memory, or a body to stream from disk. */
export type StoreEntry = MemoryEntry | DiskEntry

export interface TieredStoreParts {
  memory: MemoryTier
  disk: DiskTier
}

export interface TieredStoreComponents {
  logger?: StoreLogger
}

/**
 * Keys remembered after their object left memory unread (`admitOnReuse`): a miss on one
 * of them is its second use, and goes to disk at once. One per 16 KiB of memory tier.
 */
const GHOST_KEY_BYTES = 16 * 1024
const MIN_GHOST_KEYS = 1024
/**
 * Bytes of reused objects waiting for their disk write, at most: a quarter of the memory
 * tier. Past it (reuse faster than the disk writes), an object is not queued; it keeps
 * being served from memory, and a clean close still writes it.
 */
const SAVE_QUEUE_SHARE = 0.25

export interface ObjectStoreInit {
  memory: MemoryTierInit
  disk: DiskTierInit
}

export interface ObjectStoreComponents {
  logger?: StoreLogger
  metrics?: StoreMetrics
}

export interface StoreStats {
  memory: TierStats
  disk: TierStats
}

export interface ObjectStore {
  readonly memory: MemoryTier
  readonly disk: DiskTier
  /** Starts the disk tier (rebuilds its index); idempotent. */
  start(options?: AbortOptions): Promise<DiskStartResult>
  /**
   * Writes the reused objects held only in memory (`admitOnReuse`) to disk, closes the
   * disk tier (saves its state) and empties memory; idempotent.
   */
  close(options?: AbortOptions): Promise<void>
  has(key: string): boolean
  /**
   * Memory first, then disk. A disk object small enough for memory is read whole,
   * checked against its SHA-256 and promoted; a corrupt one is deleted and reported
   * as a miss. For the hot path call `store.memory.get(key)` first: it is synchronous.
   */
  get(key: string, options?: AbortOptions): Promise<StoreEntry | undefined>
  /** Writes to disk, and to memory when small enough; see `createWriter`. */
  put(key: string, meta: StoreMetaInput, source: BodySource, options?: PutOptions): Promise<PutResult>
  /**
   * A writer for one entry (disk, plus memory when small), committed only when the
   * caller has verified the bytes, e.g. while teeing an upstream response to a client.
   */
  createWriter(key: string, meta: StoreMetaInput, options?: PutOptions): ObjectWriter
  /** Replaces the stored metadata (after a 304 revalidation); false when the key is not stored. */
  updateMeta(key: string, meta: StoreMetaInput, options?: AbortOptions): Promise<boolean>
  delete(key: string, options?: AbortOptions): Promise<boolean>
  /** Deletes every entry whose key satisfies `predicate` (a purge by prefix); returns how many. */
  deleteWhere(predicate: (key: string) => boolean, options?: AbortOptions): Promise<number>
  /** A snapshot of the stored keys. */
  keys(): string[]
  /** Keys with their metadata; disk entries cost one small read each. */
  entries(options?: AbortOptions & { prefix?: string }): AsyncGenerator<EntryInfo, void, undefined>
  stats(): StoreStats
  /** Resolves once every pending write to disk of a reused memory-only object is done. */
  saved(): Promise<void>
}

/**
 * Composes a memory tier over a disk tier. Puts go to disk and, when small, to
 * memory; the memory copy is set at the moment the disk entry becomes visible, so
 * the two never disagree about which body is current. Objects pushed out of memory
 * are marked used on disk, so the disk keeps what was hot.
 *
 * @example
 * const store = createTieredStore({
 *   memory: createMemoryTier({ maxBytes: 256 * 2 ** 20 }),
 *   disk: createDiskTier({ dir, maxBytes: 20 * 2 ** 30 }),
 * })
 * await store.start()
 * const entry = store.memory.get(key) ?? (await store.get(key))
 */
export function createTieredStore(
  parts: TieredStoreParts,
  components: TieredStoreComponents = {},
): ObjectStore {
  if (parts == null || typeof parts !== 'object' || parts.memory == null || parts.disk == null) {
    throw new InvalidArgumentError('a tiered store needs a memory tier and a disk tier')
  }
  const { memory, disk } = parts
  const { logger } = components

  // ---- admission at the second use (`admitOnReuse`) ----------------------------------
  /** Keys whose object left memory never read again, oldest first (a bounded FIFO). */
  const ghosts = new Set<string>()
  const maxGhosts = Math.max(MIN_GHOST_KEYS, Math.floor(memory.maxBytes / GHOST_KEY_BYTES))
  /** Reused memory-only objects waiting to be written to disk, by key, oldest first. */
  const toSave = new Map<string, MemoryEntry>()
  let queuedBytes = 0
  const maxQueuedBytes = Math.floor(memory.maxBytes * SAVE_QUEUE_SHARE)
  let saving: Promise<void> | undefined
  const dequeue = (key: string): void => {
    const entry = toSave.get(key)
    if (entry === undefined) return
    toSave.delete(key)
    queuedBytes -= entry.size
  }
  /** Queues a write; false when the queue is full (`force` queues anyway: a clean close). */
  const enqueue = (entry: MemoryEntry, force = false): boolean => {
    dequeue(entry.key)
    if (!force && queuedBytes + entry.size > maxQueuedBytes) return false
    toSave.set(entry.key, entry)
    queuedBytes += entry.size
    return true
  }
  /** Largest object held in memory only: what both tiers would take. */
  const memoryOnlyMax = Math.min(memory.maxObjectBytes, disk.maxObjectBytes)
  /** Memory-only writers in progress by key: a delete makes their commit fail. */
  const memoryWriters = new Map<string, Set<{ invalidated: boolean }>>()

  const remember = (key: string): void => {
    ghosts.delete(key)
    ghosts.add(key)
    if (ghosts.size > maxGhosts) ghosts.delete(ghosts.values().next().value as string)
  }

  /** Writes one reused object to disk; memory keeps serving it meanwhile. */
  const save = async (queued: MemoryEntry): Promise<void> => {
    const { key, body } = queued
    // The latest metadata of that body (a 304 may have updated it since).
    const held = memory.peek(key)
    const meta = held?.body === body ? held.meta : queued.meta
    const writer = disk.createWriter(key, meta, {
      expectedSize: body.byteLength,
      onCommit() {
        const current = memory.peek(key)
        if (current === undefined || current.body === body) {
          memory.markSaved(key, body)
          return
        }
        // A newer body came into memory while this one was written: the disk now holds an
        // older one than memory, so the newer one is written after it.
        enqueue(current, true)
      },
    })
    await writer.commit({ body })
  }

  const drain = async (): Promise<void> => {
    for (;;) {
      const next = toSave.entries().next()
      if (next.done === true) return
      const [key, entry] = next.value
      dequeue(key)
      try {
        await save(entry)
      } catch (err) {
        // A delete while it was written (SHOAL_ERR_CONFLICT), a full or closed disk: it stays in memory.
        logger?.debug('a reused object was not written to disk', { code: errorCode(err) })
      }
    }
  }

  /** Runs the queue until it is empty; started on the next turn of the event loop. */
  const startSaving = (): void => {
    // A hit that queues a write is answered first.
    saving ??= new Promise<void>((resolve) => setImmediate(resolve)).then(drain).finally(() => {
      saving = undefined
      if (toSave.size > 0) startSaving()
    })
  }
  const queueSave = (entry: MemoryEntry): void => {
    if (enqueue(entry)) startSaving()
    else logger?.debug('disk write queue full: a reused object stays in memory only', { size: entry.size })
  }

  const unsubscribeReuse = memory.onReuse(queueSave)
  const unsubscribe = memory.onEvict((entry, neverReused) => {
    if (neverReused) remember(entry.key)
    else disk.touch(entry.key)
  })

  /** Keeps memory in step with a disk entry that just became visible. */
  const syncMemory = (result: PutResult, body: Buffer | undefined): void => {
    if (body !== undefined) {
      memory.set(result.key, result.meta, body, { sha256: result.sha256 })
      return
    }
    const held = memory.peek(result.key)
    if (held === undefined) return
    if (held.sha256 === result.sha256) memory.updateMeta(result.key, result.meta)
    else memory.delete(result.key)
  }

  /**
   * A writer whose commit puts the body in memory only, marked unsaved: the disk admits it
   * at its second use. Checks what the disk writer would (length, SHA-256, a delete while
   * it writes); a body memory cannot take after all goes to disk at the commit. Without a
   * declared length (`expected` undefined) the pieces are copied as they come, and once
   * they outgrow memory's `maxObjectBytes` the writer hands them to a disk writer.
   */
  const memoryOnlyWriter = (
    key: string,
    meta: StoreMetaInput,
    options: PutOptions,
    expected: number | undefined,
  ): ObjectWriter => {
    const { signal, expectedSha256, onCommit } = options
    if (signal?.aborted) throw abortError(signal)
    /** The body of declared length, allocated at the first piece unless that piece's buffer is adopted. */
    let whole: Buffer | undefined
    /** `whole` is the memory of the pieces themselves (see `append`). */
    let adopted = false
    let pieces: Buffer[] | undefined = expected === undefined ? [] : undefined
    /** The disk writer that took over a body of undeclared length too large for memory. */
    let through: ObjectWriter | undefined
    const { admitOnReuse: _, ...writeThrough } = options
    let filled = 0
    let state: 'open' | 'committed' | 'aborted' = 'open'
    const handle = { invalidated: false }
    let set = memoryWriters.get(key)
    if (set === undefined) {
      set = new Set()
      memoryWriters.set(key, set)
    }
    set.add(handle)
    const finish = (): void => {
      const writers = memoryWriters.get(key)
      if (writers?.delete(handle) === true && writers.size === 0) memoryWriters.delete(key)
    }
    const fail = (err: Error): Promise<never> => {
      state = 'aborted'
      whole = undefined
      pieces = undefined
      finish()
      return Promise.reject(err)
    }
    const append = (chunk: Uint8Array): Error | 'overflow' | undefined => {
      if (!(chunk instanceof Uint8Array)) return new InvalidArgumentError('a body piece must be a Uint8Array')
      if (expected === undefined) {
        if (filled + chunk.byteLength > memoryOnlyMax) return 'overflow'
        pieces?.push(Buffer.from(chunk))
      } else if (filled + chunk.byteLength > expected) {
        return new IntegrityError(`body is longer than the expected ${expected} bytes`)
      } else if (filled === 0 && chunk.byteOffset === 0 && chunk.buffer.byteLength === expected) {
        // Pieces that are consecutive views of one buffer of exactly the declared length
        // (the raw upstream client's presized body) are kept as they are, not copied.
        whole = Buffer.from(chunk.buffer, 0, expected)
        adopted = true
      } else if (!adopted || chunk.buffer !== whole?.buffer || chunk.byteOffset !== filled) {
        if (whole === undefined || adopted) {
          const own = Buffer.allocUnsafeSlow(expected)
          if (whole !== undefined) whole.copy(own, 0, 0, filled)
          whole = own
          adopted = false
        }
        whole.set(chunk, filled)
      }
      filled += chunk.byteLength
      return undefined
    }
    /** Too large for memory after all: a disk writer takes the pieces so far, then `chunk`. */
    const overflow = async (chunk: Uint8Array, writeOptions?: AbortOptions): Promise<void> => {
      if (handle.invalidated) throw new ConflictError('the entry was deleted while it was being written')
      const held = pieces ?? []
      pieces = undefined
      finish()
      const writer = createWriter(key, meta, writeThrough)
      through = writer
      try {
        for (const piece of held) await writer.write(piece, writeOptions)
        await writer.write(chunk, writeOptions)
      } catch (err) {
        await writer.abort(err)
        throw err
      }
    }
    return {
      key,
      get bytesWritten() {
        return through?.bytesWritten ?? filled
      },
      write(chunk, writeOptions) {
        if (through !== undefined) return through.write(chunk, writeOptions)
        if (state !== 'open') return Promise.reject(new InvalidArgumentError(`the writer is ${state}`))
        if (signal?.aborted) return fail(abortError(signal, 'the write was aborted'))
        if (writeOptions?.signal?.aborted)
          return fail(abortError(writeOptions.signal, 'the write was aborted'))
        const err = append(chunk)
        if (err === 'overflow') {
          return overflow(chunk, writeOptions).catch((cause: unknown) => {
            state = 'aborted'
            throw cause
          })
        }
        return err === undefined ? Promise.resolve() : fail(err)
      },
      commit(commitOptions = {}) {
        if (through !== undefined) return through.commit(commitOptions)
        if (state !== 'open') return Promise.reject(new InvalidArgumentError(`the writer is ${state}`))
        if (signal?.aborted) return fail(abortError(signal, 'the write was aborted'))
        if (commitOptions.signal?.aborted) return fail(abortError(commitOptions.signal))
        if (commitOptions.body !== undefined) {
          const err = append(commitOptions.body)
          if (err === 'overflow') {
            const last = commitOptions.body
            return overflow(last).then(() =>
              (through as ObjectWriter).commit({ ...commitOptions, body: undefined }),
            )
          }
          if (err !== undefined) return fail(err)
        }
        if (expected !== undefined && filled !== expected)
          return fail(new IntegrityError(`body is ${filled} bytes, expected ${expected}`))
        const body = expected === undefined ? Buffer.concat(pieces ?? [], filled) : (whole ?? Buffer.alloc(0))
        pieces = undefined
        const sha256 = expectedSha256 === undefined ? undefined : sha256Hex(body)
        if (sha256 !== undefined && sha256 !== expectedSha256) {
          return fail(new IntegrityError('body does not match the expected SHA-256'))
        }
        if (handle.invalidated) {
          return fail(new ConflictError('the entry was deleted while it was being written'))
        }
        state = 'committed'
        whole = undefined
        finish()
        const finalMeta = commitOptions.meta ?? meta
        // Stored on disk meanwhile (a concurrent fill): this one replaces it there too.
        const entry = disk.has(key)
          ? undefined
          : memory.set(
              key,
              finalMeta,
              body,
              sha256 === undefined ? { unsaved: true } : { sha256, unsaved: true },
            )
        if (entry === undefined) {
          const writer = createWriter(key, finalMeta, writeThrough)
          return writer.write(body).then(() => writer.commit())
        }
        dequeue(key)
        ghosts.delete(key)
        const result: PutResult = {
          key,
          size: entry.size,
          get sha256() {
            return entry.sha256
          },
          // parsed only if read: the memory tier keeps the metadata as text until then
          get meta() {
            return entry.meta
          },
          version: 0,
        }
        onCommit?.(result)
        return Promise.resolve(result)
      },
      abort(reason) {
        if (through !== undefined) return through.abort(reason)
        if (state === 'open') {
          state = 'aborted'
          whole = undefined
          pieces = undefined
          finish()
        }
        return Promise.resolve()
      },
    }
  }

  const createWriter = (key: string, meta: StoreMetaInput, options: PutOptions = {}): ObjectWriter => {
    const expected = options.expectedSize
    if (options.admitOnReuse === true) {
      checkKey(key)
      if (expected !== undefined) checkInteger('expectedSize', expected, 0)
      const fits = expected === undefined || (expected > 0 && expected <= memoryOnlyMax)
      if (fits && !ghosts.has(key) && !disk.has(key)) return memoryOnlyWriter(key, meta, options, expected)
      ghosts.delete(key)
    }
    let whole: Buffer | undefined
    let filled = 0
    let pieces: Buffer[] | undefined
    let collected = 0
    const inner = disk.createWriter(key, meta, {
      ...options,
      onCommit(result) {
        dequeue(key)
        let body: Buffer | undefined
        if (whole !== undefined) body = filled === whole.length ? whole : undefined
        else if (pieces !== undefined) body = Buffer.concat(pieces, collected)
        whole = undefined
        pieces = undefined
        syncMemory(result, body)
        options.onCommit?.(result)
      },
    })
    // A body of declared length that fits in memory is assembled in one buffer (one copy):
    // the disk gets it in one write at commit, and memory keeps that same buffer.
    if (expected !== undefined && expected > 0 && expected <= memory.maxObjectBytes) {
      whole = Buffer.allocUnsafeSlow(expected)
    } else if ((expected ?? 0) <= memory.maxObjectBytes) {
      // Otherwise, copies of the pieces while the object may still fit in memory.
      pieces = []
    }
    /** Hands the assembled bytes to the disk writer, which then takes every piece itself. */
    const release = async (): Promise<void> => {
      const held = whole?.subarray(0, filled)
      whole = undefined
      if (held !== undefined && held.byteLength > 0) await inner.write(held)
    }
    return {
      key,
      get bytesWritten() {
        return whole !== undefined ? filled : inner.bytesWritten
      },
      write(chunk, writeOptions) {
        if (whole !== undefined && chunk instanceof Uint8Array) {
          if (filled + chunk.byteLength <= whole.length) {
            // An aborted writer says so now, not at commit.
            if (options.signal?.aborted || writeOptions?.signal?.aborted)
              return inner.write(chunk, writeOptions)
            whole.set(chunk, filled)
            filled += chunk.byteLength
            return Promise.resolve()
          }
          // Longer than declared: the disk writer refuses it, as it would have piece by piece.
          return release().then(() => inner.write(chunk, writeOptions))
        }
        if (pieces !== undefined && chunk instanceof Uint8Array) {
          collected += chunk.byteLength
          if (collected > memory.maxObjectBytes) pieces = undefined
          else pieces.push(Buffer.from(chunk))
        }
        return inner.write(chunk, writeOptions)
      },
      commit(commitOptions = {}) {
        if (whole === undefined || filled === 0) return inner.commit(commitOptions)
        if (commitOptions.body !== undefined) return release().then(() => inner.commit(commitOptions))
        // The assembled body goes to disk with the commit; memory keeps that same buffer.
        const body = filled === whole.length ? whole : whole.subarray(0, filled)
        if (filled !== whole.length) whole = undefined
        return inner.commit({ ...commitOptions, body })
      },
      abort(reason) {
        whole = undefined
        pieces = undefined
        return inner.abort(reason)
      },
    }
  }

  const promote = (entry: DiskEntry, body: Buffer): MemoryEntry | undefined => {
    // Only the body that is still current on disk may enter memory.
    if (disk.stat(entry.key)?.version !== entry.version) return undefined
    return memory.set(entry.key, entry.meta, body, { sha256: entry.sha256 })
  }

  const store: ObjectStore = {
    memory,
    disk,
    start: (options) => disk.start(options),

    async close(options) {
      unsubscribeReuse()
      unsubscribe()
      try {
        // What was reused but is not on disk yet is written now; one-hit objects are let go.
        for (const entry of memory.unsavedReused()) enqueue(entry, true)
        if (toSave.size > 0) startSaving()
        await store.saved()
        await disk.close(options)
      } finally {
        memory.clear()
      }
    },

    async saved() {
      while (saving !== undefined) await saving
    },

    has: (key) => memory.has(key) || disk.has(key),

    async get(key, options = {}) {
      const hit = memory.get(key)
      if (hit !== undefined) return hit
      for (let attempt = 0; ; attempt++) {
        const entry = await disk.get(key, options)
        if (entry === undefined || entry.size > memory.maxObjectBytes) return entry
        let body: Buffer
        try {
          body = await entry.readAll(options)
        } catch (err) {
          const code = errorCode(err)
          // Replaced or removed between the header read and the body read: look again, once.
          if (code === 'SHOAL_ERR_NOT_FOUND' && attempt === 0) continue
          if (code === 'SHOAL_ERR_NOT_FOUND') return undefined
          if (code === 'SHOAL_ERR_INTEGRITY') {
            logger?.warn('corrupt disk entry dropped on promotion', { size: entry.size })
            return undefined
          }
          throw err
        }
        const promoted = promote(entry, body)
        if (promoted !== undefined) return promoted
        const current = disk.stat(key)
        if (attempt === 0 && current !== undefined && current.version !== entry.version) continue
        // Not cached (replaced meanwhile, or too big for memory with its metadata): serve what was read.
        return Object.freeze({
          tier: 'memory',
          key,
          size: entry.size,
          meta: entry.meta,
          sha256: entry.sha256,
          body,
        }) satisfies MemoryEntry
      }
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
      checkKey(key)
      const updated = await disk.updateMeta(key, meta, {
        ...options,
        onCommit: (result) => syncMemory(result, undefined),
      })
      if (updated) return true
      // Held only in memory (the disk evicted it): update it there.
      return memory.updateMeta(key, meta) !== undefined
    },

    async delete(key, options = {}) {
      checkKey(key)
      for (const writer of memoryWriters.get(key) ?? []) writer.invalidated = true
      dequeue(key)
      const inMemory = memory.delete(key)
      const onDisk = await disk.delete(key, options)
      return inMemory || onDisk
    },

    async deleteWhere(predicate, options = {}) {
      if (typeof predicate !== 'function') throw new InvalidArgumentError('predicate must be a function')
      let deleted = 0
      for (const key of store.keys()) {
        if (!predicate(key)) continue
        if (await store.delete(key, options)) deleted++
      }
      return deleted
    },

    keys() {
      const keys = new Set(disk.keys())
      for (const key of memory.keys()) keys.add(key)
      return Array.from(keys)
    },

    async *entries(options = {}) {
      const seen = new Set<string>()
      for await (const info of disk.entries(options)) {
        seen.add(info.key)
        yield info
      }
      for (const key of memory.keys()) {
        if (seen.has(key) || (options.prefix !== undefined && !key.startsWith(options.prefix))) continue
        const held = memory.peek(key)
        if (held !== undefined) yield { key, size: held.size, sha256: held.sha256, meta: held.meta }
      }
    },

    stats: () => ({ memory: memory.stats(), disk: disk.stats() }),
  }
  return store
}

/**
 * Builds a memory tier and a disk tier from plain options and composes them.
 *
 * @example
 * const store = createObjectStore(
 *   { memory: { maxBytes: 256 * 2 ** 20 }, disk: { dir: '/var/cache/shoal', maxBytes: 20 * 2 ** 30 } },
 *   { logger, metrics },
 * )
 * await store.start()
 * await store.put(key, { contentType: 'image/png' }, body)
 * await store.close()
 */
export function createObjectStore(
  init: ObjectStoreInit,
  components: ObjectStoreComponents = {},
): ObjectStore {
  if (init == null || typeof init !== 'object')
    throw new InvalidArgumentError('object store options are required')
  const memory = createMemoryTier(init.memory, components)
  const disk = createDiskTier(init.disk, components)
  return createTieredStore({ memory, disk }, components)
}
