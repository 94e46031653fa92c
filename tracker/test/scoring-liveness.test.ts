/**
 * Node state through the index: liveness (down within two probe intervals), cool-off
 * after a proven integrity failure, flags, over-capacity, explanations, and rows that
 * survive a restart.
 */
import { createHash } from 'node:crypto'
import { formatCid } from '@shoal/protocol'
import { beforeEach, describe, expect, it } from 'vitest'
import { NODE_STATUS } from '../src/scoring/index.ts'
import { createNodeIndex, type NodeIndex, type NodeStateRow } from '../src/selection/index.ts'

const I = 30_000 // probe interval
const T0 = 1_700_000_000_000

const addr = (i: number) => `0x${createHash('sha256').update(`node ${i}`).digest('hex').slice(0, 40)}`
const cid = (i: number) =>
  formatCid({ chunkSize: 262_144, size: 1000 + i, root: createHash('sha256').update(`cid ${i}`).digest() })
    .text

function fixture(n: number, init = {}) {
  const clock = { now: T0 }
  const index: NodeIndex<{ url: string }> = createNodeIndex<{ url: string }>(
    { probeIntervalMs: I, ...init },
    { clock: () => clock.now },
  )
  for (let i = 0; i < n; i++) {
    index.upsert(addr(i), { region: 'eu-west', capacity: 10_000_000, meta: { url: `http://n${i}.test/` } })
    index.applyProbe(addr(i), { answered: true, rttMs: 20 + i })
  }
  return { clock, index }
}

/** Every CID among `cids` whose selection contains `node`. */
function cidsWith(index: NodeIndex, node: string, cids: string[], k = 3): string[] {
  return cids.filter((c) => index.select({ cid: c, count: k }).some((s) => s.node === node))
}

describe('registration', () => {
  it('starts unreachable and is not selected before its first answered probe', () => {
    const { index } = fixture(0)
    expect(index.upsert(addr(1), { region: 'eu-west', capacity: 1e7 })).toBe(NODE_STATUS.unreachable)
    expect(index.select({ cid: cid(1), count: 3 })).toEqual([])
    expect(index.explain(addr(1)).placementWeight).toBe(0)
    expect(index.applyProbe(addr(1), { answered: true, rttMs: 30 })).toBe(NODE_STATUS.active)
    expect(index.select({ cid: cid(1), count: 3 }).map((s) => s.node)).toEqual([addr(1)])
  })

  it('keys nodes by address case-insensitively and keeps state on update', () => {
    const { index } = fixture(1)
    const upper = `0x${addr(0).slice(2).toUpperCase()}`
    expect(index.has(upper)).toBe(true)
    index.upsert(upper, { region: 'eu-west', capacity: 2e7 })
    expect(index.size).toBe(1)
    expect(index.explain(addr(0)).figures.probes).toBe(1)
    expect(index.explain(addr(0)).figures.capacity).toBe(2e7)
    expect(index.get(addr(0))?.meta).toEqual({ url: 'http://n0.test/' })
  })

  it('refuses bad node ids, regions and capacities with typed errors', () => {
    const { index } = fixture(0)
    const bad = { code: 'SHOAL_ERR_INVALID_ARGUMENT' }
    expect(() => index.upsert('0x1234', { region: 'eu-west', capacity: 1 })).toThrow(
      expect.objectContaining(bad),
    )
    expect(() => index.upsert(addr(1), { region: 'EU West', capacity: 1 })).toThrow(
      expect.objectContaining(bad),
    )
    expect(() => index.upsert(addr(1), { region: 'eu-west', capacity: -1 })).toThrow(
      expect.objectContaining(bad),
    )
    expect(() => index.upsert(addr(1), { region: 'eu-west', capacity: Number.NaN })).toThrow(
      expect.objectContaining(bad),
    )
    expect(() => index.upsert(addr(1), null as never)).toThrow(expect.objectContaining(bad))
    expect(index.size).toBe(0)
  })

  it('answers NOT_FOUND for events about unknown nodes and refuses absurd figures', () => {
    const { index } = fixture(1)
    expect(() => index.applyProbe(addr(9), { answered: false })).toThrow(
      expect.objectContaining({ code: 'SHOAL_ERR_NOT_FOUND' }),
    )
    const bad = expect.objectContaining({ code: 'SHOAL_ERR_INVALID_ARGUMENT' })
    expect(() => index.applyProbe(addr(0), { answered: true, rttMs: -5 })).toThrow(bad)
    expect(() => index.applyProbe(addr(0), { answered: true, rttMs: 1e9 })).toThrow(bad)
    expect(() => index.applyHeartbeat(addr(0), { load: -1 })).toThrow(bad)
    expect(() => index.applyHeartbeat(addr(0), { load: Number.POSITIVE_INFINITY })).toThrow(bad)
    expect(() => index.applyReport(addr(0), { ok: true, weight: 2 })).toThrow(bad)
    expect(() => index.applyReport(addr(0), { ok: true, weight: 1, throughput: -3 })).toThrow(bad)
    expect(() => index.applyReport(addr(0), { ok: 'yes' as never, weight: 1 })).toThrow(bad)
    // none of it changed the node
    expect(index.explain(addr(0)).figures).toMatchObject({ probes: 1, failures: 0, load: 0 })
  })

  it('removes nodes and reuses their slots', () => {
    const { index } = fixture(3)
    expect(index.remove(addr(1))).toBe(true)
    expect(index.remove(addr(1))).toBe(false)
    expect(index.size).toBe(2)
    for (let c = 0; c < 50; c++)
      expect(index.select({ cid: cid(c), count: 3 }).map((s) => s.node)).not.toContain(addr(1))
    index.upsert(addr(7), { region: 'eu-west', capacity: 1e7 })
    expect(index.get(addr(7))?.status).toBe(NODE_STATUS.unreachable)
    expect(index.get(addr(7))?.meta).toBeUndefined()
  })
})

