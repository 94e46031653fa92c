import { readFile } from 'node:fs/promises'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  computeScore,
  DEFAULT_LATENCY_HALF_MS,
  resolveScoringOptions,
  type ScoreInputs,
  scoreOf,
} from '../src/scoring/index.ts'
import { NodeTable } from '../src/scoring/table.ts'
import {
  clearRing,
  recordOutcome,
  ringFromString,
  ringToString,
  type UptimeRing,
} from '../src/scoring/uptime.ts'

const options = resolveScoringOptions()

const base: ScoreInputs = {
  answered: 64,
  probes: 64,
  latencyMs: 40,
  successes: 100,
  failures: 0,
  throughput: 8e6,
  integrityFailures: 0,
}

const score = (patch: Partial<ScoreInputs>) => computeScore({ ...base, ...patch }, options).score

describe('score formula', () => {
  it('matches the documented example and multiplies its components', () => {
    const c = computeScore(base, options)
    expect(c.uptime).toBe(1)
    expect(c.latency).toBeCloseTo(200 / 240, 12)
    expect(c.throughput).toBeCloseTo(8e6 / (8e6 + 1_048_576), 12)
    expect(c.success).toBeCloseTo((100 + 0.95 * 2) / 102, 12)
    expect(c.integrity).toBe(1)
    expect(c.score).toBeCloseTo(c.uptime ** 2 * c.success ** 2 * Math.sqrt(c.latency * c.throughput), 12)
    expect(c.score).toBeCloseTo(0.857, 3)
  })

  it('gives every example of the table in docs/scoring.md, component by component', async () => {
    const doc = await readFile(new URL('../../docs/scoring.md', import.meta.url), 'utf8')
    const good: ScoreInputs = { ...base, latencyMs: 30, successes: 200, throughput: 10e6 }
    const examples: Record<string, ScoreInputs> = {
      good,
      new: {
        answered: 1,
        probes: 1,
        latencyMs: 80,
        successes: 0,
        failures: 0,
        throughput: undefined,
        integrityFailures: 0,
      },
      far: { ...good, latencyMs: 250 },
      flaky: { ...good, answered: 48 },
      failing: { ...good, successes: 150, failures: 50 },
      slow: { ...good, throughput: 200e3 },
      audited: { ...good, integrityFailures: 1 },
    }
    const header = '| node | uptime | success | latency | throughput | integrity | score |'
    const rows = doc
      .slice(doc.indexOf(header))
      .split('\n')
      .slice(2)
      .filter((_, i, lines) => lines.slice(0, i + 1).every((l) => l.startsWith('|')))
    expect(rows.map((r) => /^\| (\w+)/.exec(r)![1]).sort()).toEqual(Object.keys(examples).sort())
    for (const row of rows) {
      const [name, ...figures] = row
        .slice(1, -1)
        .split('|')
        .map((c) => c.trim().replaceAll('*', ''))
      const c = computeScore(examples[name!.split(/[ :]/)[0]!]!, options)
      const computed = [c.uptime, c.success, c.latency, c.throughput, c.integrity, c.score]
      expect(
        computed.map((v) => v.toFixed(3)),
        name,
      ).toEqual(figures)
    }
  })

  it('goes down as latency rises', () => {
    expect(score({ latencyMs: 10 })).toBeGreaterThan(score({ latencyMs: 100 }))
    expect(score({ latencyMs: 100 })).toBeGreaterThan(score({ latencyMs: 1000 }))
    expect(computeScore({ ...base, latencyMs: DEFAULT_LATENCY_HALF_MS }, options).latency).toBe(0.5)
  })

  it('goes down as probes are missed', () => {
    expect(score({ answered: 64 })).toBeGreaterThan(score({ answered: 60 }))
    expect(score({ answered: 60 })).toBeGreaterThan(score({ answered: 32 }))
    // uptime is squared: answering half the probes costs about three quarters of the score
    expect(score({ answered: 32 }) / score({})).toBeCloseTo((33 / 65) ** 2, 6)
  })

  it('goes down with client failures and up with successes', () => {
    expect(score({ failures: 0 })).toBeGreaterThan(score({ failures: 5 }))
    expect(score({ failures: 5 })).toBeGreaterThan(score({ failures: 50 }))
    expect(score({ successes: 1000, failures: 5 })).toBeGreaterThan(score({ successes: 10, failures: 5 }))
  })

  it('goes up with throughput', () => {
    expect(score({ throughput: 100_000 })).toBeLessThan(score({ throughput: 1_000_000 }))
    expect(score({ throughput: 1_000_000 })).toBeLessThan(score({ throughput: 50_000_000 }))
  })

  it('goes down with each proven integrity failure', () => {
    expect(score({ integrityFailures: 1 })).toBeCloseTo(score({}) / 2, 12)
    expect(score({ integrityFailures: 3 })).toBeCloseTo(score({}) / 4, 12)
  })

  it('uses priors while latency and throughput are unknown', () => {
    const c = computeScore({ ...base, latencyMs: undefined, throughput: undefined, successes: 0 }, options)
    expect(c.latency).toBe(0.5)
    expect(c.throughput).toBeCloseTo(4_194_304 / (4_194_304 + 1_048_576), 12)
    expect(c.success).toBeCloseTo(0.95, 12)
  })

  it('stays in [0, 1] and agrees with the allocation-free form for any figures', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 64 }),
        fc.integer({ min: 0, max: 64 }),
        fc.option(fc.double({ min: 0, max: 600_000, noNaN: true }), { nil: undefined }),
        fc.double({ min: 0, max: 1e9, noNaN: true }),
        fc.double({ min: 0, max: 1e9, noNaN: true }),
        fc.option(fc.double({ min: 0, max: 1e12, noNaN: true }), { nil: undefined }),
        fc.integer({ min: 0, max: 65_535 }),
        (a, p, latencyMs, successes, failures, throughput, integrityFailures) => {
          const probes = Math.max(a, p)
          const inputs = {
            answered: a,
            probes,
            latencyMs,
            successes,
            failures,
            throughput,
            integrityFailures,
          }
          const c = computeScore(inputs, options)
          for (const v of Object.values(c)) {
            expect(v).toBeGreaterThanOrEqual(0)
            expect(v).toBeLessThanOrEqual(1)
          }
          const fast = scoreOf(
            a,
            probes,
            latencyMs ?? Number.NaN,
            successes,
            failures,
            throughput ?? Number.NaN,
            integrityFailures,
            options,
          )
          expect(fast).toBeCloseTo(c.score, 12)
        },
      ),
    )
  })
})

