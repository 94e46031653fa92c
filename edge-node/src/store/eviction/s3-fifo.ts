/**
 * S3-FIFO (Yang et al., "FIFO queues are all you need for cache eviction", SOSP 2023),
 * bounded in bytes.
 *
 * Three FIFO queues: a small one `S` (10 % of the bytes) where every new object lands, a
 * main one `M` (the rest), and a ghost queue `G` of keys only. Each object carries a
 * 2-bit access counter. A hit only bumps the counter: no list is touched, so the hit
 * path is a map lookup and an increment.
 *
 * - Insert: a key remembered by `G` goes straight to `M`; any other to `S`.
 * - Evict from `S` (while `S` holds more than its share): the oldest object moves to `M`
 *   when it was hit at least `moveToMainThreshold` times while in `S` (its counter is
 *   reset), else it is evicted and its key remembered in `G`.
 * - Evict from `M`: the oldest object with a non-zero counter is reinserted at the head
 *   with its counter decremented (a CLOCK-like second chance); one with counter 0 goes.
 * - `G` remembers keys standing for at most `ghostRatio × maxSize` bytes of objects
 *   (oldest forgotten first). Its own memory (keys) is charged to the bound.
 *
 * One-hit wonders and scans pass through `S` without pushing the hot set out of `M`:
 * that is what makes it scan-resistant where LRU is not.
 */
import { InvalidArgumentError } from '@shoal/protocol'
import type { ByteCache, ByteCacheSetOptions, EvictionDispose } from './types.ts'

/** Share of the bytes given to the small queue. */
export const DEFAULT_S3FIFO_SMALL_RATIO = 0.1
/** Bytes of objects the ghost queue stands for, as a share of the bound. */
export const DEFAULT_S3FIFO_GHOST_RATIO = 0.9
/** Hits while in the small queue that earn promotion to the main one. */
export const DEFAULT_S3FIFO_MOVE_TO_MAIN_THRESHOLD = 1
/** Bytes charged per ghost entry on top of its key (two UTF-16 bytes a character for strings). */
export const S3FIFO_GHOST_ENTRY_BYTES = 48
const MAX_FREQ = 3
const SMALL = 0
const MAIN = 1

export interface S3FifoInit<K, V> {
  /** Bound in bytes: objects' sizes plus the ghost queue's keys. */
  maxSize: number
  /** Largest entry accepted (default `maxSize`). */
  maxEntrySize?: number
  smallRatio?: number
  ghostRatio?: number
  moveToMainThreshold?: number
  /** Called with each entry that leaves: `evict` (pushed out), `delete`, or `set` (replaced). */
  dispose?: EvictionDispose<K, V>
}

interface Entry<K, V> {
  key: K
  value: V
  size: number
  freq: number
  queue: number
  prev: Entry<K, V> | undefined
  next: Entry<K, V> | undefined
}

/** A doubly linked FIFO: push at the head, take from the tail, unlink anywhere in O(1). */
class Fifo<K, V> {
  head: Entry<K, V> | undefined
  tail: Entry<K, V> | undefined
  bytes = 0
  count = 0

  push(e: Entry<K, V>): void {
    e.prev = undefined
    e.next = this.head
    if (this.head !== undefined) this.head.prev = e
    else this.tail = e
    this.head = e
    this.bytes += e.size
    this.count++
  }

  unlink(e: Entry<K, V>): void {
    if (e.prev !== undefined) e.prev.next = e.next
    else this.head = e.next
    if (e.next !== undefined) e.next.prev = e.prev
    else this.tail = e.prev
    e.prev = undefined
    e.next = undefined
    this.bytes -= e.size
    this.count--
  }
}

function ratio(name: string, value: number | undefined, fallback: number, min: number): number {
  const v = value ?? fallback
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > 1) {
    throw new InvalidArgumentError(`${name} must be a number in [${min}, 1], got ${String(v)}`)
  }
  return v
}

function ghostKeyBytes(key: unknown): number {
  return (typeof key === 'string' ? key.length * 2 : 8) + S3FIFO_GHOST_ENTRY_BYTES
}