describe('down within two probe intervals', () => {
  let clock: { now: number }
  let index: NodeIndex<{ url: string }>
  const cids = Array.from({ length: 300 }, (_, i) => cid(i))

  beforeEach(() => {
    ;({ clock, index } = fixture(8))
    // a steady history: every node answers every interval
    for (let r = 0; r < 10; r++) {
      clock.now += I
      for (let i = 0; i < 8; i++) index.applyProbe(addr(i), { answered: true, rttMs: 20 + i })
    }
  })

  it('by two consecutive missed probes', () => {
    const victim = addr(3)
    expect(cidsWith(index, victim, cids).length).toBeGreaterThan(0)
    clock.now += I
    expect(index.applyProbe(victim, { answered: false })).toBe(NODE_STATUS.active)
    clock.now += I
    expect(index.applyProbe(victim, { answered: false })).toBe(NODE_STATUS.down)
    expect(cidsWith(index, victim, cids)).toEqual([])
    expect(index.get(victim)?.eligible).toBe(false)
    // one answered probe brings it back
    expect(index.applyProbe(victim, { answered: true, rttMs: 25 })).toBe(NODE_STATUS.active)
    expect(cidsWith(index, victim, cids).length).toBeGreaterThan(0)
  })

  it('by silence, even when the probe loop reports nothing', () => {
    const victim = addr(5)
    // the node answered at clock.now and dies right after; the others keep answering
    const diedAt = clock.now
    const others = () => {
      for (let i = 0; i < 8; i++) if (i !== 5) index.applyProbe(addr(i), { answered: true, rttMs: 20 + i })
    }
    clock.now = diedAt + I
    others()
    expect(index.get(victim)?.status).toBe(NODE_STATUS.active)
    clock.now = diedAt + 2 * I
    others()
    expect(index.get(victim)?.status).toBe(NODE_STATUS.active)
    expect(cidsWith(index, victim, cids).length).toBeGreaterThan(0)
    clock.now = diedAt + 2 * I + 1 // within two intervals of the last answer, plus one ms
    expect(index.get(victim)?.status).toBe(NODE_STATUS.down)
    expect(cidsWith(index, victim, cids)).toEqual([])
    // sweep turns the time rule into an event (so a stalled probe loop costs selection nothing)
    expect(index.sweep()).toBe(1)
    expect(index.sweep()).toBe(0)
    expect(index.get(victim)?.status).toBe(NODE_STATUS.down)
    expect(index.applyProbe(victim, { answered: true, rttMs: 25 })).toBe(NODE_STATUS.active)
  })

  it('with other settings: downAfterMisses 3 and a shorter silence', () => {
    const { clock: c, index: idx } = fixture(2, { downAfterMisses: 3, downAfterMs: 45_000 })
    idx.applyProbe(addr(0), { answered: false })
    idx.applyProbe(addr(0), { answered: false })
    expect(idx.get(addr(0))?.status).toBe(NODE_STATUS.active)
    expect(idx.applyProbe(addr(0), { answered: false })).toBe(NODE_STATUS.down)
    c.now += 45_001
    expect(idx.get(addr(1))?.status).toBe(NODE_STATUS.down)
  })

  it('sheds placement weight only after a long outage (hysteresis), so a short one moves nothing else', () => {
    const victim = addr(2)
    for (let r = 0; r < 64; r++) {
      clock.now += I
      for (let i = 0; i < 8; i++) index.applyProbe(addr(i), { answered: true, rttMs: 20 + i })
    }
    const w0 = index.explain(victim).placementWeight
    for (let m = 0; m < 3; m++) {
      clock.now += I
      index.applyProbe(victim, { answered: false })
    }
    expect(index.explain(victim).placementWeight).toBe(w0)
    for (let m = 0; m < 30; m++) {
      clock.now += I
      index.applyProbe(victim, { answered: false })
    }
    expect(index.explain(victim).placementWeight).toBeLessThan(w0 / 1.25)
  })
})

