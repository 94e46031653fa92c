import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  createDiskTier,
  createMemoryTier,
  createObjectStore,
  createTieredStore,
  type ObjectStore,
  type StoreEntry,
} from '../src/store/index.ts'

const KiB = 1024
const MiB = 1024 * KiB
const code = (c: string) => expect.objectContaining({ code: c })

let dir: string
const stores: ObjectStore[] = []

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'shoal-store-tiered-'))
})

afterEach(async () => {
  for (const store of stores.splice(0)) await store.close().catch(() => {})
  await rm(dir, { recursive: true, force: true })
})

async function open(memoryBytes = 4 * MiB, maxObjectBytes = 256 * KiB, inlineMaxBytes = 0) {
  const store = createObjectStore({
    memory: { maxBytes: memoryBytes, maxObjectBytes },
    // Bodies in files of their own (the tests reach for them), unless a test asks.
    disk: { dir, maxBytes: 64 * MiB, inlineMaxBytes },
  })
  stores.push(store)
  await store.start()
  return store
}

async function bodyOf(entry: StoreEntry | undefined): Promise<Buffer> {
  if (entry === undefined) throw new Error('no entry')
  if (entry.tier === 'memory') return entry.body
  const pieces: Buffer[] = []
  for await (const piece of await entry.open()) pieces.push(piece as Buffer)
  return Buffer.concat(pieces)
}

async function bodyFileOf(key: string): Promise<string> {
  const hash = createHash('sha256').update(key).digest('hex')
  const names = await readdir(join(dir, hash.slice(0, 2)))
  const name = names.find((n) => n.startsWith(hash) && n.endsWith('.body'))
  if (name === undefined) throw new Error('no body file')
  return join(dir, hash.slice(0, 2), name)
}

