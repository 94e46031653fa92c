import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import fc from 'fast-check'
import { Registry } from 'prom-client'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createMetrics } from '../src/metrics.ts'
import { createDiskTier, type DiskTier, type DiskTierInit } from '../src/store/index.ts'

const KiB = 1024
const MiB = 1024 * KiB
const code = (c: string) => expect.objectContaining({ code: c })

let dir: string
const opened: DiskTier[] = []

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'shoal-store-disk-'))
})

afterEach(async () => {
  for (const tier of opened.splice(0)) await tier.close().catch(() => {})
  await rm(dir, { recursive: true, force: true })
})

/** Bodies in files of their own unless a test asks for inline ones (`describe('… inline bodies')`). */
async function startTier(init: Partial<DiskTierInit> = {}, components = {}) {
  const tier = createDiskTier({ dir, maxBytes: 64 * MiB, inlineMaxBytes: 0, ...init }, components)
  opened.push(tier)
  const result = await tier.start()
  return { tier, result }
}

async function collect(stream: Readable | AsyncIterable<Uint8Array>): Promise<Buffer> {
  const pieces: Buffer[] = []
  for await (const piece of stream) pieces.push(piece as Buffer)
  return Buffer.concat(pieces)
}

async function files(root: string): Promise<string[]> {
  const out: string[] = []
  for (const entry of await readdir(root, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out.push(join(entry.parentPath, entry.name))
  }
  return out.sort()
}

const keyHash = (key: string) => createHash('sha256').update(key).digest('hex')
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex')

async function bodyFileOf(key: string): Promise<string> {
  const hash = keyHash(key)
  const names = await readdir(join(dir, hash.slice(0, 2)))
  const body = names.find((n) => n.startsWith(hash) && n.endsWith('.body'))
  if (body === undefined) throw new Error(`no body file for ${key}`)
  return join(dir, hash.slice(0, 2), body)
}

async function* pieces(total: number, size: number, seed = 1): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < total; at += size) {
    const n = Math.min(size, total - at)
    yield Buffer.alloc(n, (seed + at / size) & 0xff)
  }
}

describe('disk tier: options and lifecycle', () => {
  it('refuses bad options with typed errors', () => {
    expect(() => createDiskTier({ dir: '', maxBytes: 1 })).toThrow(code('SHOAL_ERR_INVALID_ARGUMENT'))
    expect(() => createDiskTier({ dir, maxBytes: -1 })).toThrow(code('SHOAL_ERR_INVALID_ARGUMENT'))
    expect(() => createDiskTier({ dir, maxBytes: 100, maxObjectBytes: 101 })).toThrow(
      code('SHOAL_ERR_INVALID_ARGUMENT'),
    )
    expect(() => createDiskTier({ dir, maxBytes: 100, durable: 'yes' as never })).toThrow(
      code('SHOAL_ERR_INVALID_ARGUMENT'),
    )
    expect(createDiskTier({ dir, maxBytes: 4 * MiB }).maxObjectBytes).toBe(MiB)
  })

  it('refuses calls before start and after close', async () => {
    const tier = createDiskTier({ dir, maxBytes: MiB })
    await expect(tier.get('k')).rejects.toEqual(code('SHOAL_ERR_UNAVAILABLE'))
    await tier.start()
    await tier.close()
    await expect(tier.put('k', {}, Buffer.from('x'))).rejects.toEqual(code('SHOAL_ERR_UNAVAILABLE'))
    await expect(tier.start()).rejects.toEqual(code('SHOAL_ERR_UNAVAILABLE'))
  })
})