describe('integrity failures', () => {
  it('one proven failure takes the node out for the cool-off, and it returns after', () => {
    const coolOffMs = 3_600_000
    const { clock, index } = fixture(4, { coolOffMs })
    const cids = Array.from({ length: 200 }, (_, i) => cid(i))
    const victim = addr(2)
    const before = cidsWith(index, victim, cids)
    expect(before.length).toBeGreaterThan(0)
    const { status, coolOffUntil } = index.applyIntegrityFailure(victim)
    expect(status).toBe(NODE_STATUS.coolingOff)
    expect(coolOffUntil).toBe(T0 + coolOffMs)
    expect(cidsWith(index, victim, cids)).toEqual([])
    const e = index.explain(victim)
    expect(e.figures.integrityFailures).toBe(1)
    expect(e.components.integrity).toBe(0.5)
    // probes keep coming during the cool-off
    for (let t = I; t < coolOffMs; t += I) {
      clock.now = T0 + t
      for (let i = 0; i < 4; i++) index.applyProbe(addr(i), { answered: true, rttMs: 20 })
      expect(index.get(victim)?.eligible).toBe(false)
    }
    clock.now = T0 + coolOffMs
    for (let i = 0; i < 4; i++) index.applyProbe(addr(i), { answered: true, rttMs: 20 })
    expect(index.get(victim)?.status).toBe(NODE_STATUS.active)
    expect(cidsWith(index, victim, cids).length).toBeGreaterThan(0)
  })

  it('doubles the cool-off for each further failure and flags the node at the third', () => {
    const { clock, index } = fixture(1, { coolOffMs: 1000, maxCoolOffMs: 3000 })
    expect(index.applyIntegrityFailure(addr(0)).coolOffUntil).toBe(T0 + 1000)
    clock.now = T0 + 5000
    expect(index.applyIntegrityFailure(addr(0)).coolOffUntil).toBe(T0 + 5000 + 2000)
    clock.now = T0 + 10_000
    const third = index.applyIntegrityFailure(addr(0))
    expect(third.coolOffUntil).toBe(T0 + 10_000 + 3000) // capped
    expect(third.status).toBe(NODE_STATUS.flagged)
    clock.now = T0 + 20_000
    index.applyProbe(addr(0), { answered: true, rttMs: 10 })
    expect(index.get(addr(0))?.status).toBe(NODE_STATUS.flagged)
    expect(index.select({ cid: cid(0), count: 1 })).toEqual([])
    expect(index.setFlagged(addr(0), false)).toBe(NODE_STATUS.active)
    expect(index.select({ cid: cid(0), count: 1 }).map((s) => s.node)).toEqual([addr(0)])
  })
})

