/**
 * Selection through the node index: shape of answers, bad input, region preference and
 * fallback, neighbours, exclusions.
 */
import { createHash } from 'node:crypto'
import { formatCid, parseCid } from '@shoal/protocol'
import { describe, expect, it } from 'vitest'
import { createNodeIndex, neighborsFromLatency, resolveNodeIndexOptions } from '../src/selection/index.ts'

const T0 = 1_700_000_000_000
const addr = (i: number) => `0x${createHash('sha256').update(`node ${i}`).digest('hex').slice(0, 40)}`
const cid = (i: number) =>
  formatCid({ chunkSize: 262_144, size: 1000 + i, root: createHash('sha256').update(`cid ${i}`).digest() })
    .text

/** `spec` maps region → node count; nodes are numbered in order. */
function network(spec: Record<string, number>, init = {}) {
  const clock = { now: T0 }
  const index = createNodeIndex<number>(init, { clock: () => clock.now })
  let i = 0
  const byRegion: Record<string, string[]> = {}
  for (const [region, n] of Object.entries(spec)) {
    byRegion[region] = []
    for (let j = 0; j < n; j++, i++) {
      index.upsert(addr(i), { region, capacity: 5_000_000 + 1_000_000 * (i % 5), meta: i })
      index.applyProbe(addr(i), { answered: true, rttMs: 15 + (i % 40) })
      byRegion[region]!.push(addr(i))
    }
  }
  return { clock, index, byRegion }
}

const invalid = expect.objectContaining({ code: 'SHOAL_ERR_INVALID_ARGUMENT' })

const regionOf = (byRegion: Record<string, string[]>, node: string) =>
  Object.entries(byRegion).find(([, nodes]) => nodes.includes(node))?.[0]

describe('select', () => {
  it('returns k distinct nodes, best first, with score and meta, the same every time', () => {
    const { index } = network({ 'eu-west': 30 })
    const a = index.select({ cid: cid(1), count: 5 })
    expect(a).toHaveLength(5)
    expect(new Set(a.map((s) => s.node)).size).toBe(5)
    for (const s of a) {
      expect(s.region).toBe('eu-west')
      expect(s.score).toBeGreaterThan(0)
      expect(s.score).toBeLessThanOrEqual(1)
      expect(addr(s.meta!)).toBe(s.node)
      expect(index.get(s.node)?.meta).toBe(s.meta)
    }
    expect(index.select({ cid: cid(1), count: 5 })).toEqual(a)
    // a parsed CID selects the same as its text
    expect(index.select({ cid: parseCid(cid(1)), count: 5 })).toEqual(a)
    // asking for fewer returns a prefix
    expect(index.select({ cid: cid(1), count: 2 })).toEqual(a.slice(0, 2))
    // other CIDs land elsewhere
    const firsts = new Set(
      Array.from({ length: 100 }, (_, c) => index.select({ cid: cid(c), count: 1 })[0]?.node),
    )
    expect(firsts.size).toBeGreaterThan(15)
  })

  it('returns what there is when fewer than k nodes are eligible, and [] on an empty index', () => {
    const { index } = network({ 'eu-west': 2 })
    expect(index.select({ cid: cid(3), count: 5 })).toHaveLength(2)
    expect(createNodeIndex().select({ cid: cid(3), count: 3 })).toEqual([])
  })

  it.each([0, -1, 1.5, 33, Number.NaN, Number.POSITIVE_INFINITY, '3', null, 1e9])(
    'refuses count %s with a typed error',
    (count) => {
      const { index } = network({ 'eu-west': 3 })
      expect(() => index.select({ cid: cid(0), count: count as number })).toThrow(invalid)
    },
  )

  it.each([
    '',
    'hello',
    'Saejacwl7zmysqljumvgcadjudd6kk4c4mshl6mtoy46y3xxrdba7q5wy',
    `${cid(0)}a`,
    42,
    null,
    {},
  ])('refuses the CID %j with SHOAL_ERR_INVALID_CID', (bad) => {
    const { index } = network({ 'eu-west': 3 })
    expect(() => index.select({ cid: bad as string, count: 1 })).toThrow(
      expect.objectContaining({ code: 'SHOAL_ERR_INVALID_CID' }),
    )
  })

  it('refuses unknown and malformed regions, and bad exclusions', () => {
    const { index } = network({ 'eu-west': 3 }, { regions: ['us-east'] })
    expect(() => index.select({ cid: cid(0), count: 1, region: 'mars-1' })).toThrow(invalid)
    expect(() => index.select({ cid: cid(0), count: 1, region: 'EU_WEST' })).toThrow(invalid)
    expect(() => index.select({ cid: cid(0), count: 1, region: 7 as never })).toThrow(invalid)
    expect(() => index.select({ cid: cid(0), count: 1, exclude: ['bob'] })).toThrow(invalid)
    expect(() => index.select({ cid: cid(0), count: 1, exclude: 'x' as never })).toThrow(invalid)
    expect(() =>
      index.select({ cid: cid(0), count: 1, exclude: Array.from({ length: 65 }, (_, i) => addr(i)) }),
    ).toThrow(invalid)
    expect(() => index.select(null as never)).toThrow(invalid)
    // a configured region with no nodes is known: the client is served from elsewhere
    expect(index.select({ cid: cid(0), count: 2, region: 'us-east' })).toHaveLength(2)
  })

  it('skips excluded nodes and fills their places', () => {
    const { index } = network({ 'eu-west': 10 })
    const first = index.select({ cid: cid(4), count: 3 }).map((s) => s.node)
    const next = index.select({ cid: cid(4), count: 3, exclude: [first[0]!, addr(999)] }).map((s) => s.node)
    expect(next).not.toContain(first[0])
    expect(next.slice(0, 2)).toEqual(first.slice(1))
    expect(next).toHaveLength(3)
  })
})

