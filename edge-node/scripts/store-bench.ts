/**
 * Micro-benchmark of the cache tiers (not a test): memory-tier hit lookups per second,
 * disk streaming throughput and the CPU cost of filling a 64 KiB object (memory only,
 * admitted to disk at its second use, against to disk at once), each beside a baseline
 * measured in the same run (A B A B…, median of the repetitions).
 *
 *   npx node edge-node/scripts/store-bench.ts [--runs 5] [--mib 256]
 *
 * Disk reads run on a warm page cache (the file was just written): they measure the
 * store's read path (syscalls, hashing, stream plumbing), not the device.
 */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { LRUCache } from 'lru-cache'
import { createDiskTier, createMemoryTier, createObjectStore } from '../src/store/index.ts'

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    mib: { type: 'string', default: '256' },
    entries: { type: 'string', default: '20000' },
  },
})
const RUNS = Number(values.runs)
const MIB = Number(values.mib)
const ENTRIES = Number(values.entries)
const MiB = 2 ** 20

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] as number
}

/** Runs each contender once per round, alternating, and returns the median of each. */
async function alternate(
  contenders: Record<string, () => Promise<number> | number>,
): Promise<Record<string, number>> {
  const samples: Record<string, number[]> = {}
  for (let round = 0; round < RUNS; round++) {
    for (const [name, run] of Object.entries(contenders)) {
      samples[name] ??= []
      samples[name].push(await run())
    }
  }
  return Object.fromEntries(Object.entries(samples).map(([name, xs]) => [name, median(xs)]))
}

// Memory tier: hit lookups per second over a hot set, against a plain Map and a bare LRUCache.
const KEYS = 10_000
const LOOKUPS = 5_000_000
const keys = Array.from({ length: KEYS }, (_, i) => `site.example/assets/${i}.css?v=1`)
const body = Buffer.alloc(1024, 1)
const memory = createMemoryTier({ maxBytes: 256 * MiB })
const map = new Map<string, unknown>()
const lru = new LRUCache<string, object>({ maxSize: 256 * MiB, sizeCalculation: () => 1600 })
for (const key of keys) {
  memory.set(key, { contentType: 'text/css', etag: '"x"' }, body)
  map.set(key, { body })
  lru.set(key, { body })
}
const lookups = (get: (key: string) => unknown) => (): number => {
  let found = 0
  const t0 = performance.now()
  for (let i = 0; i < LOOKUPS; i++) if (get(keys[i % KEYS] as string) !== undefined) found++
  const seconds = (performance.now() - t0) / 1000
  if (found !== LOOKUPS) throw new Error('miss in a hit benchmark')
  return LOOKUPS / seconds
}
const hits = await alternate({
  memoryTier: lookups((k) => memory.get(k)),
  lruCache: lookups((k) => lru.get(k)),
  map: lookups((k) => map.get(k)),
})