describe('tiered store', () => {
  it('refuses missing parts', () => {
    expect(() => createTieredStore({} as never)).toThrow(code('SHOAL_ERR_INVALID_ARGUMENT'))
    expect(() => createObjectStore(undefined as never)).toThrow(code('SHOAL_ERR_INVALID_ARGUMENT'))
  })

  it('puts small objects in both tiers and large ones on disk only', async () => {
    const store = await open()
    const small = randomBytes(10 * KiB)
    const large = randomBytes(MiB)
    await store.put('small', { t: 's' }, small)
    await store.put('large', { t: 'l' }, large)
    expect(store.memory.get('small')?.body.equals(small)).toBe(true)
    expect(store.memory.has('large')).toBe(false)
    expect(store.disk.has('small') && store.disk.has('large')).toBe(true)
    const hit = await store.get('large')
    expect(hit?.tier).toBe('disk')
    expect((await bodyOf(hit)).equals(large)).toBe(true)
    expect(store.memory.has('large')).toBe(false)
    expect(store.stats()).toMatchObject({ memory: { objects: 1 }, disk: { objects: 2 } })
  })

  it('serves from memory first, and promotes small disk objects after a restart', async () => {
    const store = await open()
    const body = randomBytes(20 * KiB)
    await store.put('k', { n: 1 }, body)
    await store.close()
    const again = await open()
    expect(again.memory.has('k')).toBe(false)
    const first = await again.get('k')
    expect(first?.tier).toBe('memory')
    expect(first?.meta).toEqual({ n: 1 })
    expect((await bodyOf(first)).equals(body)).toBe(true)
    expect(again.memory.get('k')).toBe(first)
    expect(await again.get('k')).toBe(first)
  })

  it('a corrupt small object is not promoted, is deleted, and reads as a miss', async () => {
    const store = await open()
    await store.put('k', {}, randomBytes(30 * KiB))
    await store.close()
    const file = await bodyFileOf('k')
    const bytes = await readFile(file)
    bytes[100] = (bytes[100] ?? 0) ^ 1
    await writeFile(file, bytes)
    const again = await open()
    expect(await again.get('k')).toBeUndefined()
    expect(again.memory.has('k')).toBe(false)
    expect(again.disk.has('k')).toBe(false)
  })

  it('a writer fills both tiers only on commit', async () => {
    const store = await open()
    const writer = store.createWriter('k', { status: 200 })
    const body = randomBytes(100 * KiB)
    for (let at = 0; at < body.length; at += 16 * KiB) {
      const piece = Buffer.from(body.subarray(at, at + 16 * KiB))
      await writer.write(piece)
      piece.fill(0) // the caller may reuse its buffer once write resolves
    }
    expect(store.has('k')).toBe(false)
    await writer.commit()
    expect(store.memory.get('k')?.body.equals(body)).toBe(true)
    expect((await store.disk.get('k'))?.sha256).toBe(createHash('sha256').update(body).digest('hex'))

    const dropped = store.createWriter('gone', {})
    await dropped.write(Buffer.alloc(10))
    await dropped.abort()
    expect(store.has('gone')).toBe(false)
  })

  it('updates metadata in both tiers, and deletes from both', async () => {
    const store = await open()
    await store.put('k', { etag: '"a"', age: 1 }, Buffer.from('body'))
    const before = store.memory.get('k')!
    expect(await store.updateMeta('k', { etag: '"a"', age: 2 })).toBe(true)
    expect(store.memory.get('k')?.meta).toEqual({ etag: '"a"', age: 2 })
    expect(store.memory.get('k')?.body).toBe(before.body)
    expect((await store.disk.get('k'))?.meta).toEqual({ etag: '"a"', age: 2 })
    expect(await store.updateMeta('missing', {})).toBe(false)
    expect(await store.delete('k')).toBe(true)
    expect(store.memory.has('k') || store.disk.has('k')).toBe(false)
    expect(await store.get('k')).toBeUndefined()
  })

  it('replacing a small object by a large one drops the stale memory copy', async () => {
    const store = await open()
    await store.put('k', { v: 1 }, Buffer.alloc(1000, 1))
    await store.put('k', { v: 2 }, Buffer.alloc(MiB, 2))
    expect(store.memory.has('k')).toBe(false)
    const entry = await store.get('k')
    expect(entry?.meta).toEqual({ v: 2 })
    expect(entry?.size).toBe(MiB)
  })

  it('concurrent puts of one key leave memory and disk agreeing', async () => {
    const store = await open()
    await Promise.all(Array.from({ length: 16 }, (_, i) => store.put('k', { i }, Buffer.alloc(1000 + i, i))))
    const inMemory = store.memory.get('k')!
    const onDisk = (await store.disk.get('k'))!
    expect(onDisk.sha256).toBe(inMemory.sha256)
    expect(onDisk.meta).toEqual(inMemory.meta)
    expect(inMemory.body.every((b) => b === inMemory.meta.i)).toBe(true)
  })

  it('a writer of declared length assembles the body once for both tiers, and still checks it', async () => {
    const store = await open()
    const body = randomBytes(64 * KiB)
    const writer = store.createWriter('declared', { n: 1 }, { expectedSize: body.length })
    for (let at = 0; at < body.length; at += 5000) await writer.write(body.subarray(at, at + 5000))
    expect(writer.bytesWritten).toBe(body.length)
    expect(store.has('declared')).toBe(false)
    const result = await writer.commit()
    const held = store.memory.get('declared')
    expect(held?.body.equals(body)).toBe(true)
    // The metadata normalised for the disk is the very object memory holds (not normalised twice).
    expect(held?.meta).toBe(result.meta)
    expect(Object.isFrozen(held?.meta)).toBe(true)
    // Its own allocation of exactly the body's size, not a view into a shared pool.
    expect(held?.body.buffer.byteLength).toBe(body.length)
    expect((await readFile(await bodyFileOf('declared'))).equals(body)).toBe(true)

    // Longer than declared: refused at the piece that overflows; shorter: refused at commit.
    const long = store.createWriter('long', {}, { expectedSize: 10 })
    await long.write(Buffer.alloc(8))
    await expect(long.write(Buffer.alloc(8))).rejects.toEqual(code('SHOAL_ERR_INTEGRITY'))
    const short = store.createWriter('short', {}, { expectedSize: 10 })
    await short.write(Buffer.alloc(8))
    await expect(short.commit()).rejects.toEqual(code('SHOAL_ERR_INTEGRITY'))
    // An aborted signal is reported at the next write, not only at commit.
    const controller = new AbortController()
    const aborted = store.createWriter('aborted', {}, { expectedSize: 10, signal: controller.signal })
    await aborted.write(Buffer.alloc(4))
    controller.abort()
    await expect(aborted.write(Buffer.alloc(4))).rejects.toEqual(code('SHOAL_ERR_ABORTED'))
    for (const key of ['long', 'short', 'aborted']) {
      expect(store.has(key)).toBe(false)
    }
    expect(store.stats().disk).toMatchObject({ objects: 1, pendingBytes: 0, writers: 0 })
  })

  it('purges by prefix, lists entries once each', async () => {
    const store = await open()
    await store.put('blog/a', { n: 1 }, Buffer.from('a'))
    await store.put('blog/b', { n: 2 }, Buffer.from('b'))
    await store.put('shop/c', { n: 3 }, Buffer.from('c'))
    const listed: string[] = []
    for await (const info of store.entries()) listed.push(info.key)
    expect(listed.sort()).toEqual(['blog/a', 'blog/b', 'shop/c'])
    expect(await store.deleteWhere((key) => key.startsWith('blog/'))).toBe(2)
    expect(store.keys()).toEqual(['shop/c'])
  })

  it('objects pushed out of memory are marked used on disk', async () => {
    const memory = createMemoryTier({ maxBytes: 64 * KiB, maxObjectBytes: 16 * KiB })
    const disk = createDiskTier({ dir, maxBytes: 64 * MiB })
    const store = createTieredStore({ memory, disk })
    stores.push(store)
    await store.start()
    for (let i = 0; i < 10; i++) await store.put(`k${i}`, {}, Buffer.alloc(12 * KiB, i))
    const order = disk.keys()
    // Memory holds four of these; k0 was pushed out when a later key came in, and was then
    // marked used on disk: it is no longer the oldest there, though it was written first.
    expect(memory.has('k0')).toBe(false)
    expect(order[0]).not.toBe('k0')
    expect(order.indexOf('k0')).toBeGreaterThan(order.indexOf('k5'))
  })
})

