import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { createMemoryTier } from '../src/store/index.ts'

const KiB = 1024
const MiB = 1024 * KiB
const invalid = expect.objectContaining({ code: 'SHOAL_ERR_INVALID_ARGUMENT' })

describe('memory tier', () => {
  it('refuses bad options with typed errors', () => {
    expect(() => createMemoryTier({ maxBytes: 0 })).toThrow(invalid)
    expect(() => createMemoryTier({ maxBytes: Number.NaN })).toThrow(invalid)
    expect(() => createMemoryTier({ maxBytes: 1000, maxObjectBytes: 2000 })).toThrow(invalid)
    expect(() => createMemoryTier(undefined as never)).toThrow(invalid)
  })

  it('defaults the largest object to min(8 MiB, maxBytes / 8)', () => {
    expect(createMemoryTier({ maxBytes: 8 * MiB }).maxObjectBytes).toBe(MiB)
    expect(createMemoryTier({ maxBytes: 1024 * MiB }).maxObjectBytes).toBe(8 * MiB)
  })

  it('returns the stored entry synchronously, with its hash and frozen metadata', () => {
    const memory = createMemoryTier({ maxBytes: MiB })
    const body = Buffer.from('hello')
    memory.set('k', { contentType: 'text/plain', headers: { etag: '"1"' } }, body)
    const hit = memory.get('k')
    expect(hit).toBeDefined()
    expect(hit?.tier).toBe('memory')
    expect(hit?.body.toString()).toBe('hello')
    expect(hit?.size).toBe(5)
    expect(hit?.sha256).toBe(createHash('sha256').update(body).digest('hex'))
    expect(Object.isFrozen(hit?.meta)).toBe(true)
    expect(Object.isFrozen(hit?.meta.headers)).toBe(true)
    // The same object every time: a hit allocates nothing.
    expect(memory.get('k')).toBe(hit)
    expect(memory.get('missing')).toBeUndefined()
  })

  it('keeps metadata as it was when stored: one deeply frozen value per entry, an already normalised one as is', () => {
    const memory = createMemoryTier({ maxBytes: MiB })
    const meta = { headers: { 'content-type': ['text/css'] }, t: 1, skip: undefined }
    const entry = memory.set('a', meta, Buffer.from('x'))
    if (entry === undefined) throw new Error('not stored')
    // what the caller changes afterwards is not what was stored
    meta.headers['content-type'].push('text/plain')
    meta.t = 2
    expect(entry.meta).toEqual({ headers: { 'content-type': ['text/css'] }, t: 1 })
    expect(memory.get('a')?.meta).toBe(entry.meta)
    expect(Object.isFrozen((entry.meta.headers as { 'content-type': string[] })['content-type'])).toBe(true)
    // metadata read back from an entry is stored as that same value (the disk hands its own on)
    const again = memory.set('b', entry.meta, Buffer.from('y'))
    expect(again?.meta).toBe(entry.meta)
    // a replaced entry's metadata is the new one, and its footprint counts the metadata text
    const before = memory.stats().bytes
    memory.updateMeta('b', { long: 'z'.repeat(1000) })
    expect(memory.get('b')?.meta).toEqual({ long: 'z'.repeat(1000) })
    expect(memory.stats().bytes).toBeGreaterThan(before + 1000)
  })

  it('stays within its bound in bytes, evicting the least recently used', () => {
    const memory = createMemoryTier({ maxBytes: 100 * KiB, maxObjectBytes: 10 * KiB })
    const evicted: string[] = []
    memory.onEvict((entry) => evicted.push(entry.key))
    for (let i = 0; i < 50; i++) {
      memory.set(`k${i}`, { i }, Buffer.alloc(8 * KiB, i))
      if (i === 5) memory.get('k0') // k0 is used again: it outlives k1…
      expect(memory.stats().bytes).toBeLessThanOrEqual(100 * KiB)
    }
    const { objects, bytes } = memory.stats()
    expect(objects).toBeGreaterThan(5)
    expect(objects).toBeLessThan(13) // 8 KiB bodies plus overhead in 100 KiB
    expect(bytes).toBeGreaterThan(objects * 8 * KiB)
    expect(evicted[0]).toBe('k1')
    expect(memory.has('k49')).toBe(true)
    expect(memory.has('k1')).toBe(false)
  })

  it('keeps large objects out of memory and drops an older entry for the key', () => {
    const memory = createMemoryTier({ maxBytes: MiB, maxObjectBytes: 64 * KiB })
    expect(memory.set('big', {}, Buffer.alloc(64 * KiB))).toBeDefined()
    expect(memory.set('big', {}, Buffer.alloc(64 * KiB + 1))).toBeUndefined()
    expect(memory.has('big')).toBe(false)
    expect(memory.stats()).toMatchObject({ objects: 0, bytes: 0 })
  })

  it('copies a body that is a view into a larger buffer, and keeps an exact one as is', () => {
    const memory = createMemoryTier({ maxBytes: MiB })
    const slab = Buffer.alloc(64 * KiB, 7)
    const view = slab.subarray(100, 200)
    const stored = memory.set('view', {}, view)
    expect(stored?.body.buffer).not.toBe(slab.buffer)
    expect(stored?.body.buffer.byteLength).toBe(100)
    const exact = Buffer.concat([Buffer.from('abc'), Buffer.alloc(5000)])
    expect(memory.set('exact', {}, exact)?.body).toBe(exact)
  })

  it('peek does not refresh recency', () => {
    const memory = createMemoryTier({ maxBytes: 40 * KiB, maxObjectBytes: 10 * KiB })
    memory.set('a', {}, Buffer.alloc(9 * KiB))
    memory.set('b', {}, Buffer.alloc(9 * KiB))
    memory.set('c', {}, Buffer.alloc(9 * KiB))
    memory.peek('a')
    memory.set('d', {}, Buffer.alloc(9 * KiB))
    memory.set('e', {}, Buffer.alloc(9 * KiB))
    expect(memory.has('a')).toBe(false)
  })

  it('updates metadata without touching the body', () => {
    const memory = createMemoryTier({ maxBytes: MiB })
    const first = memory.set('k', { v: 1 }, Buffer.from('body'))
    const updated = memory.updateMeta('k', { v: 2 })
    expect(updated?.meta).toEqual({ v: 2 })
    expect(updated?.body).toBe(first?.body)
    expect(first?.meta).toEqual({ v: 1 }) // a reader holding the old entry sees a consistent value
    expect(memory.updateMeta('missing', {})).toBeUndefined()
  })

  it('refuses metadata that is not a JSON object, and oversized metadata', () => {
    const memory = createMemoryTier({ maxBytes: MiB, maxMetaBytes: 100 })
    expect(() => memory.set('k', [] as never, Buffer.alloc(1))).toThrow(invalid)
    expect(() => memory.set('k', { n: 1n }, Buffer.alloc(1))).toThrow(invalid)
    expect(() => memory.set('k', { s: 'x'.repeat(200) }, Buffer.alloc(1))).toThrow(
      expect.objectContaining({ code: 'SHOAL_ERR_TOO_LARGE' }),
    )
    expect(() => memory.set('', {}, Buffer.alloc(1))).toThrow(invalid)
  })

  it('deletes and clears', () => {
    const memory = createMemoryTier({ maxBytes: MiB })
    memory.set('a', {}, Buffer.alloc(10))
    memory.set('b', {}, Buffer.alloc(10))
    expect(memory.delete('a')).toBe(true)
    expect(memory.delete('a')).toBe(false)
    expect(memory.keys()).toEqual(['b'])
    memory.clear()
    expect(memory.stats()).toMatchObject({ objects: 0, bytes: 0 })
  })

  it.each(['lru', 's3-fifo'] as const)(
    'tracks unsaved entries (%s): first reuse reported once, eviction says whether one was never read',
    (policy) => {
      const memory = createMemoryTier({ maxBytes: 64 * KiB, maxObjectBytes: 16 * KiB, policy })
      const reused: string[] = []
      const evicted: [string, boolean][] = []
      memory.onReuse((entry) => reused.push(entry.key))
      memory.onEvict((entry, neverReused) => evicted.push([entry.key, neverReused]))
      const body = Buffer.alloc(12 * KiB, 1)
      memory.set('read', {}, body, { unsaved: true })
      memory.set('unread', {}, Buffer.alloc(12 * KiB, 2), { unsaved: true })
      memory.set('saved', {}, Buffer.alloc(12 * KiB, 3))
      memory.get('read')
      memory.get('read')
      memory.get('saved')
      expect(reused).toEqual(['read'])
      expect(memory.unsavedReused().map((e) => e.key)).toEqual(['read'])
      // Metadata updates keep the state; markSaved only for the body it names.
      memory.updateMeta('read', { v: 2 })
      memory.markSaved('read', Buffer.alloc(12 * KiB, 1))
      expect(memory.unsavedReused().map((e) => e.key)).toEqual(['read'])
      memory.markSaved('read', body)
      expect(memory.unsavedReused()).toEqual([])
      // The SHA-256 is computed when asked for, and right.
      expect(memory.peek('unread')?.sha256).toBe(
        createHash('sha256')
          .update(Buffer.alloc(12 * KiB, 2))
          .digest('hex'),
      )
      for (let i = 0; i < 8; i++) memory.set(`more${i}`, {}, Buffer.alloc(12 * KiB, 9), { unsaved: true })
      expect(evicted).toContainEqual(['unread', true])
      expect(evicted.find(([key]) => key === 'saved')?.[1] ?? false).toBe(false)
      expect(evicted.find(([key]) => key === 'read')?.[1] ?? false).toBe(false)
    },
  )
})