describe('scoring options', () => {
  it('derives the down-by-time rule from the probe interval', () => {
    expect(resolveScoringOptions({ probeIntervalMs: 10_000 }).downAfterMs).toBe(20_000)
    expect(resolveScoringOptions({ probeIntervalMs: 10_000, downAfterMs: 15_000 }).downAfterMs).toBe(15_000)
  })

  it.each([
    [{ probeIntervalMs: 0 }],
    [{ probeIntervalMs: Number.NaN }],
    [{ downAfterMisses: 0 }],
    [{ downAfterMisses: 1.5 }],
    [{ uptimeWindow: 0 }],
    [{ uptimeWindow: 2000 }],
    [{ latencyAlpha: 0 }],
    [{ latencyAlpha: 1 }],
    [{ successPrior: 1.5 }],
    [{ coolOffMs: -1 }],
    [{ coolOffMs: 10, maxCoolOffMs: 5 }],
    [{ overloadEnter: 0.8, overloadExit: 0.9 }],
    [{ maxCapacity: Number.POSITIVE_INFINITY }],
    [{ flagAfterIntegrityFailures: -1 }],
  ])('refuses %j with a typed error', (bad) => {
    expect(() => resolveScoringOptions(bad)).toThrow(
      expect.objectContaining({ code: 'SHOAL_ERR_INVALID_ARGUMENT' }),
    )
  })

  it('refuses a non-object', () => {
    expect(() => resolveScoringOptions(null as never)).toThrow(
      expect.objectContaining({ code: 'SHOAL_ERR_INVALID_ARGUMENT' }),
    )
  })
})

