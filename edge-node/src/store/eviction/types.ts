/** Why an entry left a byte cache, as `lru-cache` names it. */
export type EvictionReason = 'evict' | 'set' | 'delete'

/** Called with each entry that leaves a cache. */
export type EvictionDispose<K, V> = (value: V, key: K, reason: EvictionReason) => void

export interface ByteCacheSetOptions {
  /** Bytes the entry is charged. */
  size?: number
}

/**
 * A cache bounded in bytes: the part of `lru-cache`'s `LRUCache` API the memory tier and
 * the simulation use, so an `LRUCache` and an `S3FifoCache` are interchangeable.
 */
export interface ByteCache<K, V> {
  readonly maxSize: number
  /** Entries held. */
  readonly size: number
  /** Bytes charged. */
  readonly calculatedSize: number
  /** The value, counting an access (the hot path: synchronous). */
  get(key: K): V | undefined
  /** The value without counting an access. */
  peek(key: K): V | undefined
  has(key: K): boolean
  set(key: K, value: V, options?: ByteCacheSetOptions): unknown
  delete(key: K): boolean
  keys(): Iterable<K>
  clear(): void
}

/** The eviction policies a byte cache can be built with. */
export const EVICTION_POLICIES = ['lru', 's3-fifo'] as const
export type EvictionPolicy = (typeof EVICTION_POLICIES)[number]
