/**
 * Options of the node index: the scoring model's plus placement's. Plain data with
 * named defaults, validated once at construction.
 */
import { InvalidArgumentError } from '@shoal/protocol'
import {
  type ResolvedScoringOptions,
  resolveScoringOptions,
  type ScoringOptions,
} from '../scoring/options.ts'

/** Buckets per region; fixed for the life of an index (changing it moves every CID). */
export const DEFAULT_BUCKETS_PER_REGION = 1024
/** Most nodes one selection may ask for. */
export const DEFAULT_MAX_COUNT = 32
/** Most node ids a selection may exclude. */
export const DEFAULT_MAX_EXCLUDE = 64
/** Most distinct regions (each holds its buckets). */
export const DEFAULT_MAX_REGIONS = 1024
/** A node's placement weight follows its target only when they differ by more than this factor. */
export const DEFAULT_WEIGHT_HYSTERESIS = 1.25
/** Bytes/s of (capacity × score) per unit of placement weight. */
export const DEFAULT_WEIGHT_UNIT = 1024
/** Slots allocated up front. */
export const DEFAULT_INITIAL_CAPACITY = 1024

/** A region name, as in node records. */
export const REGION_RE = /^[a-z0-9][a-z0-9-]{0,31}$/

export interface NodeIndexInit extends ScoringOptions {
  /** Buckets per region, 1..65536 (default 1024). */
  bucketsPerRegion?: number
  /** Largest `count` a selection may ask for (default 32). */
  maxCount?: number
  /** Most node ids in a selection's `exclude` (default 64). */
  maxExclude?: number
  /** Most distinct regions (default 1024). */
  maxRegions?: number
  /** Regions known up front (clients may name them before any node registers there). */
  regions?: readonly string[]
  /**
   * For a client region, the regions to fill from next, best first (an adjacency
   * table; see `neighborsFromLatency` to build one from a latency matrix). Regions not
   * listed come after, in a stable per-CID order weighted by each region's capacity.
   */
  regionNeighbors?: Readonly<Record<string, readonly string[]>>
  weightHysteresis?: number
  weightUnit?: number
  /**
   * Mixed into every placement hash. Set a secret, stable value in production (the same
   * on every replica): without it a node operator can grind keys to win chosen CIDs.
   */
  seed?: number
  /** Slots allocated up front; set it near the expected node count to avoid regrowth. */
  initialCapacity?: number
}

export interface ResolvedNodeIndexOptions {
  scoring: ResolvedScoringOptions
  bucketsPerRegion: number
  maxCount: number
  maxExclude: number
  maxRegions: number
  regions: readonly string[]
  regionNeighbors: ReadonlyMap<string, readonly string[]>
  weightHysteresis: number
  weightUnit: number
  seed: number
  initialCapacity: number
}

function integer(
  name: string,
  value: number | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  const v = value ?? fallback
  if (!Number.isSafeInteger(v) || v < min || v > max) {
    throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}, got ${String(v)}`)
  }
  return v
}

/** Throws `InvalidArgumentError` unless `name` is a well-formed region name. */
export function checkRegionName(what: string, name: unknown): string {
  if (typeof name !== 'string' || !REGION_RE.test(name)) {
    throw new InvalidArgumentError(
      `${what} must be a region name matching [a-z0-9][a-z0-9-]{0,31}, got ${JSON.stringify(name)}`,
    )
  }
  return name
}

/**
 * Fills in defaults and validates; throws `InvalidArgumentError` naming the bad option.
 *
 * @example
 * const options = resolveNodeIndexOptions({ regions: ['eu-west', 'us-east'], seed: 0x5eed })
 */
export function resolveNodeIndexOptions(init: NodeIndexInit = {}): ResolvedNodeIndexOptions {
  if (typeof init !== 'object' || init === null)
    throw new InvalidArgumentError('node index options must be an object')
  const scoring = resolveScoringOptions(init)
  const regions = init.regions ?? []
  if (!Array.isArray(regions)) throw new InvalidArgumentError('regions must be an array of region names')
  for (const r of regions) checkRegionName('regions[]', r)
  const neighbors = new Map<string, readonly string[]>()
  const table = init.regionNeighbors ?? {}
  if (typeof table !== 'object' || table === null || Array.isArray(table)) {
    throw new InvalidArgumentError('regionNeighbors must be an object of region → region names')
  }
  for (const [from, list] of Object.entries(table)) {
    checkRegionName('regionNeighbors key', from)
    if (!Array.isArray(list))
      throw new InvalidArgumentError(`regionNeighbors.${from} must be an array of region names`)
    const seen = new Set<string>([from])
    const ordered: string[] = []
    for (const to of list) {
      checkRegionName(`regionNeighbors.${from}[]`, to)
      if (!seen.has(to)) ordered.push(to)
      seen.add(to)
    }
    neighbors.set(from, Object.freeze(ordered))
  }
  const weightHysteresis = init.weightHysteresis ?? DEFAULT_WEIGHT_HYSTERESIS
  if (typeof weightHysteresis !== 'number' || !Number.isFinite(weightHysteresis) || weightHysteresis < 1) {
    throw new InvalidArgumentError(
      `weightHysteresis must be a finite number ≥ 1, got ${String(weightHysteresis)}`,
    )
  }
  const weightUnit = init.weightUnit ?? DEFAULT_WEIGHT_UNIT
  if (typeof weightUnit !== 'number' || !Number.isFinite(weightUnit) || weightUnit <= 0) {
    throw new InvalidArgumentError(
      `weightUnit must be a finite number greater than 0, got ${String(weightUnit)}`,
    )
  }
  return {
    scoring,
    bucketsPerRegion: integer(
      'bucketsPerRegion',
      init.bucketsPerRegion,
      DEFAULT_BUCKETS_PER_REGION,
      1,
      65_536,
    ),
    maxCount: integer('maxCount', init.maxCount, DEFAULT_MAX_COUNT, 1, 1024),
    maxExclude: integer('maxExclude', init.maxExclude, DEFAULT_MAX_EXCLUDE, 0, 4096),
    maxRegions: integer('maxRegions', init.maxRegions, DEFAULT_MAX_REGIONS, 1, 65_536),
    regions: Object.freeze([...regions]),
    regionNeighbors: neighbors,
    weightHysteresis,
    weightUnit,
    seed: integer('seed', init.seed, 0, 0, 0xffff_ffff),
    initialCapacity: integer('initialCapacity', init.initialCapacity, DEFAULT_INITIAL_CAPACITY, 1, 2 ** 26),
  }
}

/**
 * An adjacency table from a region latency matrix (ms): for each region, the others
 * sorted by latency, nearest first (ties by name).
 *
 * @example
 * neighborsFromLatency({ 'eu-west': { 'eu-central': 12, 'us-east': 80 } })
 * // { 'eu-west': ['eu-central', 'us-east'] }
 */
export function neighborsFromLatency(
  matrix: Readonly<Record<string, Readonly<Record<string, number>>>>,
): Record<string, string[]> {
  const out: Record<string, string[]> = {}
  for (const [from, row] of Object.entries(matrix)) {
    checkRegionName('latency matrix key', from)
    const entries = Object.entries(row).filter(([to]) => to !== from)
    for (const [to, ms] of entries) {
      checkRegionName(`latency matrix ${from} →`, to)
      if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) {
        throw new InvalidArgumentError(
          `latency ${from} → ${to} must be a finite number ≥ 0, got ${String(ms)}`,
        )
      }
    }
    entries.sort((x, y) => x[1] - y[1] || (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0))
    out[from] = entries.map(([to]) => to)
  }
  return out
}
