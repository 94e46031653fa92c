import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, readdir, rm, truncate } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createObjectStore, type ObjectStore } from '../src/store/index.ts'

// Admission to disk at the second use (`admitOnReuse`): see src/store/README.md.

const KiB = 1024
const MiB = 1024 * KiB
const code = (c: string) => expect.objectContaining({ code: c })

let dir: string
const stores: ObjectStore[] = []

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'shoal-store-admission-'))
})

afterEach(async () => {
  for (const store of stores.splice(0)) await store.close().catch(() => {})
  await rm(dir, { recursive: true, force: true })
})

async function open(memoryBytes = 4 * MiB, maxObjectBytes = 256 * KiB): Promise<ObjectStore> {
  const store = createObjectStore({
    memory: { maxBytes: memoryBytes, maxObjectBytes },
    disk: { dir, maxBytes: 64 * MiB, durable: false },
  })
  stores.push(store)
  await store.start()
  return store
}

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
    const store = await open()
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
    const again = await open()
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

  it('replaces on disk an object that is on disk already', async () => {
    const store = await open()
    await store.put('x', { old: true }, Buffer.from('old body'))
    const body = randomBytes(4 * KiB)
    const result = await fill(store, 'x', body, { old: false })
    expect(result.version).toBeGreaterThan(0)
    expect((await diskBody(store, 'x'))?.equals(body)).toBe(true)
    expect(store.memory.get('x')?.body.equals(body)).toBe(true)
  })

  it('objects too large for memory, or of unknown length, go to disk at the commit', async () => {
    const store = await open(4 * MiB, 64 * KiB)
    const large = randomBytes(100 * KiB)
    await fill(store, 'large', large)
    expect((await diskBody(store, 'large'))?.equals(large)).toBe(true)
    const writer = store.createWriter('unknown', {}, { admitOnReuse: true })
    await writer.write(Buffer.from('no declared length'))
    await writer.commit()
    expect(store.disk.has('unknown')).toBe(true)
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
