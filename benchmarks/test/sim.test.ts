import { RECEIPT_KIND, signBandwidthReceipt } from '@shoal/protocol'
import { getAddress } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { describe, expect, it } from 'vitest'
import { SMALL_SIM, withConfig } from '../sim/config.ts'
import { comparePolicies } from '../sim/eviction.ts'
import { nodeAddress } from '../sim/network.ts'
import { type AttackerModel, type Delivery, gini, payPerByteSettlement } from '../sim/settlement.ts'
import { type SimReport, simulate, T0 } from '../sim/simulate.ts'
import { settlementAttackers, signReceiptSync, trackerSettlement } from '../sim/tracker-settlement.ts'
import { edgePlot } from '../src/report.ts'
import type { BenchResult } from '../src/results.ts'
import { cdfPoints, linePlot } from '../src/svg.ts'

/** A report without its wall time, for comparing runs. */
function comparable(r: SimReport) {
  const { wallSeconds: _, ...rest } = r
  return rest
}

describe('network simulation (small configuration)', () => {
  const base = simulate(SMALL_SIM)

  it('serves every request and reports sane figures', () => {
    expect(base.requests).toBeGreaterThan(SMALL_SIM.requests * 0.5)
    expect(base.hitRatio).toBeGreaterThan(0.3)
    expect(base.hitRatio).toBeLessThanOrEqual(1)
    expect(base.originOffload).toBeGreaterThan(0)
    expect(base.originOffload).toBeLessThanOrEqual(1)
    expect(base.ttfb.mesh.p50).toBeLessThanOrEqual(base.ttfb.mesh.p95)
    expect(Number.isFinite(base.ttfb.mesh.p95)).toBe(true)
    for (const r of Object.values(base.ttfb.byRegion)) expect(r.mesh.requests).toBe(r.direct.requests)
    const causes = base.missCauses
    expect(causes.firstInRegion + causes.notFirstCandidate + causes.placementOrEviction).toBeCloseTo(
      1 - base.hitRatio,
      6,
    )
  })

  it('fills a miss as the edge node does: mesh neighbours, then the tracker’s nodes (making room for them), then the origin', () => {
    expect(base.events.meshNeighbourHits).toBeGreaterThan(0)
    expect(base.events.meshDiscoveredHits).toBeGreaterThan(0)
    // a full node closes its least useful neighbours for the tracker's holders: no miss
    // leaves them undialled
    expect(base.events.meshDiscoveryFull).toBe(0)
    expect(base.events.meshNeighboursClosed).toBeGreaterThan(0)
    const before = simulate(
      withConfig(SMALL_SIM, { mesh: { ...SMALL_SIM.mesh, makeRoom: false, trim: false, discovery: 'any' } }),
    )
    // without it, with 16 neighbours at most, most nodes were full and dialled none of them
    expect(before.events.meshDiscoveryFull).toBeGreaterThan(before.events.meshDiscoveredHits)
    expect(base.events.meshDiscoveredHits).toBeGreaterThan(before.events.meshDiscoveredHits)
    expect(base.peerShareOfMisses).toBeGreaterThan(before.peerShareOfMisses)
    expect(base.originOffload).toBeGreaterThan(before.originOffload)
    // trimming past the high watermark leaves room for peers that dial a node: fewer
    // dials refused at libp2p's maxConnections
    const noTrim = simulate(withConfig(SMALL_SIM, { mesh: { ...SMALL_SIM.mesh, trim: false } }))
    expect(base.events.meshDialsRefused).toBeLessThan(noTrim.events.meshDialsRefused)
  })

  it('a hedged request that loses still fills its node, from the origin if need be', () => {
    const never = 1e9
    const noHedge = simulate(
      withConfig(SMALL_SIM, {
        hedge: { ...SMALL_SIM.hedge, initialDelayMs: never, minDelayMs: never, maxDelayMs: never },
      }),
    )
    expect(noHedge.events.hedges).toBe(0)
    expect(base.events.hedges).toBeGreaterThan(0)
    // without hedges the origin sends only what winners missed
    expect(noHedge.originOffload).toBeGreaterThanOrEqual(noHedge.byteHitRatio)
    // with them, losers' fills cost the origin more than the winners' misses
    expect(base.originOffload).toBeLessThan(base.byteHitRatio)
    expect(noHedge.hedgeLoserOriginShare).toBe(0)
    expect(base.hedgeLoserOriginShare).toBeGreaterThan(0)
  })

  it('is deterministic for a seed, and another seed gives another run', () => {
    expect(comparable(simulate(SMALL_SIM))).toEqual(comparable(base))
    expect(simulate(withConfig(SMALL_SIM, { seed: 10 })).requests).not.toBe(base.requests)
  })

  it('hits more with more cache per node', () => {
    const tiny = simulate(withConfig(SMALL_SIM, { cacheShare: 0.0002 }))
    const large = simulate(withConfig(SMALL_SIM, { cacheShare: 0.05 }))
    expect(tiny.hitRatio).toBeLessThan(base.hitRatio)
    expect(large.hitRatio).toBeGreaterThanOrEqual(base.hitRatio)
    expect(tiny.originOffload).toBeLessThan(large.originOffload)
  })

  it('hits more with more skewed popularity', () => {
    const flat = simulate(withConfig(SMALL_SIM, { catalogue: { zipf: 0.6 } }))
    expect(flat.hitRatio).toBeLessThan(base.hitRatio)
  })

  it('handles churn: nodes leave, return, depart and join, and the tracker follows', () => {
    expect(base.events.leaves).toBeGreaterThan(0)
    expect(base.events.returns).toBeGreaterThan(0)
    expect(base.events.departures).toBeGreaterThan(0)
    expect(base.events.joins).toBeGreaterThan(0)
    // the real node index marks offline nodes down and still selects live ones
    expect(base.index.byStatus.down).toBeGreaterThan(0)
    expect(base.index.byStatus.active).toBeGreaterThan(SMALL_SIM.nodes / 2)
    expect(base.events.noNodeFallbacks).toBe(0)
    const calm = simulate(withConfig(SMALL_SIM, { churn: { meanUpMs: 1e15, joinsPerHour: 0 } }))
    expect(calm.events.leaves).toBe(0)
    expect(calm.index.byStatus.down).toBe(0)
    expect(calm.hitRatio).toBeGreaterThan(base.hitRatio)
  })

  it('loses its caches on restart when the disk tier does not survive, and hits less', () => {
    // short spells offline, so returning nodes get their placement back while it matters
    const churn = { meanUpMs: 3_600_000, meanDownMs: 1_800_000 }
    const volatile = simulate(withConfig(SMALL_SIM, { churn: { ...churn, cacheSurvivesRestart: false } }))
    const durable = simulate(withConfig(SMALL_SIM, { churn }))
    expect(volatile.hitRatio).toBeLessThan(durable.hitRatio)
  })

  it('hands deliveries to a settlement model, and attackers’ fabricated claims with them', () => {
    const honest = simulate(SMALL_SIM, { settlement: payPerByteSettlement() })
    expect(honest.settlement?.honestPaidShare).toBeCloseTo(1, 9)
    expect(honest.settlement?.fabricatedPaidShare).toBeCloseTo(0, 9)
    expect(honest.settlement?.epochs).toBe(Math.ceil(SMALL_SIM.durationMs / SMALL_SIM.epochMs))
    // the runs do not depend on settlement being plugged in
    expect(honest.hitRatio).toBe(base.hitRatio)

    const liar = '0x00000000000000000000000000000000000000aa'
    const attackers: AttackerModel = {
      nodes: new Set([liar]),
      fabricate: (epoch: number, time: number, real: readonly Delivery[]) => [
        {
          time,
          epoch,
          node: liar,
          client: -1,
          bytes: real.reduce((s, d) => s + d.bytes, 0) * 0.1,
          delivered: false,
        },
      ],
    }
    const cheated = simulate(SMALL_SIM, { settlement: payPerByteSettlement(), attackers })
    // a settlement without fraud rules pays the fabricated bytes: what the real one must stop
    expect(cheated.settlement?.fabricatedPaidShare).toBeGreaterThan(0.05)
    expect(cheated.settlement?.honestPaidShare).toBeLessThan(0.95)
  })

  it('the tracker’s real settlement pays real delivery and none of the attack test’s fabricated claims', () => {
    const attackerNodes = Array.from({ length: 10 }, (_, i) => nodeAddress(SMALL_SIM.seed, i * 7))
    const model = trackerSettlement({
      seed: SMALL_SIM.seed,
      epochMs: SMALL_SIM.epochMs,
      startMs: T0,
      signEvery: 50,
      capacityOf: () => 12_500_000,
    })
    const r = simulate(SMALL_SIM, {
      settlement: model,
      attackers: settlementAttackers({ nodes: attackerNodes }),
    })
    const s = r.settlement!
    const stats = model.stats()
    expect(s.fabricatedBytes).toBeGreaterThan(0.3 * s.deliveredBytes) // attackers claim a third as much again
    expect(s.fabricatedPaidShare).toBe(0)
    expect(s.honestPaidShare).toBeCloseTo(1, 9)
    expect(s.honestGini).toBeLessThan(0.05)
    for (const attack of ['inflate', 'replay', 'self-deal', 'sybil', 'garbage']) {
      expect(stats.attacks[attack]?.bytes).toBeGreaterThan(0)
      expect(stats.attacks[attack]?.paidBytes).toBe(0)
    }
    // each attack is refused by its rule, and real signatures were checked on a sample
    expect(Object.keys(stats.byReason).sort()).toEqual(
      ['bad-signature', 'not-selected', 'self-dealing', 'superseded', 'unknown-ticket'].sort(),
    )
    expect(stats.signedReceipts).toBeGreaterThan(100)
  })
})

