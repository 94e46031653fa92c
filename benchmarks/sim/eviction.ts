/**
 * Eviction policies compared on the same traces at equal cache bytes: the edge node's
 * byte caches (`createByteCache`: LRU from lru-cache, S3-FIFO) replayed over Zipf
 * traces with and without scans; and the hit-path cost of each in the memory tier.
 */
import { createByteCache, createMemoryTier, type EvictionPolicy } from '@shoal/edge-node'
import { median } from '../src/results.ts'
import type { SimConfig } from './config.ts'
import { Random, zipfCdf } from './network.ts'

export interface TraceSpec {
  name: string
  objects: number
  zipf: number
  requests: number
  /** Share of requests that belong to scans (runs of keys each seen once). */
  scanShare: number
  /** Keys per scan. */
  scanLength: number
  seed: number
}

export interface Trace {
  keys: Int32Array
  sizes: Float64Array
  /** Bytes of the distinct objects of the Zipf part (what cache shares are taken of). */
  catalogueBytes: number
}

/** Builds a trace: Zipf requests over `objects` keys, with scans of fresh keys mixed in. */
export function makeTrace(
  spec: TraceSpec,
  catalogue: Pick<SimConfig['catalogue'], 'medianBytes' | 'sigma' | 'minBytes' | 'maxBytes'>,
): Trace {
  const random = new Random(spec.seed)
  const cdf = zipfCdf(spec.objects, spec.zipf)
  const size = () =>
    Math.round(
      Math.min(
        catalogue.maxBytes,
        Math.max(catalogue.minBytes, catalogue.medianBytes * Math.exp(catalogue.sigma * random.normal())),
      ),
    )
  const scanKeys = Math.ceil(spec.requests * spec.scanShare) + spec.scanLength
  const sizes = new Float64Array(spec.objects + scanKeys)
  let catalogueBytes = 0
  for (let i = 0; i < spec.objects; i++) {
    sizes[i] = size()
    catalogueBytes += sizes[i]!
  }
  for (let i = spec.objects; i < sizes.length; i++) sizes[i] = size()
  const keys = new Int32Array(spec.requests)
  let nextScanKey = spec.objects
  let i = 0
  while (i < spec.requests) {
    if (spec.scanShare > 0 && random.next() < spec.scanShare / spec.scanLength) {
      for (let j = 0; j < spec.scanLength && i < spec.requests; j++) keys[i++] = nextScanKey++
    } else keys[i++] = random.pick(cdf)
  }
  return { keys, sizes, catalogueBytes }
}

/** Hit ratio (requests) and byte hit ratio of a policy replaying a trace with a cache of `bytes`. */
export function replay(
  trace: Trace,
  policy: EvictionPolicy,
  bytes: number,
): { hitRatio: number; byteHitRatio: number } {
  const cache = createByteCache<number, number>({ policy, maxSize: Math.max(1, Math.floor(bytes)) })
  let hits = 0
  let hitBytes = 0
  let total = 0
  const { keys, sizes } = trace
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!
    const size = sizes[k]!
    total += size
    if (cache.get(k) !== undefined) {
      hits++
      hitBytes += size
    } else cache.set(k, 1, { size })
  }
  return { hitRatio: hits / keys.length, byteHitRatio: hitBytes / total }
}

export interface PolicyComparison {
  trace: string
  cacheShare: number
  lru: number
  s3fifo: number
  lruBytes: number
  s3fifoBytes: number
}

/** Both policies on each trace at each cache size (a share of the trace's catalogue bytes). */
export function comparePolicies(
  specs: readonly TraceSpec[],
  shares: readonly number[],
  catalogue: SimConfig['catalogue'],
): PolicyComparison[] {
  const out: PolicyComparison[] = []
  for (const spec of specs) {
    const trace = makeTrace(spec, catalogue)
    for (const share of shares) {
      const bytes = trace.catalogueBytes * share
      const lru = replay(trace, 'lru', bytes)
      const s3 = replay(trace, 's3-fifo', bytes)
      out.push({
        trace: spec.name,
        cacheShare: share,
        lru: lru.hitRatio,
        s3fifo: s3.hitRatio,
        lruBytes: lru.byteHitRatio,
        s3fifoBytes: s3.byteHitRatio,
      })
    }
  }
  return out
}

/**
 * Hit-path cost of the memory tier's `get` with each policy: ns per hit on a working set
 * that fits, keys drawn from a Zipf(1) stream, alternating LRU and S3-FIFO `reps` times.
 */
export function hitPathCost(
  reps = 3,
  gets = 2_000_000,
): { lruNs: number; s3fifoNs: number; ratio: number; runs: { lru: number[]; s3fifo: number[] } } {
  const objects = 10_000
  const random = new Random(42)
  const cdf = zipfCdf(objects, 1)
  const stream = new Int32Array(gets)
  for (let i = 0; i < gets; i++) stream[i] = random.pick(cdf)
  const keyNames = Array.from({ length: objects }, (_, i) => `/c/object-${i}`)
  const body = Buffer.alloc(256)
  const runs = { lru: [] as number[], s3fifo: [] as number[] }
  const time = (policy: EvictionPolicy): number => {
    const memory = createMemoryTier({ maxBytes: 64 * 2 ** 20, policy })
    for (const k of keyNames) memory.set(k, {}, body, { sha256: '0'.repeat(64) })
    let found = 0
    for (let i = 0; i < 200_000; i++) if (memory.get(keyNames[stream[i]!]!) !== undefined) found++ // warm the JIT
    const t0 = process.hrtime.bigint()
    for (let i = 0; i < gets; i++) if (memory.get(keyNames[stream[i]!]!) !== undefined) found++
    const ns = Number(process.hrtime.bigint() - t0) / gets
    if (found !== gets + 200_000) throw new Error('hit-path benchmark: a get missed')
    return ns
  }
  for (let r = 0; r < reps; r++) {
    runs.lru.push(time('lru'))
    runs.s3fifo.push(time('s3-fifo'))
  }
  const lruNs = median(runs.lru)
  const s3fifoNs = median(runs.s3fifo)
  return { lruNs, s3fifoNs, ratio: s3fifoNs / lruNs, runs }
}
