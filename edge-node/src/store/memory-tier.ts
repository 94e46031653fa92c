import { InvalidArgumentError } from '@shoal/protocol'
import { LRUCache } from 'lru-cache'
import {
  DEFAULT_MAX_META_BYTES,
  DEFAULT_MEMORY_MAX_OBJECT_BYTES,
  MEMORY_ENTRY_OVERHEAD_BYTES,
  MEMORY_MAX_OBJECT_DIVISOR,
} from './constants.ts'
import { type ByteCache, checkEvictionPolicy, type EvictionPolicy, S3FifoCache } from './eviction/index.ts'
import type { StoreMeta, StoreMetaInput, StoreMetrics, TierStats } from './types.ts'
import { checkInteger, checkKey, metaText, parseMeta, sha256Hex } from './util.ts'

export interface MemoryTierInit {
  /** Bound of the tier in bytes: bodies, keys, metadata text and a fixed overhead per entry. */
  maxBytes: number
  /** Larger bodies never enter memory. Default `min(8 MiB, maxBytes / 8)`. */
  maxObjectBytes?: number
  /** Largest metadata as JSON text. Default 64 KiB. */
  maxMetaBytes?: number
  /** Eviction policy: `lru` (default) or `s3-fifo` (scan-resistant); see docs/simulation.md. */
  policy?: EvictionPolicy
}

export interface MemoryTierComponents {
  metrics?: Pick<StoreMetrics, 'cacheBytes' | 'cacheObjects'>
}

/** An object held whole in memory. Treat `body` as read-only: it is shared by every reader. */
export interface MemoryEntry {
  readonly tier: 'memory'
  readonly key: string
  /** Body length in bytes. */
  readonly size: number
  readonly meta: StoreMeta
  /** SHA-256 of the body, lowercase hex. */
  readonly sha256: string
  readonly body: Buffer
}

export interface MemorySetOptions {
  /** The body's SHA-256 when the caller already has it (it is computed otherwise, when first read). */
  sha256?: string
  /**
   * The entry is held only here, not on disk (the disk admits it at its second use): the
   * tier reports its first reuse (`onReuse`) and, at eviction, whether it was never reused.
   */
  unsaved?: boolean
}

export interface MemoryTier {
  readonly maxBytes: number
  readonly maxObjectBytes: number
  /** The entry for `key`, marking it recently used. Synchronous, allocation-free: the hot path. */
  get(key: string): MemoryEntry | undefined
  /** The entry for `key` without touching its recency. */
  peek(key: string): MemoryEntry | undefined
  has(key: string): boolean
  /**
   * Stores a body whole and returns the entry, or `undefined` when the body is larger
   * than `maxObjectBytes` (nothing is stored then, and an older entry for the key is
   * dropped). The tier keeps `body` without copying when it owns its whole memory
   * (a view into a larger buffer is copied): do not modify it afterwards.
   */
  set(
    key: string,
    meta: StoreMetaInput,
    body: Uint8Array,
    options?: MemorySetOptions,
  ): MemoryEntry | undefined
  /** Replaces the metadata of an entry; `undefined` when there is none. */
  updateMeta(key: string, meta: StoreMetaInput): MemoryEntry | undefined
  delete(key: string): boolean
  /** A snapshot of the keys, most recently used first. */
  keys(): string[]
  clear(): void
  stats(): TierStats
  /**
   * Calls `listener` with each entry pushed out by the byte bound, and whether it was an
   * `unsaved` entry that was never reused; returns the unsubscribe.
   */
  onEvict(listener: (entry: MemoryEntry, neverReused: boolean) => void): () => void
  /**
   * Calls `listener` (synchronously, inside `get`) the first time an `unsaved` entry is
   * read again with `get`; returns the unsubscribe. Keep it cheap: it runs on a hit.
   */
  onReuse(listener: (entry: MemoryEntry) => void): () => void
  /** Marks the entry for `key` saved (on disk) if it still holds `body`. */
  markSaved(key: string, body: Buffer): void
  /** Entries held only here (`unsaved`) that were reused: what the disk has yet to admit. */
  unsavedReused(): MemoryEntry[]
}

/**
 * The memory tier: small objects held whole in an LRU bounded in bytes.
 *
 * A hit is a synchronous `get` that returns the stored entry object itself (no copy,
 * no promise). Bodies larger than `maxObjectBytes` are refused, so one large object
 * never flushes the hot set.
 *
 * @example
 * const memory = createMemoryTier({ maxBytes: 256 * 2 ** 20 })
 * memory.set(key, { contentType: 'text/css' }, body)
 * const hit = memory.get(key)
 * if (hit !== undefined) res.end(hit.body)
 */