/** Fills `key` the way the origin cache does: declared length, admitted at the second use. */
async function fill(store: ObjectStore, key: string, body: Buffer, meta: object = {}) {
  const writer = store.createWriter(key, meta, { expectedSize: body.length, admitOnReuse: true })
  await writer.write(body.subarray(0, 1000))
  await writer.write(body.subarray(1000))
  return writer.commit()
}

async function diskBody(store: ObjectStore, key: string): Promise<Buffer | undefined> {
  const entry = await store.disk.get(key)
  return entry === undefined ? undefined : entry.readAll()
}

const sha256 = (body: Buffer) => createHash('sha256').update(body).digest('hex')

// Admission to disk at the second use (`admitOnReuse`): see src/store/README.md.
describe('tiered store: admission to disk at the second use', () => {
  it('holds an object pulled once in memory only, and writes it to disk when it is read again', async () => {
    const store = await open()
    const body = randomBytes(64 * KiB)
    const result = await fill(store, 'a', body, { n: 1 })
    expect(result).toMatchObject({ key: 'a', size: body.length, version: 0, meta: { n: 1 } })
    expect(result.sha256).toBe(sha256(body))
    expect(store.memory.peek('a')?.body.equals(body)).toBe(true)
    expect(store.disk.has('a')).toBe(false)
    await store.saved()
    expect(store.disk.has('a')).toBe(false)

    // The second use is served from memory; the disk write happens after, off that read.
    expect(store.memory.get('a')?.body.equals(body)).toBe(true)
    await store.saved()
    expect((await diskBody(store, 'a'))?.equals(body)).toBe(true)
    expect((await store.disk.get('a'))?.meta).toEqual({ n: 1 })
    // Read again: nothing more to write.
    store.memory.get('a')
    await store.saved()
    expect(store.disk.stats().objects).toBe(1)
  })

  it('keeps the metadata a 304 gave an unsaved object when it is later written', async () => {
    const store = await open()
    const body = randomBytes(8 * KiB)
    await fill(store, 'a', body, { v: 1 })
    expect(await store.updateMeta('a', { v: 2 })).toBe(true)
    expect(store.memory.get('a')?.meta).toEqual({ v: 2 })
    await store.saved()
    expect((await store.disk.get('a'))?.meta).toEqual({ v: 2 })
  })

  it('a clean restart keeps what was reused and lets objects used once go', async () => {
    const store = await open()
    const [once, twice, saved] = [randomBytes(20 * KiB), randomBytes(20 * KiB), randomBytes(20 * KiB)]
    await fill(store, 'once', once)
    await fill(store, 'saved', saved)
    store.memory.get('saved')
    await store.saved()
    await fill(store, 'twice', twice)
    store.memory.get('twice') // reused: its write may still be pending at close
    await store.close()

    const again = await open()
    expect(again.has('once')).toBe(false)
    expect((await diskBody(again, 'saved'))?.equals(saved)).toBe(true)
    expect((await diskBody(again, 'twice'))?.equals(twice)).toBe(true)
  })

  it('after a crash serves what was written whole, loses what was only in memory, and never a torn write', async () => {
    // Small objects inline in their header file, as the node stores them.
    const store = await open(4 * MiB, 256 * KiB, 256 * KiB)
    const [kept, torn, lost] = [randomBytes(30 * KiB), randomBytes(30 * KiB), randomBytes(30 * KiB)]
    for (const [key, body] of [
      ['kept', kept],
      ['torn', torn],
    ] as const) {
      await fill(store, key, body)
      store.memory.get(key)
    }
    await store.saved()
    await fill(store, 'lost', lost)
    store.memory.get('lost') // its write is queued, and the process dies before it runs
    // A write-back cut short by the crash: the header file of `torn` holds half of what it says.
    const hash = createHash('sha256').update('torn').digest('hex')
    const names = await readdir(join(dir, hash.slice(0, 2)))
    const header = names.find((n) => n.startsWith(hash) && n.endsWith('.meta'))
    expect(header).toBeDefined()
    await truncate(join(dir, hash.slice(0, 2), header as string), 15 * KiB)
    // No close: a crash. Another store starts over the same directory.
    stores.splice(stores.indexOf(store), 1)
    const again = await open(4 * MiB, 256 * KiB, 256 * KiB)
    expect((await again.get('kept')) !== undefined).toBe(true)
    expect((await diskBody(again, 'kept'))?.equals(kept)).toBe(true)
    expect(again.has('torn')).toBe(false)
    expect(await again.get('torn')).toBeUndefined()
    // `lost` may or may not have reached the disk before the "crash"; if it did, it is whole.
    const found = await diskBody(again, 'lost')
    if (found !== undefined) expect(found.equals(lost)).toBe(true)
    await store.saved()
  })

  it('a second miss of a key that left memory unread goes to disk at once', async () => {
    // Four 12 KiB objects fit in 64 KiB of memory.
    const store = await open(64 * KiB, 16 * KiB)
    for (let i = 0; i < 8; i++) await fill(store, `k${i}`, Buffer.alloc(12 * KiB, i))
    expect(store.memory.has('k0')).toBe(false)
    expect(store.disk.has('k0')).toBe(false)
    const body = Buffer.alloc(12 * KiB, 42)
    const result = await fill(store, 'k0', body)
    expect(result.version).toBeGreaterThan(0)
    expect((await diskBody(store, 'k0'))?.equals(body)).toBe(true)
    expect(store.memory.peek('k0')?.body.equals(body)).toBe(true)
    // Used once again after that: held in memory only, like any new object.
    const other = await fill(store, 'k7b', Buffer.alloc(12 * KiB, 7))
    expect(other.version).toBe(0)
  })

  it('bounds the bytes waiting for a disk write; a clean close writes what was left out', async () => {
    // A quarter of 64 KiB may wait: one 12 KiB object, not two.
    const store = await open(64 * KiB, 16 * KiB)
    await fill(store, 'a', Buffer.alloc(12 * KiB, 1))
    await fill(store, 'b', Buffer.alloc(12 * KiB, 2))
    store.memory.get('a')
    store.memory.get('b')
    await store.saved()
    expect(store.disk.has('a')).toBe(true)
    expect(store.disk.has('b')).toBe(false)
    expect(store.memory.get('b')?.body.equals(Buffer.alloc(12 * KiB, 2))).toBe(true)
    await store.close()
    const again = await open(64 * KiB, 16 * KiB)
    expect((await diskBody(again, 'b'))?.equals(Buffer.alloc(12 * KiB, 2))).toBe(true)
  })

  it('replaces on disk an object that is on disk already', async () => {
    const store = await open()
    await store.put('x', { old: true }, Buffer.from('old body'))
    const body = randomBytes(4 * KiB)
    const result = await fill(store, 'x', body, { old: false })
    expect(result.version).toBeGreaterThan(0)
    expect((await diskBody(store, 'x'))?.equals(body)).toBe(true)
    expect(store.memory.get('x')?.body.equals(body)).toBe(true)
  })

  it('keeps pieces that are views of one buffer of the declared length without a copy; copies any other piece', async () => {
    const store = await open()
    // The raw upstream client's presized body: consecutive views of one buffer.
    const whole = Buffer.allocUnsafeSlow(64 * KiB)
    randomBytes(64 * KiB).copy(whole)
    await fill(store, 'views', whole)
    expect(store.memory.peek('views')?.body.buffer).toBe(whole.buffer)
    expect(store.memory.peek('views')?.body.equals(whole)).toBe(true)
    // A view, then a piece of other memory: the body is copied from there on, and the
    // first buffer is left as it was.
    const first = Buffer.from(whole)
    const other = randomBytes(60 * KiB)
    const writer = store.createWriter('mixed', {}, { expectedSize: first.length, admitOnReuse: true })
    await writer.write(first.subarray(0, 4 * KiB))
    await writer.write(other)
    await writer.commit()
    const stored = store.memory.peek('mixed')?.body
    expect(stored?.buffer).not.toBe(first.buffer)
    expect(stored?.equals(Buffer.concat([first.subarray(0, 4 * KiB), other]))).toBe(true)
    expect(first.equals(whole)).toBe(true)
    // Views of a larger buffer, or not from its start, are copied.
    const larger = randomBytes(128 * KiB)
    await fill(store, 'larger', larger.subarray(0, 64 * KiB))
    expect(store.memory.peek('larger')?.body.buffer).not.toBe(larger.buffer)
    expect(store.memory.peek('larger')?.body.equals(larger.subarray(0, 64 * KiB))).toBe(true)
    // Still checked: a view of the right buffer past the declared length fails the fill.
    const long = store.createWriter('long', {}, { expectedSize: 10, admitOnReuse: true })
    const ten = Buffer.allocUnsafeSlow(10)
    await long.write(ten)
    await expect(long.write(ten.subarray(0, 1))).rejects.toEqual(code('SHOAL_ERR_INTEGRITY'))
    expect(store.has('long')).toBe(false)
  })

  it('objects too large for memory go to disk at the commit; of unknown length, once they outgrow it', async () => {
    const store = await open(4 * MiB, 64 * KiB)
    const large = randomBytes(100 * KiB)
    await fill(store, 'large', large)
    expect((await diskBody(store, 'large'))?.equals(large)).toBe(true)
    // No declared length: held in memory while it fits, like any other…
    const small = store.createWriter('unknown', {}, { admitOnReuse: true })
    await small.write(Buffer.from('no declared '))
    await small.write(Buffer.from('length'))
    expect(small.bytesWritten).toBe(18)
    const result = await small.commit()
    expect(result).toMatchObject({ size: 18, version: 0 })
    expect(store.disk.has('unknown')).toBe(false)
    expect(store.memory.get('unknown')?.body.toString()).toBe('no declared length')
    // …and handed to the disk, pieces so far included, once it outgrows memory.
    const body = randomBytes(150 * KiB)
    const grows = store.createWriter('grows', { g: 1 }, { admitOnReuse: true })
    for (let at = 0; at < body.length; at += 40 * KiB) await grows.write(body.subarray(at, at + 40 * KiB))
    expect(grows.bytesWritten).toBe(body.length)
    expect((await grows.commit()).version).toBeGreaterThan(0)
    expect((await diskBody(store, 'grows'))?.equals(body)).toBe(true)
    // The same through the commit's body, and a purge before the overflow still wins.
    const last = store.createWriter('last', {}, { admitOnReuse: true })
    await last.write(body.subarray(0, 10 * KiB))
    await last.commit({ body: body.subarray(10 * KiB) })
    expect((await diskBody(store, 'last'))?.equals(body)).toBe(true)
    const purged = store.createWriter('purged', {}, { admitOnReuse: true })
    await purged.write(body.subarray(0, 10 * KiB))
    await store.delete('purged')
    await expect(purged.write(body.subarray(10 * KiB))).rejects.toEqual(code('SHOAL_ERR_CONFLICT'))
    expect(store.has('purged')).toBe(false)
  })

  it('checks the body like the disk writer, and a delete wins over a fill or a pending write', async () => {
    const store = await open()
    const body = randomBytes(10 * KiB)
    const short = store.createWriter('s', {}, { expectedSize: body.length, admitOnReuse: true })
    await short.write(body.subarray(1))
    await expect(short.commit()).rejects.toEqual(code('SHOAL_ERR_INTEGRITY'))
    const long = store.createWriter('l', {}, { expectedSize: body.length - 1, admitOnReuse: true })
    await expect(long.write(body)).rejects.toEqual(code('SHOAL_ERR_INTEGRITY'))
    const wrongHash = store.createWriter(
      'h',
      {},
      {
        expectedSize: body.length,
        expectedSha256: sha256(Buffer.from('other')),
        admitOnReuse: true,
      },
    )
    await wrongHash.write(body)
    await expect(wrongHash.commit()).rejects.toEqual(code('SHOAL_ERR_INTEGRITY'))
    const controller = new AbortController()
    const aborted = store.createWriter(
      'ab',
      {},
      {
        expectedSize: body.length,
        admitOnReuse: true,
        signal: controller.signal,
      },
    )
    controller.abort()
    await expect(aborted.write(body)).rejects.toEqual(code('SHOAL_ERR_ABORTED'))
    expect(store.keys()).toEqual([])

    // A purge during the fill: the fill must not bring the object back.
    const purged = store.createWriter('p', {}, { expectedSize: body.length, admitOnReuse: true })
    await purged.write(body)
    expect(await store.delete('p')).toBe(false)
    await expect(purged.commit()).rejects.toEqual(code('SHOAL_ERR_CONFLICT'))
    expect(store.has('p')).toBe(false)

    // A purge right after the second use: the writes it queued leave nothing (one in
    // progress fails its commit: the disk tier's own purge rule, store-disk.test.ts).
    await fill(store, 'q1', body)
    await fill(store, 'q2', body)
    store.memory.get('q1')
    store.memory.get('q2')
    expect(await store.delete('q2')).toBe(true)
    expect(await store.delete('q1')).toBe(true)
    await store.saved()
    expect(store.has('q1') || store.has('q2')).toBe(false)
    await store.close()
    const again = await open()
    expect(again.has('q1') || again.has('q2')).toBe(false)
  })
})
