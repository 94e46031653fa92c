/**
 * Properties of placement: never an ineligible node (fast-check over random histories),
 * stability when nodes join, leave or go down, and load proportional to weight.
 */
import { createHash } from 'node:crypto'
import type { Cid } from '@shoal/protocol'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { NODE_STATUS } from '../src/scoring/index.ts'
import { createNodeIndex, type NodeIndex } from '../src/selection/index.ts'

const I = 30_000
const T0 = 1_700_000_000_000
const REGIONS = ['eu-west', 'us-east', 'ap-south'] as const

const addr = (i: number) => `0x${createHash('sha256').update(`node ${i}`).digest('hex').slice(0, 40)}`
/** A parsed CID with a deterministic root (selection only reads the root). */
const cid = (i: number): Cid =>
  Object.freeze({
    version: 1,
    chunkSize: 262_144,
    size: 1,
    root: createHash('sha256').update(`cid ${i}`).digest(),
    text: '',
  }) as Cid

const op = fc.oneof(
  fc.record({
    kind: fc.constant('probe'),
    i: fc.nat(),
    answered: fc.boolean(),
    rtt: fc.integer({ min: 1, max: 900 }),
  }),
  fc.record({ kind: fc.constant('heartbeat'), i: fc.nat(), load: fc.integer({ min: 0, max: 12_000_000 }) }),
  fc.record({
    kind: fc.constant('report'),
    i: fc.nat(),
    ok: fc.boolean(),
    integrity: fc.boolean(),
    weight: fc.double({ min: 0, max: 1, noNaN: true }),
  }),
  fc.record({ kind: fc.constant('integrity'), i: fc.nat() }),
  fc.record({ kind: fc.constant('flag'), i: fc.nat(), flagged: fc.boolean() }),
  fc.record({ kind: fc.constant('remove'), i: fc.nat() }),
  fc.record({
    kind: fc.constant('upsert'),
    i: fc.nat(),
    region: fc.constantFrom(...REGIONS),
    capacity: fc.integer({ min: 0, max: 20_000_000 }),
  }),
  fc.record({ kind: fc.constant('advance'), ms: fc.integer({ min: 0, max: 3 * I }) }),
  fc.record({ kind: fc.constant('sweep') }),
)

describe('never an ineligible node', () => {
  it('holds over random histories of probes, heartbeats, reports, audits, flags, moves and time', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 30 }),
        fc.array(op, { maxLength: 300 }),
        fc.array(
          fc.record({
            c: fc.nat(),
            k: fc.integer({ min: 1, max: 8 }),
            region: fc.option(fc.constantFrom(...REGIONS), { nil: undefined }),
            exclude: fc.array(fc.nat(), { maxLength: 3 }),
          }),
          { minLength: 1, maxLength: 8 },
        ),
        fc.integer({ min: 1, max: 64 }),
        (n, ops, queries, buckets) => {
          const clock = { now: T0 }
          const index = createNodeIndex(
            { probeIntervalMs: I, coolOffMs: 2 * I, bucketsPerRegion: buckets, regions: [...REGIONS] },
            { clock: () => clock.now },
          )
          for (let i = 0; i < n; i++) index.upsert(addr(i), { region: REGIONS[i % 3]!, capacity: 10_000_000 })
          for (const o of ops) {
            const node = 'i' in o ? addr(o.i % n) : ''
            const present = index.has(node)
            switch (o.kind) {
              case 'probe':
                if (present)
                  index.applyProbe(node, o.answered ? { answered: true, rttMs: o.rtt } : { answered: false })
                break
              case 'heartbeat':
                if (present) index.applyHeartbeat(node, { load: o.load })
                break
              case 'report':
                if (present)
                  index.applyReport(node, { ok: o.ok, integrityFailure: o.integrity, weight: o.weight })
                break
              case 'integrity':
                if (present) index.applyIntegrityFailure(node)
                break
              case 'flag':
                if (present) index.setFlagged(node, o.flagged)
                break
              case 'remove':
                index.remove(node)
                break
              case 'upsert':
                index.upsert(node, { region: o.region, capacity: o.capacity })
                break
              case 'advance':
                clock.now += o.ms
                break
              case 'sweep':
                index.sweep({ max: 10 })
                break
            }
          }
          const all = Array.from({ length: n }, (_, i) => addr(i)).filter((a) => index.has(a))
          for (const a of all) {
            const v = index.get(a)!
            expect(v.eligible).toBe(v.status === NODE_STATUS.active)
          }
          for (const q of queries) {
            const exclude = q.exclude.map((e) => addr(e % n))
            const got = index.select({
              cid: cid(q.c),
              count: q.k,
              exclude,
              ...(q.region === undefined ? {} : { region: q.region }),
            })
            const ids = got.map((s) => s.node)
            expect(new Set(ids).size).toBe(ids.length)
            for (const s of got) {
              expect(index.get(s.node)?.status).toBe(NODE_STATUS.active)
              expect(exclude).not.toContain(s.node)
            }
            // complete: k nodes whenever k eligible ones exist anywhere
            const eligible = all.filter((a) => index.get(a)?.eligible && !exclude.includes(a)).length
            expect(got.length).toBe(Math.min(q.k, eligible))
          }
        },
      ),
      { numRuns: 300 },
    )
  })
})

