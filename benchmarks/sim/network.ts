/**
 * The model network: the region latency matrix, the catalogue (CIDs, sizes, Zipf
 * popularity) and the seeded random source everything draws from.
 */
import { createHash } from 'node:crypto'
import { type Cid, formatCid } from '@shoal/protocol'
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64'
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus'
import type { LatencyModel, RegionSpec, SimConfig } from './config.ts'

/** A seeded random source (pure-rand's xoroshiro128+) with the draws the model needs. */
export class Random {
  readonly #rng: ReturnType<typeof xoroshiro128plus>

  constructor(seed: number) {
    this.#rng = xoroshiro128plus(seed)
  }

  /** Uniform in [0, 1). */
  next(): number {
    return uniformFloat64(this.#rng)
  }

  /** Uniform in [lo, hi). */
  between(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next()
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n)
  }

  /** Exponential with this mean. */
  exp(mean: number): number {
    return -mean * Math.log(1 - this.next())
  }

  /** Standard normal (Box–Muller). */
  normal(): number {
    return Math.sqrt(-2 * Math.log(1 - this.next())) * Math.cos(2 * Math.PI * this.next())
  }

  /** Log-uniform in [lo, hi). */
  logUniform(lo: number, hi: number): number {
    return lo * (hi / lo) ** this.next()
  }

  /** An index drawn with probability proportional to `cdf` steps (cumulative, last = 1). */
  pick(cdf: Float64Array): number {
    const u = this.next()
    let lo = 0
    let hi = cdf.length - 1
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (cdf[mid]! > u) hi = mid
      else lo = mid + 1
    }
    return lo
  }
}

/** Cumulative distribution of weights, normalised so the last entry is 1. */
export function cumulative(weights: ArrayLike<number>): Float64Array {
  const cdf = new Float64Array(weights.length)
  let sum = 0
  for (let i = 0; i < weights.length; i++) {
    sum += weights[i]!
    cdf[i] = sum
  }
  for (let i = 0; i < cdf.length; i++) cdf[i]! /= sum
  cdf[cdf.length - 1] = 1
  return cdf
}

/** Zipf popularity over `n` ranks with exponent `s`: rank r has weight 1 / r^s. */
export function zipfCdf(n: number, s: number): Float64Array {
  const w = new Float64Array(n)
  for (let r = 0; r < n; r++) w[r] = 1 / (r + 1) ** s
  return cumulative(w)
}

function greatCircleKm(a: RegionSpec, b: RegionSpec): number {
  const rad = Math.PI / 180
  const dLat = (b.lat - a.lat) * rad
  const dLon = (b.lon - a.lon) * rad
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2
  return 2 * 6371 * Math.asin(Math.sqrt(h))
}

/** Backbone RTT between regions (ms), row-major R × R. */
export function backboneRtt(regions: readonly RegionSpec[], latency: LatencyModel): Float64Array {
  const n = regions.length
  const m = new Float64Array(n * n)
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      m[i * n + j] =
        i === j
          ? latency.intraRegionMs
          : latency.interBaseMs + latency.interMsPerKm * greatCircleKm(regions[i]!, regions[j]!)
    }
  }
  return m
}

/** The RTT matrix as the tracker's `neighborsFromLatency` wants it. */
export function latencyTable(
  regions: readonly RegionSpec[],
  rtt: Float64Array,
): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {}
  const n = regions.length
  for (let i = 0; i < n; i++) {
    const row: Record<string, number> = {}
    for (let j = 0; j < n; j++) row[regions[j]!.name] = rtt[i * n + j]!
    out[regions[i]!.name] = row
  }
  return out
}

export interface Catalogue {
  /** Every object ever published (grows with turnover). */
  cids: Cid[]
  sizes: number[]
  /** Bytes of the objects that hold a popularity rank now. */
  totalBytes: number
  popularity: Float64Array
  /** The object at each popularity rank. */
  rankToObject: Int32Array
}

function newObject(config: SimConfig, random: Random, catalogue: Pick<Catalogue, 'cids' | 'sizes'>): number {
  const { medianBytes, sigma, minBytes, maxBytes } = config.catalogue
  const size = Math.round(
    Math.min(maxBytes, Math.max(minBytes, medianBytes * Math.exp(sigma * random.normal()))),
  )
  const i = catalogue.cids.length
  const root = createHash('sha256').update(`shoal-sim:${config.seed}:${i}`).digest()
  catalogue.cids.push(formatCid({ chunkSize: config.chunkBytes, size, root }))
  catalogue.sizes.push(size)
  return i
}

/**
 * The catalogue: `objects` CIDs (real ones: a root that is a SHA-256 output, as placement
 * hashes it), log-normal sizes, and Zipf popularity over ranks (sizes and placement are
 * independent of rank).
 */
export function makeCatalogue(config: SimConfig, random: Random): Catalogue {
  const { objects, zipf } = config.catalogue
  const catalogue: Catalogue = {
    cids: [],
    sizes: [],
    totalBytes: 0,
    popularity: zipfCdf(objects, zipf),
    rankToObject: new Int32Array(objects),
  }
  for (let r = 0; r < objects; r++) {
    const i = newObject(config, random, catalogue)
    catalogue.rankToObject[r] = i
    catalogue.totalBytes += catalogue.sizes[i]!
  }
  return catalogue
}

/** Publishes `count` new objects, each taking a random rank from the object holding it. */
export function publish(config: SimConfig, random: Random, catalogue: Catalogue, count: number): void {
  for (let k = 0; k < count; k++) {
    const rank = random.int(catalogue.rankToObject.length)
    catalogue.totalBytes -= catalogue.sizes[catalogue.rankToObject[rank]!]!
    const i = newObject(config, random, catalogue)
    catalogue.rankToObject[rank] = i
    catalogue.totalBytes += catalogue.sizes[i]!
  }
}

/** A 0x-hex node address derived from a number (distinct for distinct numbers). */
export function nodeAddress(seed: number, n: number): string {
  return `0x${createHash('sha256').update(`shoal-sim-node:${seed}:${n}`).digest('hex').slice(0, 40)}`
}

/** How dark it is locally: 1 at 03:00, 0 at 15:00 (a cosine). */
export function nightness(utcMs: number, utcOffset: number): number {
  const hour = (((utcMs / 3_600_000 + utcOffset) % 24) + 24) % 24
  return (1 + Math.cos((2 * Math.PI * (hour - 3)) / 24)) / 2
}

/** Request intensity by local time, in [1 − a, 1 + a]: highest at 21:00, lowest at 09:00. */
export function demand(utcMs: number, utcOffset: number, amplitude: number): number {
  const hour = (((utcMs / 3_600_000 + utcOffset) % 24) + 24) % 24
  return 1 + amplitude * Math.cos((2 * Math.PI * (hour - 21)) / 24)
}