describe('capacity and load', () => {
  it('is over-capacity at 95% load and back below 85%', () => {
    const { index } = fixture(1)
    expect(index.applyHeartbeat(addr(0), { load: 9_500_000 })).toBe(NODE_STATUS.overCapacity)
    expect(index.select({ cid: cid(0), count: 1 })).toEqual([])
    expect(index.applyHeartbeat(addr(0), { load: 9_000_000 })).toBe(NODE_STATUS.overCapacity)
    expect(index.applyHeartbeat(addr(0), { load: 8_500_000 })).toBe(NODE_STATUS.active)
    expect(index.select({ cid: cid(0), count: 1 })).toHaveLength(1)
  })

  it('never selects a node without capacity, and caps claimed capacity for placement', () => {
    const { index } = fixture(1, { maxCapacity: 50_000_000 })
    index.upsert(addr(0), { region: 'eu-west', capacity: 0 })
    expect(index.get(addr(0))?.status).toBe(NODE_STATUS.overCapacity)
    index.upsert(addr(1), { region: 'eu-west', capacity: 1e15 })
    index.applyProbe(addr(1), { answered: true, rttMs: 20 })
    index.upsert(addr(2), { region: 'eu-west', capacity: 50_000_000 })
    index.applyProbe(addr(2), { answered: true, rttMs: 20 })
    expect(index.explain(addr(1)).placementWeight).toBe(index.explain(addr(2)).placementWeight)
  })
})

describe('explain and stats', () => {
  it('shows every component, the formula and the figures behind the score', () => {
    const { index } = fixture(1)
    index.applyReport(addr(0), { ok: true, weight: 1, throughput: 5_000_000 })
    index.applyReport(addr(0), { ok: false, weight: 0.5 })
    const e = index.explain(addr(0))
    expect(e.formula).toContain('uptime²')
    const c = e.components
    expect(e.score).toBeCloseTo(
      c.uptime ** 2 * c.success ** 2 * Math.sqrt(c.latency * c.throughput) * c.integrity,
      12,
    )
    expect(e.score).toBeCloseTo(index.score(addr(0)), 12)
    expect(e.figures).toMatchObject({ latencyMs: 20, successes: 1, failures: 0.5, throughput: 5_000_000 })
    expect(e.eligible).toBe(true)
    expect(e.placementWeight).toBeGreaterThan(0)
    expect(JSON.parse(JSON.stringify(e))).toEqual(e)
  })

  it('ignores reports of weight 0', () => {
    const { index } = fixture(1)
    const before = index.explain(addr(0))
    for (let i = 0; i < 100; i++) index.applyReport(addr(0), { ok: false, weight: 0, integrityFailure: true })
    expect(index.explain(addr(0))).toEqual(before)
  })

  it('counts nodes by status and region', () => {
    const { index } = fixture(5)
    index.upsert(addr(10), { region: 'us-east', capacity: 1e6 })
    index.applyIntegrityFailure(addr(0))
    index.setFlagged(addr(1), true)
    index.applyHeartbeat(addr(2), { load: 1e9 })
    const s = index.stats()
    expect(s.nodes).toBe(6)
    expect(s.byStatus).toEqual({
      flagged: 1,
      'cooling-off': 1,
      unreachable: 1,
      down: 0,
      'over-capacity': 1,
      active: 2,
    })
    expect(s.regions['us-east']?.nodes).toBe(1)
    expect(s.regions['eu-west']?.byStatus.active).toBe(2)
    expect(index.regions()).toEqual(['eu-west', 'us-east'])
  })
})