// Disk tier: write and stream one large object.
const dir = await mkdtemp(join(tmpdir(), 'shoal-store-bench-'))
const size = MIB * MiB
try {
  const disk = createDiskTier({ dir, maxBytes: 4 * size, durable: true })
  await disk.start()
  const piece = Buffer.alloc(MiB, 7)
  async function* source() {
    for (let at = 0; at < size; at += MiB) yield piece
  }
  const t0 = performance.now()
  await disk.put('big', {}, source())
  const putMiBs = MIB / ((performance.now() - t0) / 1000)

  const entry = await disk.get('big')
  if (entry === undefined) throw new Error('not stored')
  const hash = createHash('sha256').update('big').digest('hex')
  const fanout = join(dir, hash.slice(0, 2))
  const bodyName = (await readdir(fanout)).find((n) => n.endsWith('.body'))
  if (bodyName === undefined) throw new Error('no body file')
  const bodyFile = join(fanout, bodyName)
  const drainMiBs = async (stream: AsyncIterable<unknown>, expected = size): Promise<number> => {
    let n = 0
    const start = performance.now()
    for await (const chunk of stream) n += (chunk as Buffer).length
    if (n !== expected) throw new Error(`read ${n} bytes, expected ${expected}`)
    return expected / MiB / ((performance.now() - start) / 1000)
  }
  const reads = await alternate({
    // Whole body: SHA-256 checked as it streams.
    storeWholeVerified: async () => drainMiBs(await entry.open()),
    // A range (all but the last byte): no whole-body hash.
    storeRange: async () => drainMiBs(await entry.open({ start: 0, end: size - 1 }), size - 1),
    rawReadStream128k: () => drainMiBs(createReadStream(bodyFile, { highWaterMark: 128 * 1024 })),
    rawReadStream64k: () => drainMiBs(createReadStream(bodyFile)),
  })
  await disk.close()

  // Restart: rebuilding the index of many small entries (headers read, body lengths checked).
  const many = createDiskTier({ dir, maxBytes: 4 * size + ENTRIES * 16 * 1024, durable: false })
  await many.start()
  const small = Buffer.alloc(2048, 3)
  const tPut = performance.now()
  for (let i = 0; i < ENTRIES; i++) {
    await many.put(`site.example/img/${i}.png`, { contentType: 'image/png', etag: `"${i}"` }, small)
  }
  const smallPutsPerSecond = ENTRIES / ((performance.now() - tPut) / 1000)
  await many.close()
  // A clean start (snapshot + one stat per entry) and a start after a crash (every
  // header read), alternating; a "crash" is a tier that is started and never closed.
  const cleanStarts: number[] = []
  const crashStarts: number[] = []
  for (let round = 0; round < Math.min(RUNS, 3); round++) {
    const clean = createDiskTier({ dir, maxBytes: 4 * size + ENTRIES * 16 * 1024 })
    const cleanResult = await clean.start()
    if (!cleanResult.clean || cleanResult.headersRead !== 0) throw new Error('expected a clean start')
    cleanStarts.push(cleanResult.durationMs)
    // no close: the next start sees a crash
    const crashed = createDiskTier({ dir, maxBytes: 4 * size + ENTRIES * 16 * 1024 })
    const crashResult = await crashed.start()
    if (crashResult.clean || crashResult.headersRead !== ENTRIES + 1) throw new Error('expected a full scan')
    crashStarts.push(crashResult.durationMs)
    await crashed.close()
  }

  // Filling 64 KiB objects seen once, as the origin cache does on a miss (declared length,
  // pieces, commit): held in memory until reused (`admitOnReuse`, the origin cache's
  // default) against written to disk at once. CPU µs per fill, system time included (the
  // disk work runs on libuv's thread pool, in this process).
  const fillDir = join(dir, 'fill')
  const fills = createObjectStore({
    memory: { maxBytes: 256 * MiB, policy: 's3-fifo' },
    disk: { dir: fillDir, maxBytes: 16 * 1024 * MiB, durable: false },
  })
  await fills.start()
  const fillBody = Buffer.alloc(64 * 1024, 5)
  const pieces = [fillBody.subarray(0, 16_384), fillBody.subarray(16_384, 40_000), fillBody.subarray(40_000)]
  let fillKey = 0
  const fillCpuUs = async (admitOnReuse: boolean, count: number): Promise<number> => {
    const before = process.cpuUsage()
    for (let i = 0; i < count; i++) {
      const writer = fills.createWriter(
        `origin\nsite\n/64k/${fillKey++}`,
        { v: 1, kind: 'response', headers: { 'content-type': 'application/octet-stream', etag: '"x"' } },
        { expectedSize: fillBody.length, admitOnReuse },
      )
      for (const piece of pieces) await writer.write(piece)
      await writer.commit()
    }
    const used = process.cpuUsage(before)
    return (used.user + used.system) / count
  }
  await fillCpuUs(true, 2000) // warm-up
  const fillUs = await alternate({
    memoryUntilReused: () => fillCpuUs(true, 5000),
    diskAtOnce: () => fillCpuUs(false, 2000),
  })
  await fills.close()

  const result = {
    machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version },
    runs: RUNS,
    memoryHitsPerSecond: {
      memoryTier: Math.round(hits.memoryTier as number),
      bareLruCache: Math.round(hits.lruCache as number),
      map: Math.round(hits.map as number),
      ratioVsBareLru: Number(((hits.memoryTier as number) / (hits.lruCache as number)).toFixed(3)),
    },
    diskMiBPerSecond: {
      objectMiB: MIB,
      putDurable: Math.round(putMiBs),
      storeWholeVerified: Math.round(reads.storeWholeVerified as number),
      storeRangeUnverified: Math.round(reads.storeRange as number),
      rawReadStream128k: Math.round(reads.rawReadStream128k as number),
      rawReadStream64k: Math.round(reads.rawReadStream64k as number),
      wholeVerifiedVsRaw128kRatio: Number(
        ((reads.storeWholeVerified as number) / (reads.rawReadStream128k as number)).toFixed(3),
      ),
    },
    fill64kCpuUs: {
      memoryUntilReused: Number((fillUs.memoryUntilReused as number).toFixed(1)),
      diskAtOnce: Number((fillUs.diskAtOnce as number).toFixed(1)),
      ratio: Number(((fillUs.diskAtOnce as number) / (fillUs.memoryUntilReused as number)).toFixed(2)),
    },
    index: {
      entries: ENTRIES + 1,
      smallPutsPerSecondNonDurable: Math.round(smallPutsPerSecond),
      cleanStartMs: Math.round(median(cleanStarts)),
      crashStartMs: Math.round(median(crashStarts)),
    },
  }
  console.log(JSON.stringify(result, null, 2))
} finally {
  await rm(dir, { recursive: true, force: true })
}