describe('disk tier: reads and writes', () => {
  it('stores a body with its metadata and streams it back', async () => {
    const { tier } = await startTier()
    const body = randomBytes(300 * KiB)
    const result = await tier.put('site/a.css', { contentType: 'text/css', n: [1, 2] }, body)
    expect(result).toMatchObject({ key: 'site/a.css', size: body.length, sha256: sha256(body) })
    const entry = await tier.get('site/a.css')
    expect(entry).toMatchObject({ tier: 'disk', size: body.length, sha256: sha256(body) })
    expect(entry?.meta).toEqual({ contentType: 'text/css', n: [1, 2] })
    expect(Object.isFrozen(entry?.meta)).toBe(true)
    expect((await collect(await entry!.open())).equals(body)).toBe(true)
    expect((await entry!.readAll()).equals(body)).toBe(true)
    expect(await tier.get('missing')).toBeUndefined()
  })

  it('accepts async and sync iterables of pieces, and empty bodies', async () => {
    const { tier } = await startTier()
    await tier.put('async', {}, pieces(1000, 100))
    await tier.put('sync', {}, [Buffer.from('ab'), new Uint8Array([99])])
    await tier.put('empty', {}, new Uint8Array(0))
    expect((await collect(await (await tier.get('async'))!.open())).length).toBe(1000)
    expect((await collect(await (await tier.get('sync'))!.open())).toString()).toBe('abc')
    const empty = await tier.get('empty')
    expect(empty?.size).toBe(0)
    expect((await collect(await empty!.open())).length).toBe(0)
  })

  it('streams exactly the requested range', async () => {
    const { tier } = await startTier({ readChunkBytes: 16 * KiB })
    const body = randomBytes(200 * KiB + 17)
    await tier.put('k', {}, body)
    const entry = (await tier.get('k'))!
    const cases: Array<[number, number]> = [
      [0, 1],
      [0, body.length],
      [body.length - 1, body.length],
      [16 * KiB - 1, 16 * KiB + 1],
      [1000, 1000],
    ]
    for (const [start, end] of cases) {
      expect((await collect(await entry.open({ start, end }))).equals(body.subarray(start, end))).toBe(true)
    }
    await fc.assert(
      fc.asyncProperty(fc.nat(body.length), fc.nat(body.length), async (a, b) => {
        const start = Math.min(a, b)
        const end = Math.max(a, b)
        const got = await collect(await entry.open({ start, end }))
        return got.equals(body.subarray(start, end))
      }),
      { numRuns: 60 },
    )
    await expect(entry.open({ start: 10, end: 5 })).rejects.toEqual(code('SHOAL_ERR_RANGE_NOT_SATISFIABLE'))
    await expect(entry.open({ start: 0, end: body.length + 1 })).rejects.toEqual(
      code('SHOAL_ERR_RANGE_NOT_SATISFIABLE'),
    )
  })

  it('streams a 64 MiB object in bounded pieces, never holding it whole', async () => {
    const chunk = 256 * KiB
    const { tier } = await startTier({ maxBytes: 256 * MiB, readChunkBytes: chunk })
    const size = 64 * MiB
    const expected = createHash('sha256')
    for await (const p of pieces(size, MiB, 7)) expected.update(p)
    // Piece sizes prove the object is never held whole; a heap figure would depend on
    // when the garbage collector runs, and so on how busy the machine is.
    await tier.put('big', {}, pieces(size, MiB, 7))
    const entry = (await tier.get('big'))!
    expect(entry.size).toBe(size)
    const hash = createHash('sha256')
    let largest = 0
    let count = 0
    for await (const piece of await entry.open()) {
      largest = Math.max(largest, piece.length)
      hash.update(piece)
      count++
    }
    expect(largest).toBeLessThanOrEqual(chunk)
    expect(count).toBeGreaterThanOrEqual(size / chunk)
    expect(hash.digest('hex')).toBe(expected.digest('hex'))
    // A range in the middle is served from its offset, not by reading from the start.
    const mid = await collect(await entry.open({ start: 40 * MiB + 5, end: 40 * MiB + 5 + 3 * KiB }))
    expect(mid.length).toBe(3 * KiB)
    expect(mid.every((b) => b === ((7 + 40) & 0xff))).toBe(true)
  })

  it('keeps within its bound, evicting the least recently used', async () => {
    const { tier } = await startTier({ maxBytes: 1 * MiB, blockBytes: 4 * KiB })
    for (let i = 0; i < 30; i++) {
      await tier.put(`k${i}`, { i }, Buffer.alloc(100 * KiB, i))
      if (i >= 3) await tier.get('k0') // k0 stays in use
      expect(tier.stats().bytes).toBeLessThanOrEqual(MiB)
    }
    const stats = tier.stats()
    expect(stats.objects).toBeGreaterThanOrEqual(8)
    expect(stats.evictions).toBe(30 - stats.objects)
    expect(tier.has('k0')).toBe(true)
    expect(tier.has('k1')).toBe(false)
    expect(tier.has('k29')).toBe(true)
    await tier.close()
    let onDisk = 0
    for (const file of await files(dir)) onDisk += (await stat(file)).size
    expect(onDisk).toBeLessThanOrEqual(MiB)
    expect((await files(dir)).filter((f) => f.endsWith('.body'))).toHaveLength(stats.objects)
  })

  it('refuses objects over the size limit and stores nothing', async () => {
    const { tier } = await startTier({ maxBytes: 4 * MiB, maxObjectBytes: 100 * KiB })
    await expect(tier.put('k', {}, Buffer.alloc(10), { expectedSize: 100 * KiB + 1 })).rejects.toEqual(
      code('SHOAL_ERR_TOO_LARGE'),
    )
    await expect(tier.put('k', {}, pieces(200 * KiB, 16 * KiB))).rejects.toEqual(code('SHOAL_ERR_TOO_LARGE'))
    expect(tier.has('k')).toBe(false)
    expect(tier.stats()).toMatchObject({ objects: 0, pendingBytes: 0, writers: 0 })
    expect(await files(dir)).toEqual([join(dir, 'dirty')])
  })

  it('checks the declared size and SHA-256', async () => {
    const { tier } = await startTier()
    await expect(tier.put('k', {}, Buffer.alloc(10), { expectedSize: 11 })).rejects.toEqual(
      code('SHOAL_ERR_INTEGRITY'),
    )
    await expect(tier.put('k', {}, Buffer.alloc(12), { expectedSize: 11 })).rejects.toEqual(
      code('SHOAL_ERR_INTEGRITY'),
    )
    await expect(tier.put('k', {}, Buffer.alloc(10), { expectedSha256: '0'.repeat(64) })).rejects.toEqual(
      code('SHOAL_ERR_INTEGRITY'),
    )
    const body = Buffer.from('ok')
    await tier.put('k', {}, body, { expectedSize: 2, expectedSha256: sha256(body) })
    expect(tier.has('k')).toBe(true)
    expect((await files(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([])
  })

  it('an abort mid-put leaves nothing, even with a stalled source', async () => {
    const { tier } = await startTier()
    const controller = new AbortController()
    async function* stalled() {
      yield Buffer.alloc(300 * KiB, 1)
      yield Buffer.alloc(300 * KiB, 2)
      controller.abort()
      await new Promise(() => {}) // never yields again
    }
    await expect(tier.put('k', {}, stalled(), { signal: controller.signal })).rejects.toEqual(
      code('SHOAL_ERR_ABORTED'),
    )
    await expect(tier.put('k', {}, Buffer.alloc(1), { signal: AbortSignal.abort() })).rejects.toEqual(
      code('SHOAL_ERR_ABORTED'),
    )
    expect(tier.has('k')).toBe(false)
    expect(tier.stats()).toMatchObject({ objects: 0, pendingBytes: 0, writers: 0 })
    expect(await files(dir)).toEqual([join(dir, 'dirty')])
  })

  it('a failing source leaves nothing', async () => {
    const { tier } = await startTier()
    async function* failing() {
      yield Buffer.alloc(400 * KiB)
      throw new Error('upstream reset')
    }
    await expect(tier.put('k', {}, failing())).rejects.toThrow('upstream reset')
    expect(tier.has('k')).toBe(false)
    expect(await files(dir)).toEqual([join(dir, 'dirty')])
  })

  it('concurrent puts of one key leave one consistent entry', async () => {
    const { tier } = await startTier()
    const bodies = Array.from({ length: 12 }, (_, i) => Buffer.alloc(50 * KiB + i * 1000, i))
    async function* split(body: Buffer) {
      for (let at = 0; at < body.length; at += 7 * KiB) yield body.subarray(at, at + 7 * KiB)
    }
    await Promise.all(bodies.map((body, i) => tier.put('same', { i }, split(body))))
    const check = async (t: DiskTier) => {
      const entry = (await t.get('same'))!
      const i = entry.meta.i as number
      const got = await collect(await entry.open())
      expect(got.length).toBe(50 * KiB + i * 1000)
      expect(got.every((b) => b === i)).toBe(true)
    }
    await check(tier)
    expect(tier.stats().objects).toBe(1)
    await tier.close()
    const left = (await files(dir)).filter(
      (f) => f.endsWith('.meta') || f.endsWith('.body') || f.endsWith('.tmp'),
    )
    expect(left).toHaveLength(2)
    const again = await startTier()
    expect(again.result).toMatchObject({ objects: 1, removedOrphans: 0, removedCorrupt: 0 })
    await check(again.tier)
  })

  it('a reader keeps consistent bytes while the key is replaced or deleted under it', async () => {
    const { tier } = await startTier({ readChunkBytes: 16 * KiB })
    const first = Buffer.alloc(200 * KiB, 1)
    await tier.put('k', { v: 1 }, first)
    const entry = (await tier.get('k'))!
    const stream = await entry.open()
    const iterator = stream[Symbol.asyncIterator]()
    const head = await iterator.next()
    await tier.put('k', { v: 2 }, Buffer.alloc(300 * KiB, 2))
    const stale = (await tier.get('k'))!
    const opened = await stale.open({ start: 0, end: 10 }) // the new body, opened before the delete
    await tier.delete('k')
    const rest: Buffer[] = [head.value as Buffer]
    for (let r = await iterator.next(); r.done !== true; r = await iterator.next())
      rest.push(r.value as Buffer)
    expect(Buffer.concat(rest).equals(first)).toBe(true)
    expect((await collect(opened)).equals(Buffer.alloc(10, 2))).toBe(true)
    // An entry found before its body was removed reports it as gone, not as bytes.
    await tier.close() // waits for background removals
    await expect(entry.open()).rejects.toEqual(code('SHOAL_ERR_NOT_FOUND'))
  })

  it('updates metadata atomically, keeping the body; survives restart', async () => {
    const { tier } = await startTier()
    const body = randomBytes(10 * KiB)
    const put = await tier.put('k', { etag: '"1"', age: 0 }, body)
    const bodyFile = await bodyFileOf('k')
    expect(await tier.updateMeta('k', { etag: '"1"', age: 300, revalidated: true })).toBe(true)
    expect(tier.stat('k')!.version).toBeGreaterThan(put.version)
    expect(await tier.updateMeta('missing', {})).toBe(false)
    expect(await bodyFileOf('k')).toBe(bodyFile)
    await tier.close()
    const again = await startTier()
    const entry = (await again.tier.get('k'))!
    expect(entry.meta).toEqual({ etag: '"1"', age: 300, revalidated: true })
    expect((await entry.readAll()).equals(body)).toBe(true)
  })

  it('deletes, lists keys and entries by prefix', async () => {
    const { tier } = await startTier()
    await tier.put('site-a/x', { n: 1 }, Buffer.from('1'))
    await tier.put('site-a/y', { n: 2 }, Buffer.from('22'))
    await tier.put('site-b/z', { n: 3 }, Buffer.from('333'))
    expect(tier.keys().sort()).toEqual(['site-a/x', 'site-a/y', 'site-b/z'])
    const listed = []
    for await (const info of tier.entries({ prefix: 'site-a/' })) listed.push(info)
    expect(listed.map((e) => [e.key, e.size, e.meta.n])).toEqual([
      ['site-a/x', 1, 1],
      ['site-a/y', 2, 2],
    ])
    expect(await tier.delete('site-a/x')).toBe(true)
    expect(await tier.delete('site-a/x')).toBe(false)
    expect(await tier.get('site-a/x')).toBeUndefined()
    await tier.close()
    expect((await files(dir)).filter((f) => f.endsWith('.meta'))).toHaveLength(2)
  })
})

describe('disk tier: writers', () => {
  it('shows nothing until commit, and nothing at all after abort', async () => {
    const { tier } = await startTier()
    const writer = tier.createWriter('k', { from: 'origin' })
    await writer.write(Buffer.from('hello '))
    await writer.write(Buffer.from('world'))
    expect(writer.bytesWritten).toBe(11)
    expect(tier.has('k')).toBe(false)
    expect(await tier.get('k')).toBeUndefined()
    const result = await writer.commit({ meta: { from: 'origin', verified: true } })
    expect(result.meta).toEqual({ from: 'origin', verified: true })
    expect((await (await tier.get('k'))!.readAll()).toString()).toBe('hello world')
    await expect(writer.write(Buffer.from('more'))).rejects.toEqual(code('SHOAL_ERR_INVALID_ARGUMENT'))

    const dropped = tier.createWriter('other', {})
    await dropped.write(Buffer.alloc(500 * KiB))
    await dropped.abort()
    await dropped.abort()
    await expect(dropped.commit()).rejects.toEqual(code('SHOAL_ERR_ABORTED'))
    expect(tier.has('other')).toBe(false)
    expect(tier.stats()).toMatchObject({ pendingBytes: 0, writers: 0 })
    expect((await files(dir)).filter((f) => f.endsWith('.tmp') || f.includes(keyHash('other')))).toEqual([])
  })

  it('takes a body handed over with the commit, writing nothing before it', async () => {
    const { tier } = await startTier()
    const body = randomBytes(64 * KiB)
    const writer = tier.createWriter('whole', { n: 1 }, { expectedSize: body.length })
    expect((await files(dir)).filter((f) => f.includes(keyHash('whole')))).toEqual([])
    const result = await writer.commit({ body })
    expect(result).toMatchObject({ size: body.length, sha256: sha256(body) })
    expect((await (await tier.get('whole'))!.readAll()).equals(body)).toBe(true)
    expect((await files(dir)).filter((f) => f.includes(keyHash('whole')))).toHaveLength(2)

    // Pieces written, then the rest with the commit.
    const split = tier.createWriter('split', {}, { expectedSize: body.length })
    await split.write(body.subarray(0, 1000))
    await split.commit({ body: body.subarray(1000) })
    expect((await (await tier.get('split'))!.readAll()).equals(body)).toBe(true)

    // The declared length still holds, and a refused commit leaves nothing.
    const short = tier.createWriter('short', {}, { expectedSize: body.length })
    await expect(short.commit({ body: body.subarray(1) })).rejects.toEqual(code('SHOAL_ERR_INTEGRITY'))
    const long = tier.createWriter('long', {}, { expectedSize: 10 })
    await expect(long.commit({ body })).rejects.toEqual(code('SHOAL_ERR_INTEGRITY'))
    await expect(tier.createWriter('bad', {}).commit({ body: 'x' as never })).rejects.toEqual(
      code('SHOAL_ERR_INVALID_ARGUMENT'),
    )
    expect(tier.has('short') || tier.has('long')).toBe(false)
    for (const key of ['short', 'long']) {
      expect((await files(dir)).filter((f) => f.includes(keyHash(key)))).toEqual([])
    }
    expect(tier.stats()).toMatchObject({ objects: 2, pendingBytes: 0 })
  })

  it("aborts on the writer's signal", async () => {
    const { tier } = await startTier()
    const controller = new AbortController()
    const writer = tier.createWriter('k', {}, { signal: controller.signal })
    await writer.write(Buffer.alloc(400 * KiB))
    controller.abort()
    await expect(writer.write(Buffer.alloc(1))).rejects.toEqual(code('SHOAL_ERR_ABORTED'))
    await expect(writer.commit()).rejects.toEqual(code('SHOAL_ERR_ABORTED'))
    await writer.abort() // resolves once the abort the signal started has removed the temp file
    expect((await files(dir)).filter((f) => f.endsWith('.tmp') || f.includes(keyHash('k')))).toEqual([])
  })

  it('a delete during a write makes its commit fail (a purge is not undone by a fill in flight)', async () => {
    const { tier } = await startTier()
    await tier.put('k', { v: 1 }, Buffer.from('old'))
    const writer = tier.createWriter('k', { v: 2 })
    await writer.write(Buffer.from('stale fill'))
    await tier.delete('k')
    await expect(writer.commit()).rejects.toEqual(code('SHOAL_ERR_CONFLICT'))
    expect(tier.has('k')).toBe(false)
  })

  it('close aborts writers in progress and removes their temp files', async () => {
    const { tier } = await startTier()
    const writer = tier.createWriter('k', {})
    await writer.write(Buffer.alloc(600 * KiB))
    await tier.close()
    await expect(writer.commit()).rejects.toEqual(code('SHOAL_ERR_ABORTED'))
    expect((await files(dir)).filter((f) => f.endsWith('.tmp') || f.includes(keyHash('k')))).toEqual([])
  })
})

describe('disk tier: restart and recovery', () => {
  it('rebuilds its index from the files, serving the same bytes and metadata', async () => {
    const { tier } = await startTier()
    const bodies = new Map<string, Buffer>()
    for (let i = 0; i < 20; i++) {
      const body = randomBytes(1000 + i * 3000)
      bodies.set(`k${i}`, body)
      await tier.put(`k${i}`, { i, type: 'application/octet-stream' }, body)
    }
    const before = tier.stats()
    await tier.close()
    const { tier: again, result } = await startTier()
    expect(result).toMatchObject({
      objects: 20,
      clean: true,
      removedTemp: 0,
      removedCorrupt: 0,
      removedOrphans: 0,
    })
    expect(again.stats().bytes).toBe(before.bytes)
    for (const [key, body] of bodies) {
      const entry = (await again.get(key))!
      expect(entry.meta).toEqual({ i: Number(key.slice(1)), type: 'application/octet-stream' })
      expect((await collect(await entry.open())).equals(body)).toBe(true)
    }
  })

  it('notices a crash (no close) and still serves what was committed', async () => {
    const { tier } = await startTier()
    await tier.put('k', { a: 1 }, Buffer.from('committed'))
    // No close: the process "crashed". A new tier over the same directory:
    const { tier: again, result } = await startTier()
    expect(result).toMatchObject({ clean: false, objects: 1 })
    expect((await (await again.get('k'))!.readAll()).toString()).toBe('committed')
  })

  it('deletes the body of a write a crash interrupted', async () => {
    const { tier } = await startTier()
    await tier.put('k', {}, Buffer.from('kept'))
    const writer = tier.createWriter('cut', {})
    await writer.write(Buffer.alloc(300 * KiB, 7)) // past the write buffer: on disk already
    expect((await files(dir)).filter((f) => f.includes(keyHash('cut')))).toHaveLength(1)
    // No commit and no close: a crash.
    const { tier: again, result } = await startTier()
    expect(result).toMatchObject({ clean: false, objects: 1, removedOrphans: 1 })
    expect(again.has('cut')).toBe(false)
    expect((await files(dir)).filter((f) => f.includes(keyHash('cut')))).toEqual([])
  })

  it('deletes a torn temp file left by a crash', async () => {
    const { tier } = await startTier()
    await tier.put('k', {}, Buffer.from('x'))
    await tier.close()
    const hash = keyHash('other')
    const { mkdir } = await import('node:fs/promises')
    await mkdir(join(dir, hash.slice(0, 2)), { recursive: true })
    const torn = join(dir, hash.slice(0, 2), `${hash}.0123456789ab.tmp`)
    await writeFile(torn, Buffer.alloc(12345, 1))
    const { tier: again, result } = await startTier()
    expect(result.removedTemp).toBe(1)
    expect(await files(dir)).not.toContain(torn)
    expect(again.has('k')).toBe(true)
    expect(again.has('other')).toBe(false)
  })

  it('drops a truncated body at start and never serves it', async () => {
    const { tier } = await startTier()
    await tier.put('k', {}, randomBytes(100 * KiB))
    await tier.put('ok', {}, randomBytes(10 * KiB))
    await tier.close()
    await truncate(await bodyFileOf('k'), 50 * KiB)
    const { tier: again, result } = await startTier()
    expect(result).toMatchObject({ objects: 1, removedCorrupt: 1, removedOrphans: 1 })
    expect(await again.get('k')).toBeUndefined()
    expect((await files(dir)).filter((f) => f.includes(keyHash('k')))).toEqual([])
  })

  it('drops a header that fails its checksum, and bodies no header names, at start after a crash', async () => {
    const { tier } = await startTier()
    await tier.put('k', { a: 1 }, Buffer.from('body'))
    // No close: a crash, so every header is read at the next start.
    const hash = keyHash('k')
    const metaFile = join(dir, hash.slice(0, 2), `${hash}.meta`)
    const header = await readFile(metaFile, 'utf8')
    await writeFile(metaFile, header.replace('"a":1', '"a":2'))
    const orphan = join(dir, 'ff', `${'f'.repeat(64)}.0011223344556677.body`)
    const { mkdir } = await import('node:fs/promises')
    await mkdir(join(dir, 'ff'), { recursive: true })
    await writeFile(orphan, 'nobody')
    const { tier: again, result } = await startTier()
    expect(result).toMatchObject({ objects: 0, removedCorrupt: 1, removedOrphans: 2 })
    expect(again.has('k')).toBe(false)
    expect((await files(dir)).filter((f) => f.endsWith('.body') || f.endsWith('.meta'))).toEqual([])
  })

  it('after a clean close, starts from the snapshot with one stat per entry; damage found later is dropped', async () => {
    const { tier } = await startTier()
    for (let i = 0; i < 5; i++) await tier.put(`k${i}`, { i }, Buffer.alloc(1000 * (i + 1), i))
    await tier.close()
    // Damage done while the node was stopped:
    const hash = keyHash('k1')
    const metaFile = join(dir, hash.slice(0, 2), `${hash}.meta`)
    await writeFile(metaFile, (await readFile(metaFile, 'utf8')).replace('"i":1', '"i":9'))
    await truncate(await bodyFileOf('k2'), 10)
    const { tier: again, result } = await startTier()
    expect(result).toMatchObject({ clean: true, headersRead: 0, objects: 4, removedCorrupt: 1 })
    expect(again.has('k2')).toBe(false) // lengths are always checked at start
    await rm(join(dir, keyHash('k3').slice(0, 2), `${keyHash('k3')}.meta`)) // removed from outside
    expect(await again.get('k1')).toBeUndefined() // a bad header is found when it is read
    expect(again.has('k1')).toBe(false)
    expect(await again.get('k3')).toBeUndefined() // a vanished header drops the entry
    expect(again.has('k3')).toBe(false)
    expect((await (await again.get('k4'))!.readAll()).equals(Buffer.alloc(5000, 4))).toBe(true)
    expect(again.stats().objects).toBe(2)
  })

  it('detects a corrupted body on a whole read: IntegrityError before the end, entry deleted', async () => {
    const registry = new Registry()
    const metrics = createMetrics(registry)
    const { tier } = await startTier({ readChunkBytes: 16 * KiB }, { metrics })
    const body = randomBytes(100 * KiB)
    await tier.put('k', {}, body)
    const file = await bodyFileOf('k')
    const bytes = await readFile(file)
    bytes[70 * KiB] = (bytes[70 * KiB] ?? 0) ^ 0xff
    await writeFile(file, bytes)
    const entry = (await tier.get('k'))!
    let received = 0
    await expect(
      (async () => {
        for await (const piece of await entry.open()) received += piece.length
      })(),
    ).rejects.toEqual(code('SHOAL_ERR_INTEGRITY'))
    expect(received).toBeLessThan(body.length) // the consumer never got a complete corrupt body
    expect(tier.has('k')).toBe(false)
    expect(await tier.get('k')).toBeUndefined()
    expect(
      (await registry.getSingleMetric('shoal_edge_integrity_failures_total')?.get())?.values[0]?.value,
    ).toBe(1)
    await tier.close()
    expect((await files(dir)).filter((f) => f.includes(keyHash('k')))).toEqual([])
  })

  it('keeps access order across a clean restart', async () => {
    let clock = 1_000
    const now = () => clock++
    const { tier } = await startTier({ maxBytes: 400 * KiB, blockBytes: 4 * KiB, now })
    for (const key of ['a', 'b', 'c']) await tier.put(key, {}, Buffer.alloc(100 * KiB))
    await tier.get('a')
    await tier.close()
    const { tier: again } = await startTier({ maxBytes: 400 * KiB, blockBytes: 4 * KiB, now })
    expect(again.keys()).toEqual(['b', 'c', 'a'])
    await again.put('d', {}, Buffer.alloc(100 * KiB))
    expect(again.has('a')).toBe(true)
    expect(again.has('b')).toBe(false)
  })

  it('without durable writes, a crash makes unchecked bodies verified before any range is served', async () => {
    const { tier } = await startTier({ durable: false })
    const body = randomBytes(64 * KiB)
    await tier.put('k', {}, body)
    // The crash lost the written bytes but kept the length (as a filesystem can):
    const file = await bodyFileOf('k')
    await writeFile(file, Buffer.alloc(body.length))
    const { tier: again, result } = await startTier({ durable: false })
    expect(result.clean).toBe(false)
    const entry = (await again.get('k'))!
    await expect(entry.open({ start: 10, end: 20 })).rejects.toEqual(code('SHOAL_ERR_INTEGRITY'))
    expect(again.has('k')).toBe(false)
  })

  it('without durable writes, a clean close syncs and vouches for what it wrote', async () => {
    const { tier } = await startTier({ durable: false })
    const body = randomBytes(64 * KiB)
    await tier.put('k', {}, body)
    await tier.close()
    const { tier: again, result } = await startTier({ durable: false })
    expect(result.clean).toBe(true)
    const entry = (await again.get('k'))!
    expect((await collect(await entry.open({ start: 10, end: 20 }))).equals(body.subarray(10, 20))).toBe(true)
  })
})

describe('disk tier: inline bodies (one file per small object)', () => {
  // As the node runs it: no fsync, so a key's first header (with its body) is written in place.
  const inline = { inlineMaxBytes: 64 * KiB, durable: false }
  const objectFiles = async (key: string) => (await files(dir)).filter((f) => f.includes(keyHash(key)))

  it('stores a small body inside its header file, serves it whole and by range', async () => {
    const { tier } = await startTier(inline)
    const body = randomBytes(64 * KiB)
    const result = await tier.put('small', { t: 1 }, body)
    expect(result).toMatchObject({ size: body.length, sha256: sha256(body) })
    expect((await objectFiles('small')).map((f) => f.slice(-5))).toEqual(['.meta'])
    const entry = await tier.get('small')
    expect(entry?.meta).toEqual({ t: 1 })
    expect((await entry!.readAll()).equals(body)).toBe(true)
    expect((await collect(await entry!.open())).equals(body)).toBe(true)
    expect(
      (await collect(await entry!.open({ start: 100, end: 40_000 }))).equals(body.subarray(100, 40_000)),
    ).toBe(true)
    await expect(entry!.open({ start: 5, end: 64 * KiB + 1 })).rejects.toEqual(
      code('SHOAL_ERR_RANGE_NOT_SATISFIABLE'),
    )
    // Larger than the inline limit: a body file of its own, as before.
    await tier.put('large', {}, randomBytes(64 * KiB + 1))
    expect(await objectFiles('large')).toHaveLength(2)
    // Footprint in whole 4 KiB blocks: the inline file (64 KiB and a header: 17 blocks), and
    // the large object's body (17 blocks) and header (1 block).
    expect(tier.stats().bytes).toBe((17 + 17 + 1) * 4 * KiB)
  })

  it('replaces, updates metadata and deletes inline entries, leaving no stray file', async () => {
    const { tier } = await startTier(inline)
    await tier.put('k', { v: 1 }, Buffer.from('first'))
    await tier.put('k', { v: 2 }, randomBytes(100 * KiB)) // now too large to be inline
    await tier.put('k', { v: 3 }, Buffer.from('third'))
    await tier.close()
    const { tier: again } = await startTier(inline)
    expect((await (await again.get('k'))!.readAll()).toString()).toBe('third')
    expect(await again.updateMeta('k', { v: 4 })).toBe(true)
    const entry = await again.get('k')
    expect(entry?.meta).toEqual({ v: 4 })
    expect((await entry!.readAll()).toString()).toBe('third')
    expect(await objectFiles('k')).toHaveLength(1)
    expect(await again.delete('k')).toBe(true)
    expect(await objectFiles('k')).toEqual([])
  })

  it('after a crash or a clean close, keeps whole inline entries and drops torn or corrupt ones', async () => {
    const { tier } = await startTier(inline)
    for (const key of ['a', 'b', 'c', 'd'])
      await tier.put(key, { key }, Buffer.alloc(10 * KiB, key.charCodeAt(0)))
    await tier.close()
    const fileOf = async (key: string) => (await objectFiles(key))[0]!
    // Cut short (a write the crash interrupted), and a body flipped in place.
    await truncate(await fileOf('b'), (await stat(await fileOf('b'))).size - 100)
    const c = await readFile(await fileOf('c'))
    c[c.length - 1] = c[c.length - 1]! ^ 0xff
    await writeFile(await fileOf('c'), c)
    // The snapshot of the clean close still describes b's old length: b is dropped at once.
    const { tier: again, result } = await startTier(inline)
    expect(result).toMatchObject({ clean: true, objects: 3, removedCorrupt: 1 })
    expect(again.has('b')).toBe(false)
    // c's length is right: its bytes are checked as it is read, and it is dropped.
    await expect((await again.get('c'))!.readAll()).rejects.toEqual(code('SHOAL_ERR_INTEGRITY'))
    expect(again.has('c')).toBe(false)
    expect((await (await again.get('a'))!.readAll()).equals(Buffer.alloc(10 * KiB, 0x61))).toBe(true)
    // No close: a crash. Every header is read again; d is cut short now.
    await truncate(await fileOf('d'), 200)
    const { tier: third, result: afterCrash } = await startTier(inline)
    expect(afterCrash).toMatchObject({ clean: false, objects: 1, removedCorrupt: 1 })
    expect(third.has('a')).toBe(true)
    expect((await files(dir)).filter((f) => /\.(meta|body|tmp)$/.test(f))).toHaveLength(1)
  })
})