describe('snapshot and restore', () => {
  function busy() {
    const { clock, index } = fixture(40)
    const regions = ['eu-west', 'us-east', 'ap-south']
    for (let i = 0; i < 40; i++) {
      index.upsert(addr(i), {
        region: regions[i % 3]!,
        capacity: 1e6 * (1 + (i % 7)),
        meta: { url: `u${i}` },
      })
    }
    for (let r = 0; r < 70; r++) {
      clock.now += I
      for (let i = 0; i < 40; i++) {
        index.applyProbe(
          addr(i),
          (i * r) % 11 === 3 ? { answered: false } : { answered: true, rttMs: 10 + ((i * r) % 90) },
        )
      }
    }
    index.applyReport(addr(3), { ok: false, weight: 0.7, throughput: 123_456 })
    index.applyReport(addr(4), { ok: true, weight: 1, throughput: 9e6 })
    index.applyHeartbeat(addr(5), { load: 6_000_000 })
    index.applyIntegrityFailure(addr(6))
    index.setFlagged(addr(7), true)
    index.upsert(addr(99), { region: 'eu-west', capacity: 1e6 })
    for (let m = 0; m < 3; m++) index.applyProbe(addr(8), { answered: false })
    return { clock, index }
  }

  it('rebuilds an index that selects and explains exactly as before', () => {
    const { clock, index } = busy()
    const rows = [...index.snapshot()]
    expect(rows).toHaveLength(41)
    const json: (NodeStateRow & { meta?: { url: string } })[] = JSON.parse(JSON.stringify(rows))
    for (const r of json) r.meta = index.get(r.node)?.meta
    const copy = createNodeIndex<{ url: string }>({ probeIntervalMs: I }, { clock: () => clock.now })
    expect(copy.restore(json)).toBe(41)
    expect([...copy.snapshot()]).toEqual(rows)
    expect(copy.stats()).toEqual(index.stats())
    for (let c = 0; c < 500; c++) {
      for (const region of [undefined, 'eu-west', 'ap-south']) {
        const q = { cid: cid(c), count: 4, ...(region === undefined ? {} : { region }) }
        expect(copy.select(q)).toEqual(index.select(q))
      }
    }
    for (const r of rows) expect(copy.explain(r.node)).toEqual(index.explain(r.node))
    expect(copy.row(addr(3))).toEqual(index.row(addr(3)))
  })

  it('after a restart, keeps restored nodes selectable for graceMs while the probe loop catches up', () => {
    const { clock, index } = busy()
    const rows = [...index.snapshot()]
    const active = index.stats().byStatus.active
    clock.now += 10 * I // the tracker was down for ten intervals
    const strict = createNodeIndex({ probeIntervalMs: I }, { clock: () => clock.now })
    strict.restore(rows)
    expect(strict.stats().byStatus.active).toBe(0)
    expect(strict.select({ cid: cid(1), count: 3 })).toEqual([])

    const lenient = createNodeIndex({ probeIntervalMs: I }, { clock: () => clock.now })
    lenient.restore(rows, { graceMs: I })
    expect(lenient.stats().byStatus.active).toBe(active)
    const first = lenient.select({ cid: cid(1), count: 3 })
    expect(first).toHaveLength(3)
    // the rows themselves are untouched
    expect([...lenient.snapshot()]).toEqual(rows)
    // a node that answers stays; the others are down once the grace is over
    const alive = first[0]!.node
    clock.now += I
    lenient.applyProbe(alive, { answered: true, rttMs: 20 })
    clock.now += 1
    expect(lenient.get(alive)?.status).toBe(NODE_STATUS.active)
    expect(lenient.stats().byStatus.active).toBe(1)
    expect(lenient.select({ cid: cid(1), count: 3 }).map((s) => s.node)).toEqual([alive])
    const bad = expect.objectContaining({ code: 'SHOAL_ERR_INVALID_ARGUMENT' })
    expect(() => lenient.restore([], { graceMs: 3 * I })).toThrow(bad)
    expect(() => lenient.restore([], { graceMs: -1 })).toThrow(bad)
  })

  it('replaces nodes already present and refuses bad rows with the row number', () => {
    const { index } = busy()
    const row = index.row(addr(1))!
    const other = createNodeIndex()
    other.upsert(addr(1), { region: 'us-east', capacity: 5 })
    other.restore([row])
    expect(other.row(addr(1))).toEqual(row)
    const bad = expect.objectContaining({ code: 'SHOAL_ERR_INVALID_ARGUMENT' })
    expect(() => other.restore([row, { ...row, node: 'nope' }])).toThrow(/row 1: node/)
    expect(() => other.restore([{ ...row, uptime: '10x' }])).toThrow(bad)
    expect(() => other.restore([{ ...row, latencyMs: -1 }])).toThrow(bad)
    expect(() => other.restore([{ ...row, region: 'No' }])).toThrow(/row 0: region/)
    expect(() => other.restore([{ ...row, consecutiveMisses: 1.5 }])).toThrow(bad)
    expect(() => other.restore(42 as never)).toThrow(bad)
  })
})