/** A steady network of `n` nodes with full uptime windows (64 answered probes each). */
function steady(n: number, init = {}) {
  const clock = { now: T0 }
  const index = createNodeIndex({ probeIntervalMs: I, ...init }, { clock: () => clock.now })
  for (let i = 0; i < n; i++) {
    index.upsert(addr(i), { region: REGIONS[i % 3]!, capacity: 2_000_000 * (1 + (i % 10)) })
  }
  for (let r = 0; r < 64; r++) {
    clock.now += I
    for (let i = 0; i < n; i++) index.applyProbe(addr(i), { answered: true, rttMs: 20 + (i % 50) })
  }
  return { clock, index }
}

const K = 3
const CIDS = 10_000
function placements(index: NodeIndex, region?: string): string[][] {
  return Array.from({ length: CIDS }, (_, c) =>
    index.select({ cid: cid(c), count: K, ...(region === undefined ? {} : { region }) }).map((s) => s.node),
  )
}
const sameSet = (a: string[], b: string[]) => a.length === b.length && a.every((x) => b.includes(x))

describe('stability', () => {
  const { clock, index } = steady(1000)
  const before = placements(index)
  const beforeEu = placements(index, 'eu-west')
  /** One probe interval passes; every node but `silent` answers. */
  const tick = (silent?: string) => {
    clock.now += I
    for (let i = 0; i < 1000; i++)
      if (addr(i) !== silent) index.applyProbe(addr(i), { answered: true, rttMs: 20 + (i % 50) })
  }
  const kept = (a: string[][], b: string[][]) => a.filter((p, c) => sameSet(p, b[c]!)).length / CIDS

  it('keeps ≥ 95% of 10k CIDs on the same top-3 set when one node joins a 1k-node network', () => {
    for (let j = 0; j < 4; j++) {
      const joiner = addr(5000 + j)
      const region = REGIONS[j % 3]!
      index.upsert(joiner, { region, capacity: 20_000_000 })
      index.applyProbe(joiner, { answered: true, rttMs: 20 })
      const after = placements(index)
      const afterEu = placements(index, 'eu-west')
      // the least any placement could move: the joiner's share of a top-3 in its region
      const share = index.get(joiner)!.placementWeight / index.stats().regions[region]!.placementWeight
      expect(kept(before, after)).toBeGreaterThanOrEqual(0.95)
      expect(kept(beforeEu, afterEu)).toBeGreaterThanOrEqual(0.95)
      // and within 2.5× of that least possible movement
      expect(1 - kept(beforeEu, afterEu)).toBeLessThanOrEqual(region === 'eu-west' ? 2.5 * K * share : 0)
      expect(after.filter((p) => p.includes(joiner)).length).toBeGreaterThan(0)
      index.remove(joiner)
      expect(placements(index)).toEqual(before)
    }
  })

  it('when a selected node goes down, only CIDs that had it change, and it is replaced in place', () => {
    for (const victimIndex of [7, 123, 640]) {
      const victim = addr(victimIndex)
      const had = before.map((p) => p.includes(victim))
      expect(had.filter(Boolean).length).toBeGreaterThan(0)
      tick(victim)
      index.applyProbe(victim, { answered: false })
      tick(victim)
      expect(index.applyProbe(victim, { answered: false })).toBe(NODE_STATUS.down)
      const after = placements(index)
      for (let c = 0; c < CIDS; c++) {
        const old = before[c]!
        if (!had[c]) {
          expect(after[c]).toEqual(old)
        } else {
          const now = after[c]!
          expect(now).toHaveLength(K)
          expect(now).not.toContain(victim)
          // the others keep their places; one newcomer takes the victim's
          expect(now.filter((x) => old.includes(x))).toEqual(old.filter((x) => x !== victim))
        }
      }
      // back up: everything returns to where it was
      index.applyProbe(victim, { answered: true, rttMs: 20 + (victimIndex % 50) })
      expect(placements(index)).toEqual(before)
    }
  })

  it('keeps ≥ 95% when an unrelated node leaves, and moves only what it held and its bucket mates', () => {
    const leaver = addr(321)
    index.remove(leaver)
    const after = placements(index)
    expect(kept(before, after)).toBeGreaterThanOrEqual(0.95)
    for (let c = 0; c < CIDS; c++) if (before[c]!.includes(leaver)) expect(after[c]).not.toContain(leaver)
  })
})

