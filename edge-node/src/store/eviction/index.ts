/**
 * Eviction policies of the memory tier, bounded in bytes: LRU (`lru-cache`) and S3-FIFO
 * (scan-resistant). `createByteCache` builds either behind one interface; the network
 * simulation (benchmarks/sim) uses the same factory for every node's cache.
 */
import { InvalidArgumentError } from '@shoal/protocol'
import { LRUCache } from 'lru-cache'
import { S3FifoCache, type S3FifoInit } from './s3-fifo.ts'
import { type ByteCache, EVICTION_POLICIES, type EvictionDispose, type EvictionPolicy } from './types.ts'

export {
  DEFAULT_S3FIFO_GHOST_RATIO,
  DEFAULT_S3FIFO_MOVE_TO_MAIN_THRESHOLD,
  DEFAULT_S3FIFO_SMALL_RATIO,
  S3FIFO_GHOST_ENTRY_BYTES,
  S3FifoCache,
  type S3FifoInit,
} from './s3-fifo.ts'
export * from './types.ts'

/** The memory tier's policy unless told otherwise. */
export const DEFAULT_EVICTION_POLICY: EvictionPolicy = 'lru'

export interface ByteCacheInit<K, V> {
  /** `lru` (default) or `s3-fifo`. */
  policy?: EvictionPolicy
  /** Bound in bytes. */
  maxSize: number
  /** Largest entry accepted (default `maxSize`). */
  maxEntrySize?: number
  /** Called with each entry that leaves. */
  dispose?: EvictionDispose<K, V>
  /** S3-FIFO tuning (ignored by LRU). */
  s3fifo?: Pick<S3FifoInit<K, V>, 'smallRatio' | 'ghostRatio' | 'moveToMainThreshold'>
}

/** Throws `InvalidArgumentError` unless `value` names a known policy. */
export function checkEvictionPolicy(value: unknown): EvictionPolicy {
  if (!EVICTION_POLICIES.includes(value as EvictionPolicy)) {
    throw new InvalidArgumentError(
      `eviction policy must be one of ${EVICTION_POLICIES.join(', ')}, got ${JSON.stringify(value)}`,
    )
  }
  return value as EvictionPolicy
}

/**
 * A cache bounded in bytes with the chosen eviction policy. For `lru` it is an
 * `LRUCache` itself (no wrapper on the hot path).
 *
 * @example
 * const cache = createByteCache<string, Buffer>({ policy: 's3-fifo', maxSize: 256 * 2 ** 20 })
 * cache.set(key, body, { size: body.byteLength })
 */
export function createByteCache<K extends {}, V extends {}>(init: ByteCacheInit<K, V>): ByteCache<K, V> {
  if (init == null || typeof init !== 'object')
    throw new InvalidArgumentError('byte cache options are required')
  const policy = checkEvictionPolicy(init.policy ?? DEFAULT_EVICTION_POLICY)
  if (!Number.isSafeInteger(init.maxSize) || init.maxSize < 1) {
    throw new InvalidArgumentError(`maxSize must be a positive integer, got ${String(init.maxSize)}`)
  }
  const maxEntrySize = init.maxEntrySize ?? init.maxSize
  if (policy === 's3-fifo') {
    return new S3FifoCache<K, V>({
      ...init.s3fifo,
      maxSize: init.maxSize,
      maxEntrySize,
      dispose: init.dispose,
    })
  }
  const dispose = init.dispose
  return new LRUCache<K, V>({
    maxSize: init.maxSize,
    maxEntrySize,
    ...(dispose === undefined
      ? {}
      : {
          dispose: (value: V, key: K, reason: string) => {
            if (reason === 'evict' || reason === 'set' || reason === 'delete') dispose(value, key, reason)
          },
        }),
  })
}
