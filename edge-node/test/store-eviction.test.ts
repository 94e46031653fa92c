import fc from 'fast-check'
import { LRUCache } from 'lru-cache'
import { describe, expect, it } from 'vitest'
import { createByteCache, createMemoryTier, S3FifoCache } from '../src/store/index.ts'

const KiB = 1024
const invalid = expect.objectContaining({ code: 'SHOAL_ERR_INVALID_ARGUMENT' })

describe('S3-FIFO byte cache', () => {
  it('refuses bad options with typed errors', () => {
    expect(() => new S3FifoCache({ maxSize: 0 })).toThrow(invalid)
    expect(() => new S3FifoCache({ maxSize: 100, smallRatio: 2 })).toThrow(invalid)
    expect(() => new S3FifoCache({ maxSize: 100, moveToMainThreshold: 0 })).toThrow(invalid)
    expect(() => new S3FifoCache({ maxSize: 100 }).set('k', 1, { size: -1 })).toThrow(invalid)
    expect(() => createByteCache({ policy: 'fifo' as never, maxSize: 100 })).toThrow(invalid)
    expect(() => createMemoryTier({ maxBytes: 1000, policy: 'mru' as never })).toThrow(invalid)
  })

  it('builds an LRUCache itself for lru, and an S3FifoCache for s3-fifo', () => {
    expect(createByteCache({ maxSize: 100 })).toBeInstanceOf(LRUCache)
    expect(createByteCache({ policy: 's3-fifo', maxSize: 100 })).toBeInstanceOf(S3FifoCache)
  })

  it('never exceeds its bound and agrees with a model of what it holds (random operations)', () => {
    const op = fc.oneof(
      fc.record({
        kind: fc.constant('set' as const),
        key: fc.integer({ min: 0, max: 40 }),
        size: fc.integer({ min: 0, max: 300 }),
      }),
      fc.record({ kind: fc.constant('get' as const), key: fc.integer({ min: 0, max: 40 }) }),
      fc.record({ kind: fc.constant('delete' as const), key: fc.integer({ min: 0, max: 40 }) }),
    )
    fc.assert(
      fc.property(fc.array(op, { maxLength: 400 }), fc.integer({ min: 1, max: 3 }), (ops, threshold) => {
        const held = new Map<number, number>()
        const cache = new S3FifoCache<number, number>({
          maxSize: 1000,
          maxEntrySize: 250,
          moveToMainThreshold: threshold,
          dispose: (value, key, reason) => {
            // a disposed entry is always the one the model holds
            expect(held.get(key)).toBe(value)
            if (reason !== 'set') held.delete(key)
          },
        })
        let version = 0
        for (const o of ops) {
          if (o.kind === 'set') {
            const value = ++version
            cache.set(o.key, value, { size: o.size })
            if (o.size <= 250) held.set(o.key, value)
            else held.delete(o.key)
            expect(cache.has(o.key)).toBe(o.size <= 250 && cache.peek(o.key) === value)
          } else if (o.kind === 'get') {
            expect(cache.get(o.key)).toBe(held.get(o.key))
          } else {
            const had = held.has(o.key)
            expect(cache.delete(o.key)).toBe(had)
            held.delete(o.key)
          }
          expect(cache.calculatedSize).toBeLessThanOrEqual(1000)
          expect(cache.size).toBe(held.size)
          expect(new Set(cache.keys())).toEqual(new Set(held.keys()))
        }
      }),
      { numRuns: 200 },
    )
  })

  it('keeps a hot set through a scan of one-time keys, where LRU loses it', () => {
    const make = (policy: 'lru' | 's3-fifo') =>
      createByteCache<string, number>({ policy, maxSize: 100 * KiB })
    const hits = { lru: 0, 's3-fifo': 0 }
    for (const policy of ['lru', 's3-fifo'] as const) {
      const cache = make(policy)
      const hot = Array.from({ length: 50 }, (_, i) => `hot${i}`)
      // warm: the hot set is used several times
      for (let round = 0; round < 4; round++) {
        for (const k of hot) if (cache.get(k) === undefined) cache.set(k, 1, { size: KiB })
      }
      // a scan of 500 keys seen once, 1 KiB each: five times the cache
      for (let i = 0; i < 500; i++) cache.set(`scan${i}`, 1, { size: KiB })
      for (const k of hot) if (cache.get(k) !== undefined) hits[policy]++
      expect(cache.calculatedSize).toBeLessThanOrEqual(100 * KiB)
    }
    expect(hits.lru).toBe(0)
    expect(hits['s3-fifo']).toBe(50)
  })

  it('sends a key it evicted from the small queue, seen again, straight to the main queue', () => {
    const cache = new S3FifoCache<string, number>({ maxSize: 10 * KiB })
    cache.set('a', 1, { size: KiB })
    for (let i = 0; i < 12; i++) cache.set(`x${i}`, 1, { size: KiB })
    expect(cache.has('a')).toBe(false)
    cache.set('a', 2, { size: KiB })
    expect(cache.stats().main).toBe(1)
    // a second scan does not push it out: it sits in the main queue
    for (let i = 0; i < 20; i++) cache.set(`y${i}`, 1, { size: KiB })
    expect(cache.get('a')).toBe(2)
  })

  it('refuses an entry over maxEntrySize and drops the old one for the key', () => {
    const reasons: string[] = []
    const cache = new S3FifoCache<string, number>({
      maxSize: 1000,
      maxEntrySize: 100,
      dispose: (_v, _k, r) => reasons.push(r),
    })
    cache.set('k', 1, { size: 100 })
    cache.set('k', 2, { size: 101 })
    expect(cache.has('k')).toBe(false)
    expect(reasons).toEqual(['set'])
  })

  it('charges its ghost keys to the bound', () => {
    const cache = new S3FifoCache<string, number>({ maxSize: 2000 })
    for (let i = 0; i < 200; i++) cache.set(`key-${i}`, 1, { size: 100 })
    expect(cache.stats().ghost).toBeGreaterThan(0)
    expect(cache.calculatedSize).toBeGreaterThan(cache.stats().smallBytes + cache.stats().mainBytes)
    expect(cache.calculatedSize).toBeLessThanOrEqual(2000)
  })
})

describe('memory tier with the s3-fifo policy', () => {
  it('stays within its bound, reports evictions and keeps the same API', () => {
    const memory = createMemoryTier({ maxBytes: 100 * KiB, maxObjectBytes: 10 * KiB, policy: 's3-fifo' })
    const evicted: string[] = []
    memory.onEvict((entry) => evicted.push(entry.key))
    for (let i = 0; i < 50; i++) {
      memory.set(`k${i}`, { i }, Buffer.alloc(8 * KiB, i))
      if (i < 5) memory.get('k0')
      expect(memory.stats().bytes).toBeLessThanOrEqual(100 * KiB)
    }
    expect(evicted.length).toBeGreaterThan(30)
    expect(memory.get('k0')?.body[0]).toBe(0) // used while in the small queue: promoted, kept
    expect(memory.has('k49')).toBe(true)
    expect(memory.peek('k49')?.meta).toEqual({ i: 49 })
    expect(memory.delete('k49')).toBe(true)
    expect(memory.keys()).not.toContain('k49')
    memory.clear()
    expect(memory.stats()).toEqual({ bytes: 0, objects: 0, maxBytes: 100 * KiB })
  })
})