function ring(window: number, slots = 3): UptimeRing {
  const words = Math.ceil(window / 32)
  return {
    window,
    words,
    bits: new Uint32Array(words * slots),
    pos: new Uint16Array(slots),
    fill: new Uint16Array(slots),
    answered: new Uint16Array(slots),
  }
}

describe('uptime window', () => {
  it('counts the answered share of the last `window` probes, in O(1) per probe', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100 }),
        fc.array(fc.boolean(), { maxLength: 400 }),
        (window, outcomes) => {
          const r = ring(window)
          for (const o of outcomes) recordOutcome(r, 1, o)
          const last = outcomes.slice(-window)
          expect(r.fill[1]).toBe(last.length)
          expect(r.answered[1]).toBe(last.filter(Boolean).length)
          expect(ringToString(r, 1)).toBe(last.map((o) => (o ? '1' : '0')).join(''))
          // neighbours untouched
          expect(r.fill[0]).toBe(0)
          expect(r.fill[2]).toBe(0)
          expect(r.bits.subarray(0, r.words).every((w) => w === 0)).toBe(true)
          const copy = ring(window)
          ringFromString(copy, 2, ringToString(r, 1))
          expect(ringToString(copy, 2)).toBe(ringToString(r, 1))
          expect(copy.answered[2]).toBe(r.answered[1])
          clearRing(r, 1)
          expect(ringToString(r, 1)).toBe('')
        },
      ),
    )
  })

  it('keeps only the newest outcomes when restored into a smaller window', () => {
    const r = ring(4)
    ringFromString(r, 0, '00001111')
    expect(ringToString(r, 0)).toBe('1111')
    expect(r.answered[0]).toBe(4)
  })
})

describe('node table', () => {
  const t0 = 1_700_000_000_000

  it('fits in about 120 bytes of columns per node with the default window', () => {
    const table = new NodeTable(options, 10_000)
    const columns = Object.values(table).filter(ArrayBuffer.isView) as ArrayBufferView[]
    const ringBytes = Object.values(table.ring).filter(ArrayBuffer.isView) as ArrayBufferView[]
    const bytes = [...columns, ...ringBytes].reduce((sum, a) => sum + a.byteLength, 0)
    expect(bytes / 10_000).toBeLessThanOrEqual(128)
  })

  it('decays report counters with the half-life', () => {
    const table = new NodeTable(options, 4)
    table.reset(0, t0)
    table.recordReport(0, false, false, Number.NaN, 1, t0)
    table.recordReport(0, false, false, Number.NaN, 1, t0)
    expect(table.figures(0, t0).failures).toBe(2)
    expect(table.figures(0, t0 + options.reportHalfLifeMs).failures).toBeCloseTo(1, 9)
    // the score recovers as old failures fade
    expect(table.score(0, t0 + 4 * options.reportHalfLifeMs)).toBeGreaterThan(table.score(0, t0))
  })

  it('weights reports by the reporter standing and counts unproven integrity failures heavily', () => {
    const table = new NodeTable(options, 4)
    for (const s of [0, 1, 2]) table.reset(s, t0)
    for (let i = 0; i < 20; i++) {
      table.recordReport(0, false, false, Number.NaN, 1, t0)
      table.recordReport(1, false, false, Number.NaN, 0.05, t0)
    }
    table.recordReport(2, false, true, Number.NaN, 1, t0)
    expect(table.score(1, t0)).toBeGreaterThan(table.score(0, t0))
    expect(table.figures(2, t0).failures).toBe(options.integrityReportWeight)
  })

  it('moves the throughput estimate by alpha × weight', () => {
    const table = new NodeTable(options, 2)
    table.reset(0, t0)
    table.recordReport(0, true, false, 1_000_000, 1, t0)
    expect(table.figures(0, t0).throughput).toBe(1_000_000)
    table.recordReport(0, true, false, 2_000_000, 0.5, t0)
    expect(table.figures(0, t0).throughput).toBeCloseTo(1_000_000 + 0.2 * 0.5 * 1_000_000, 0)
  })
})