/**
 * An S3-FIFO cache bounded in bytes, with the part of `lru-cache`'s API the memory tier
 * uses (`get`, `peek`, `has`, `set(key, value, { size })`, `delete`, `keys`, `clear`,
 * `size`, `calculatedSize`).
 *
 * @example
 * const cache = new S3FifoCache<string, Buffer>({ maxSize: 64 * 2 ** 20 })
 * cache.set('a', body, { size: body.byteLength })
 * cache.get('a') // body, and its counter goes up
 */
export class S3FifoCache<K, V> implements ByteCache<K, V> {
  readonly maxSize: number
  readonly maxEntrySize: number
  readonly smallMaxSize: number
  readonly ghostMaxSize: number
  readonly moveToMainThreshold: number
  readonly #dispose: EvictionDispose<K, V> | undefined
  readonly #map = new Map<K, Entry<K, V>>()
  readonly #small = new Fifo<K, V>()
  readonly #main = new Fifo<K, V>()
  /** Key → size of the object it stands for; Map order is insertion order (a FIFO). */
  readonly #ghost = new Map<K, number>()
  #ghostObjectBytes = 0
  #ghostKeyBytes = 0

  constructor(init: S3FifoInit<K, V>) {
    if (init == null || typeof init !== 'object')
      throw new InvalidArgumentError('S3-FIFO options are required')
    const { maxSize } = init
    if (!Number.isSafeInteger(maxSize) || maxSize < 1) {
      throw new InvalidArgumentError(`maxSize must be a positive integer, got ${String(maxSize)}`)
    }
    const maxEntrySize = init.maxEntrySize ?? maxSize
    if (!Number.isSafeInteger(maxEntrySize) || maxEntrySize < 1) {
      throw new InvalidArgumentError(`maxEntrySize must be a positive integer, got ${String(maxEntrySize)}`)
    }
    const threshold = init.moveToMainThreshold ?? DEFAULT_S3FIFO_MOVE_TO_MAIN_THRESHOLD
    if (!Number.isInteger(threshold) || threshold < 1 || threshold > MAX_FREQ) {
      throw new InvalidArgumentError(`moveToMainThreshold must be an integer from 1 to ${MAX_FREQ}`)
    }
    if (init.dispose !== undefined && typeof init.dispose !== 'function') {
      throw new InvalidArgumentError('dispose must be a function')
    }
    this.maxSize = maxSize
    this.maxEntrySize = Math.min(maxEntrySize, maxSize)
    this.smallMaxSize = Math.max(
      1,
      Math.floor(maxSize * ratio('smallRatio', init.smallRatio, DEFAULT_S3FIFO_SMALL_RATIO, 0.01)),
    )
    this.ghostMaxSize = Math.floor(
      maxSize * ratio('ghostRatio', init.ghostRatio, DEFAULT_S3FIFO_GHOST_RATIO, 0),
    )
    this.moveToMainThreshold = threshold
    this.#dispose = init.dispose
  }

  /** Entries held (not counting ghosts). */
  get size(): number {
    return this.#map.size
  }

  /** Bytes charged: the entries' sizes plus the ghost queue's keys. */
  get calculatedSize(): number {
    return this.#small.bytes + this.#main.bytes + this.#ghostKeyBytes
  }

  /** The value, counting one access. The hot path: a lookup and an increment. */
  get(key: K): V | undefined {
    const e = this.#map.get(key)
    if (e === undefined) return undefined
    if (e.freq < MAX_FREQ) e.freq++
    return e.value
  }

  /** The value without counting an access. */
  peek(key: K): V | undefined {
    return this.#map.get(key)?.value
  }

  has(key: K): boolean {
    return this.#map.has(key)
  }