export function createMemoryTier(init: MemoryTierInit, components: MemoryTierComponents = {}): MemoryTier {
  if (init == null || typeof init !== 'object')
    throw new InvalidArgumentError('memory tier options are required')
  const maxBytes = checkInteger('maxBytes', init.maxBytes, 1)
  const maxObjectBytes = checkInteger(
    'maxObjectBytes',
    init.maxObjectBytes ??
      Math.min(DEFAULT_MEMORY_MAX_OBJECT_BYTES, Math.floor(maxBytes / MEMORY_MAX_OBJECT_DIVISOR)),
    0,
    maxBytes,
  )
  const maxMetaBytes = checkInteger('maxMetaBytes', init.maxMetaBytes ?? DEFAULT_MAX_META_BYTES, 2)
  const { metrics } = components
  const listeners = new Set<(entry: MemoryEntry, neverReused: boolean) => void>()
  const reuseListeners = new Set<(entry: MemoryEntry) => void>()
  /** Keys of `unsaved` entries: false until the entry is reused, then true. */
  const unsaved = new Map<string, boolean>()

  const dispose = (entry: MemoryEntry, key: string, reason: string): void => {
    // A replaced entry's state is set by `store` once the new one is in.
    if (reason === 'set') return
    const reused = unsaved.get(key)
    unsaved.delete(key)
    if (reason !== 'evict') return
    for (const listener of listeners) listener(entry, reused === false)
  }
  const cache: ByteCache<string, MemoryEntry> =
    checkEvictionPolicy(init.policy ?? 'lru') === 's3-fifo'
      ? new S3FifoCache<string, MemoryEntry>({ maxSize: maxBytes, maxEntrySize: maxBytes, dispose })
      : new LRUCache<string, MemoryEntry>({ maxSize: maxBytes, maxEntrySize: maxBytes, dispose })

  const report = (): void => {
    metrics?.cacheBytes.set({ tier: 'memory' }, cache.calculatedSize)
    metrics?.cacheObjects.set({ tier: 'memory' }, cache.size)
  }

  const footprint = (key: string, text: string, body: Buffer): number =>
    body.byteLength + key.length * 2 + text.length * 2 + MEMORY_ENTRY_OVERHEAD_BYTES

  /**
   * Keeps an entry. The metadata is kept as its JSON text and parsed (and deep-frozen)
   * when first read, unless it came already normalised: most objects pulled once are
   * never read again, and a string is a fraction of the heap of the object it encodes.
   */
  const store = (
    key: string,
    normalized: StoreMeta | undefined,
    text: string,
    body: Buffer,
    sha256: string | (() => string) | undefined,
    state: boolean | undefined,
  ) => {
    // The SHA-256 is computed when first asked for: a miss held only in memory never needs it.
    let digest = typeof sha256 === 'string' ? sha256 : undefined
    let meta = normalized
    const entry: MemoryEntry = Object.freeze({
      tier: 'memory',
      key,
      size: body.byteLength,
      get meta() {
        meta ??= parseMeta(text)
        return meta
      },
      get sha256() {
        digest ??= typeof sha256 === 'function' ? sha256() : sha256Hex(body)
        return digest
      },
      body,
    })
    const size = footprint(key, text, body)
    if (size > maxBytes) {
      cache.delete(key)
      return undefined
    }
    cache.set(key, entry, { size })
    if (cache.peek(key) !== entry) {
      // Pushed out at once (S3-FIFO's small queue can be smaller than one large object).
      report()
      return undefined
    }
    if (state === undefined) unsaved.delete(key)
    else unsaved.set(key, state)
    report()
    return entry
  }

  const get = (key: string): MemoryEntry | undefined => {
    const entry = cache.get(key)
    if (entry !== undefined && unsaved.size !== 0 && unsaved.get(key) === false) {
      unsaved.set(key, true)
      for (const listener of reuseListeners) listener(entry)
    }
    return entry
  }

  return {
    maxBytes,
    maxObjectBytes,
    get,
    peek: (key) => cache.peek(key),
    has: (key) => cache.has(key),

    set(key, meta, body, options = {}) {
      checkKey(key)
      if (!(body instanceof Uint8Array)) throw new InvalidArgumentError('body must be a Uint8Array')
      const checked = metaText(meta, maxMetaBytes)
      if (body.byteLength > maxObjectBytes) {
        if (cache.delete(key)) report()
        return undefined
      }
      return store(
        key,
        checked.normalized,
        checked.text,
        ownedBuffer(body),
        options.sha256,
        options.unsaved === true ? false : undefined,
      )
    },

    updateMeta(key, meta) {
      const current = cache.peek(key)
      if (current === undefined) return undefined
      const checked = metaText(meta, maxMetaBytes)
      return store(
        key,
        checked.normalized,
        checked.text,
        current.body,
        () => current.sha256,
        unsaved.get(key),
      )
    },

    delete(key) {
      const deleted = cache.delete(key)
      if (deleted) report()
      return deleted
    },

    keys: () => Array.from(cache.keys()),

    clear() {
      cache.clear()
      unsaved.clear()
      report()
    },

    stats: () => ({ bytes: cache.calculatedSize, objects: cache.size, maxBytes }),

    onEvict(listener) {
      listeners.add(listener)
      return () => {
        listeners.delete(listener)
      }
    },

    onReuse(listener) {
      reuseListeners.add(listener)
      return () => {
        reuseListeners.delete(listener)
      }
    },

    markSaved(key, body) {
      if (cache.peek(key)?.body === body) unsaved.delete(key)
    },

    unsavedReused() {
      const out: MemoryEntry[] = []
      for (const [key, reused] of unsaved) {
        const entry = reused ? cache.peek(key) : undefined
        if (entry !== undefined) out.push(entry)
      }
      return out
    },
  }
}

/**
 * A Buffer that owns exactly its bytes: a view into a larger allocation (a pooled
 * Buffer, a slice of a socket read) is copied so the tier's byte count is honest and
 * the larger allocation is not kept alive.
 */
function ownedBuffer(body: Uint8Array): Buffer {
  if (body.byteOffset === 0 && body.byteLength === body.buffer.byteLength) {
    return Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, 0, body.byteLength)
  }
  const copy = Buffer.allocUnsafeSlow(body.byteLength)
  copy.set(body)
  return copy
}