describe('load spreading', () => {
  /** Chi-square of observed counts against counts proportional to each node's placement weight. */
  function spread(buckets: number, k: number, draws: number) {
    const n = 300
    const clock = { now: T0 }
    const index = createNodeIndex(
      { probeIntervalMs: I, bucketsPerRegion: buckets },
      { clock: () => clock.now },
    )
    for (let i = 0; i < n; i++) {
      index.upsert(addr(i), { region: 'eu-west', capacity: 1_000_000 * (1 + (i % 10)) })
      index.applyProbe(addr(i), { answered: true, rttMs: 30 })
    }
    const weight = Array.from({ length: n }, (_, i) => index.get(addr(i))!.placementWeight)
    const total = weight.reduce((a, b) => a + b, 0)
    const count = new Map<string, number>()
    for (let c = 0; c < draws; c++) {
      for (const s of index.select({ cid: cid(c), count: k })) count.set(s.node, (count.get(s.node) ?? 0) + 1)
    }
    let chi2 = 0
    let worst = 0
    // nodes fall into 10 capacity classes of 30: the class totals show any bias without the noise
    const classObserved = new Array<number>(10).fill(0)
    const classExpected = new Array<number>(10).fill(0)
    for (let i = 0; i < n; i++) {
      const expected = (draws * k * weight[i]!) / total
      const observed = count.get(addr(i)) ?? 0
      chi2 += (observed - expected) ** 2 / expected
      worst = Math.max(worst, Math.abs(observed / expected - 1))
      classObserved[i % 10]! += observed
      classExpected[i % 10]! += expected
    }
    const classWorst = Math.max(...classObserved.map((o, c) => Math.abs(o / classExpected[c]! - 1)))
    return { chi2, worst, classWorst, dof: n - 1 }
  }

  // χ² with 299 degrees of freedom has mean 299 and sd 24.5: 5 sd above the mean fails.
  const chi2Bound = (dof: number) => dof + 5 * Math.sqrt(2 * dof)

  it('gives each node a share of first places proportional to its weight (flat buckets)', () => {
    const { chi2, worst, classWorst, dof } = spread(1024, 1, 60_000)
    expect(chi2).toBeLessThan(chi2Bound(dof))
    expect(worst).toBeLessThan(0.45)
    expect(classWorst).toBeLessThan(0.05)
  })

  it('… and through the bucket layer, with ~19 nodes per bucket', () => {
    const { chi2, classWorst, dof } = spread(16, 1, 60_000)
    expect(chi2).toBeLessThan(chi2Bound(dof))
    expect(classWorst).toBeLessThan(0.05)
  })

  it('keeps top-3 placements proportional to weight, flat or bucketed', () => {
    for (const buckets of [1024, 16]) {
      const { chi2, classWorst, dof } = spread(buckets, 3, 30_000)
      expect(chi2).toBeLessThan(chi2Bound(dof))
      expect(classWorst).toBeLessThan(0.05)
    }
  })
})