  /** Stores `value` charged `size` bytes; an entry larger than `maxEntrySize` is not stored (and an old one is dropped). */
  set(key: K, value: V, options: ByteCacheSetOptions = {}): this {
    const size = options.size ?? 1
    if (!Number.isSafeInteger(size) || size < 0) {
      throw new InvalidArgumentError(`size must be a non-negative integer, got ${String(size)}`)
    }
    const old = this.#map.get(key)
    if (size > this.maxEntrySize) {
      if (old !== undefined) this.#remove(old, 'set')
      return this
    }
    if (old !== undefined) {
      const fifo = old.queue === SMALL ? this.#small : this.#main
      const previous = old.value
      fifo.bytes += size - old.size
      old.size = size
      old.value = value
      if (old.freq < MAX_FREQ) old.freq++
      if (previous !== value) this.#dispose?.(previous, key, 'set')
    } else {
      const e: Entry<K, V> = { key, value, size, freq: 0, queue: SMALL, prev: undefined, next: undefined }
      const ghostSize = this.#ghost.get(key)
      if (ghostSize !== undefined) {
        this.#forget(key, ghostSize)
        e.queue = MAIN
        this.#main.push(e)
      } else this.#small.push(e)
      this.#map.set(key, e)
    }
    this.#evict()
    return this
  }

  delete(key: K): boolean {
    const e = this.#map.get(key)
    if (e === undefined) return false
    this.#remove(e, 'delete')
    return true
  }

  /** Keys, the main queue first (newest first), then the small queue (newest first). */
  *keys(): Generator<K> {
    for (let e = this.#main.head; e !== undefined; e = e.next) yield e.key
    for (let e = this.#small.head; e !== undefined; e = e.next) yield e.key
  }

  clear(): void {
    const entries = [...this.#map.values()]
    this.#map.clear()
    this.#small.head = this.#small.tail = this.#main.head = this.#main.tail = undefined
    this.#small.bytes = this.#small.count = this.#main.bytes = this.#main.count = 0
    this.#ghost.clear()
    this.#ghostObjectBytes = this.#ghostKeyBytes = 0
    for (const e of entries) this.#dispose?.(e.value, e.key, 'delete')
  }

  /** Figures for tests and benchmarks. */
  stats(): { small: number; main: number; ghost: number; smallBytes: number; mainBytes: number } {
    return {
      small: this.#small.count,
      main: this.#main.count,
      ghost: this.#ghost.size,
      smallBytes: this.#small.bytes,
      mainBytes: this.#main.bytes,
    }
  }

  #remove(e: Entry<K, V>, reason: 'evict' | 'delete' | 'set'): void {
    ;(e.queue === SMALL ? this.#small : this.#main).unlink(e)
    this.#map.delete(e.key)
    this.#dispose?.(e.value, e.key, reason)
  }

  #forget(key: K, size: number): void {
    this.#ghost.delete(key)
    this.#ghostObjectBytes -= size
    this.#ghostKeyBytes -= ghostKeyBytes(key)
  }

  #remember(key: K, size: number): void {
    if (this.ghostMaxSize === 0) return
    this.#ghost.set(key, size)
    this.#ghostObjectBytes += size
    this.#ghostKeyBytes += ghostKeyBytes(key)
    while (this.#ghostObjectBytes > this.ghostMaxSize) this.#forgetOldest()
  }

  #forgetOldest(): void {
    const oldest = this.#ghost.entries().next()
    if (oldest.done === true) return
    this.#forget(oldest.value[0], oldest.value[1])
  }

  #evict(): void {
    while (this.calculatedSize > this.maxSize) {
      if (this.#small.count === 0 && this.#main.count === 0) {
        this.#forgetOldest()
        continue
      }
      if (this.#small.bytes > this.smallMaxSize || this.#main.count === 0) this.#evictSmall()
      else this.#evictMain()
    }
  }

  #evictSmall(): void {
    const e = this.#small.tail
    if (e === undefined) return
    this.#small.unlink(e)
    if (e.freq >= this.moveToMainThreshold) {
      e.freq = 0
      e.queue = MAIN
      this.#main.push(e)
      return
    }
    this.#map.delete(e.key)
    this.#remember(e.key, e.size)
    this.#dispose?.(e.value, e.key, 'evict')
  }

  #evictMain(): void {
    // Bounded: each pass decrements a counter, so at most 3 × count reinsertions before one goes.
    for (;;) {
      const e = this.#main.tail
      if (e === undefined) return
      this.#main.unlink(e)
      if (e.freq > 0) {
        e.freq--
        this.#main.push(e)
        continue
      }
      this.#map.delete(e.key)
      this.#dispose?.(e.value, e.key, 'evict')
      return
    }
  }
}