describe('eviction policies on replayed traces', () => {
  it('S3-FIFO beats LRU at equal bytes on Zipf with scans', () => {
    const rows = comparePolicies(
      [{ name: 'scan', objects: 5_000, zipf: 1, requests: 60_000, scanShare: 0.3, scanLength: 500, seed: 1 }],
      [0.01, 0.05],
      SMALL_SIM.catalogue,
    )
    for (const r of rows) expect(r.s3fifo).toBeGreaterThan(r.lru)
    // more cache, more hits, for both
    expect(rows[1]!.lru).toBeGreaterThan(rows[0]!.lru)
    expect(rows[1]!.s3fifo).toBeGreaterThan(rows[0]!.s3fifo)
  })
})

describe('helpers', () => {
  it('signs receipts synchronously with the same bytes as signBandwidthReceipt', async () => {
    const key = `0x${'42'.repeat(32)}` as const
    const account = privateKeyToAccount(key)
    const message = {
      node: getAddress('0x00000000000000000000000000000000000000aa'),
      client: account.address,
      session: `0x${'11'.repeat(32)}` as const,
      bytes: 3 * 2 ** 20,
      epoch: 493_000,
      ticket: `0x${'22'.repeat(32)}` as const,
      kind: RECEIPT_KIND.content,
    }
    const signed = await signBandwidthReceipt(account, message)
    expect(signReceiptSync(key, message)).toBe(signed.signature)
    expect(signReceiptSync(key, { ...message, bytes: message.bytes + 1 })).not.toBe(signed.signature)
  })

  it('plots the edge comparison from edge.json: hits per size and misses, Shoal, nginx and origin', () => {
    const metric = (detail: Record<string, number>) => ({ value: 1, unit: 'ratio', detail })
    const edge: BenchResult = {
      name: 'edge',
      date: '2026-11-24T18:49:15.544Z',
      machine: { cpus: 2, model: 'x', node: 'v22', memGiB: 4 },
      metrics: {
        hit_ratio_vs_nginx_1k: metric({ shoal_rps: 114_015, nginx_rps: 123_201 }),
        hit_ratio_vs_nginx_64k: metric({ shoal_rps: 61_693, nginx_rps: 61_133 }),
        miss_ratio_vs_origin_64k: metric({ shoal_rps: 1282, nginx_miss_rps: 7039, origin_rps: 36_773 }),
        p99_ms_64k: { value: 1.7, unit: 'ms' },
      },
    }
    const svg = edgePlot(edge)
    expect(svg.match(/<rect x="[\d.]+" y="[\d.]+" width="[\d.]+" height/g)).toHaveLength(2 + 2 + 3 + 3) // bars, and a legend swatch per series
    for (const label of ['hit 1K', 'hit 64K', 'miss 64K', '114k', '61.1k', '36.8k', 'nginx proxy_cache']) {
      expect(svg).toContain(label)
    }
  })

  it('gini is 0 for equal shares and near 1 when one holds all', () => {
    expect(gini([5, 5, 5, 5])).toBeCloseTo(0, 9)
    expect(gini([0, 0, 0, 0, 0, 0, 0, 0, 0, 100])).toBeCloseTo(0.9, 9)
  })

  it('draws an SVG with one path per series', () => {
    const svg = linePlot({
      title: 'a < b',
      xLabel: 'x',
      yLabel: 'y',
      logX: true,
      series: [
        { name: 's1', points: cdfPoints(Float64Array.from([1, 2, 3, 10])) },
        {
          name: 's2',
          points: [
            [1, 0.5],
            [10, 0.7],
          ],
          dashed: true,
        },
      ],
    })
    expect(svg.startsWith('<svg')).toBe(true)
    expect(svg.match(/<path /g)).toHaveLength(2)
    expect(svg).toContain('a &lt; b')
  })
})