describe('regions', () => {
  it('prefers the client region when it has enough eligible nodes', () => {
    const { index, byRegion } = network({ 'eu-west': 20, 'us-east': 20, 'ap-south': 20 })
    for (let c = 0; c < 200; c++) {
      for (const region of ['eu-west', 'us-east', 'ap-south']) {
        for (const s of index.select({ cid: cid(c), count: 4, region }))
          expect(regionOf(byRegion, s.node)).toBe(region)
      }
    }
  })

  it('fills from neighbours in table order, then from the rest, when the region is short', () => {
    const neighbors = { 'eu-west': ['eu-central', 'us-east'] }
    const { index, byRegion } = network(
      { 'eu-west': 1, 'eu-central': 2, 'us-east': 10, 'ap-south': 10 },
      { regionNeighbors: neighbors },
    )
    for (let c = 0; c < 100; c++) {
      const got = index
        .select({ cid: cid(c), count: 6, region: 'eu-west' })
        .map((s) => regionOf(byRegion, s.node))
      expect(got).toEqual(['eu-west', 'eu-central', 'eu-central', 'us-east', 'us-east', 'us-east'])
      const many = index
        .select({ cid: cid(c), count: 16, region: 'eu-west' })
        .map((s) => regionOf(byRegion, s.node))
      expect(many.slice(0, 13)).toEqual([
        'eu-west',
        'eu-central',
        'eu-central',
        ...Array.from({ length: 10 }, () => 'us-east'),
      ])
      expect(many.slice(13)).toEqual(['ap-south', 'ap-south', 'ap-south'])
    }
  })

  it('fills from every other region, in a stable per-CID order, when the region has no eligible node', () => {
    const { index, byRegion } = network({ 'eu-west': 3, 'us-east': 30, 'ap-south': 30 })
    for (const n of byRegion['eu-west']!) index.setFlagged(n, true)
    const seen = new Set<string>()
    for (let c = 0; c < 100; c++) {
      const got = index.select({ cid: cid(c), count: 3, region: 'eu-west' })
      expect(got).toHaveLength(3)
      const regions = got.map((s) => regionOf(byRegion, s.node)!)
      expect(regions.every((r) => r === regions[0])).toBe(true)
      seen.add(regions[0]!)
      expect(index.select({ cid: cid(c), count: 3, region: 'eu-west' })).toEqual(got)
    }
    expect(seen).toEqual(new Set(['us-east', 'ap-south']))
  })

  it('without a region, places each CID in one region chosen by capacity', () => {
    const { index, byRegion } = network({ 'eu-west': 10, 'us-east': 40 })
    let east = 0
    for (let c = 0; c < 1000; c++) {
      const regions = new Set(index.select({ cid: cid(c), count: 3 }).map((s) => regionOf(byRegion, s.node)))
      expect(regions.size).toBe(1)
      if (regions.has('us-east')) east++
    }
    expect(east / 1000).toBeGreaterThan(0.7)
    expect(east / 1000).toBeLessThan(0.9)
  })

  it('moves a node that changes region', () => {
    const { index, byRegion } = network({ 'eu-west': 5, 'us-east': 5 })
    const mover = byRegion['eu-west']![0]!
    index.upsert(mover, { region: 'us-east', capacity: 1e7 })
    expect(index.get(mover)?.region).toBe('us-east')
    expect(index.get(mover)?.eligible).toBe(true)
    const stats = index.stats()
    expect(stats.regions['eu-west']?.nodes).toBe(4)
    expect(stats.regions['us-east']?.nodes).toBe(6)
    for (let c = 0; c < 100; c++) {
      expect(index.select({ cid: cid(c), count: 4, region: 'eu-west' }).map((s) => s.node)).not.toContain(
        mover,
      )
    }
  })

  it('builds an adjacency table from a latency matrix', () => {
    expect(
      neighborsFromLatency({
        'eu-west': { 'us-east': 80, 'eu-central': 12, 'ap-south': 140, 'eu-west': 0 },
        'us-east': { 'eu-west': 80, 'us-west': 60 },
      }),
    ).toEqual({ 'eu-west': ['eu-central', 'us-east', 'ap-south'], 'us-east': ['us-west', 'eu-west'] })
    expect(() => neighborsFromLatency({ 'eu-west': { 'us-east': -1 } })).toThrow(invalid)
  })

  it('validates index options', () => {
    expect(() => resolveNodeIndexOptions({ bucketsPerRegion: 0 })).toThrow(invalid)
    expect(() => resolveNodeIndexOptions({ maxCount: 0 })).toThrow(invalid)
    expect(() => resolveNodeIndexOptions({ regions: ['Bad'] })).toThrow(invalid)
    expect(() => resolveNodeIndexOptions({ regionNeighbors: { 'eu-west': 'us-east' as never } })).toThrow(
      invalid,
    )
    expect(() => resolveNodeIndexOptions({ weightHysteresis: 0.5 })).toThrow(invalid)
    expect(() => resolveNodeIndexOptions({ seed: -1 })).toThrow(invalid)
    expect(() => createNodeIndex({}, { clock: 5 as never })).toThrow(invalid)
    const { index } = network({}, { maxRegions: 2 })
    index.upsert(addr(1), { region: 'a1', capacity: 1 })
    index.upsert(addr(2), { region: 'a2', capacity: 1 })
    expect(() => index.upsert(addr(3), { region: 'a3', capacity: 1 })).toThrow(invalid)
  })
})
