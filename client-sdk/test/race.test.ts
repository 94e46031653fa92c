/**
 * `race` on its own: hedges share one clock (one timer for every race's deadline), so
 * these check that each race still hedges on its own deadline, in deadline order, and
 * never after it was decided.
 */
import { describe, expect, it } from 'vitest'
import { createClient } from '../src/client.ts'
import { createNodeStats } from '../src/node-stats.ts'
import { DEFAULT_HEDGE_MIN_SAMPLES } from '../src/options.ts'
import { race } from '../src/race.ts'

/** A candidate that answers `value` after `ms` (never, for `Infinity`), or rejects when aborted. */
function answer(value: string, ms: number, signal: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = Number.isFinite(ms) ? setTimeout(() => resolve(value), ms) : undefined
    signal.addEventListener('abort', () => {
      clearTimeout(timer)
      reject(signal.reason)
    })
  })
}

function hedged(delayMs: number, speeds: Record<string, number>) {
  const queue = Object.keys(speeds)
  const hedges: string[] = []
  const aborted: string[] = []
  const won = race<string, string>({
    next: () => queue.shift(),
    nameOf: (c) => c,
    start: (c, signal) => {
      signal.addEventListener('abort', () => aborted.push(c))
      return answer(c, speeds[c]!, signal)
    },
    delayFor: () => delayMs,
    maxParallel: 2,
    what: 'nobody answered',
    onHedge: (from, to) => hedges.push(`${from}→${to}`),
  })
  return { won, hedges, aborted }
}

describe('race: hedges on one shared clock', () => {
  it('hedges a candidate that does not answer within its delay, and aborts it when the hedge wins', async () => {
    const r = hedged(20, { slow: Number.POSITIVE_INFINITY, fast: 0 })
    const win = await r.won
    win.release()
    expect(win.candidate).toBe('fast')
    expect(r.hedges).toEqual(['slow→fast'])
    expect(r.aborted).toContain('slow')
  })

  it('never hedges a race answered before its delay, while other races hedge', async () => {
    const slow = hedged(20, { a: Number.POSITIVE_INFINITY, b: 0 })
    const quick = hedged(20, { c: 0, d: 0 })
    const [s, q] = await Promise.all([slow.won, quick.won])
    s.release()
    q.release()
    expect(q.candidate).toBe('c')
    expect(quick.hedges).toEqual([])
    expect(slow.hedges).toEqual(['a→b'])
    // the decided race's deadline was dropped: nothing fires for it later
    await new Promise((r) => setTimeout(r, 60))
    expect(quick.hedges).toEqual([])
  })

  it('a shorter deadline armed after a longer one fires first', async () => {
    const order: string[] = []
    const late = hedged(400, { x: Number.POSITIVE_INFINITY, y: 0 })
    const early = hedged(10, { u: Number.POSITIVE_INFINITY, v: 0 })
    await Promise.all([
      late.won.then((w) => {
        w.release()
        order.push(w.candidate)
      }),
      early.won.then((w) => {
        w.release()
        order.push(w.candidate)
      }),
    ])
    expect(order).toEqual(['v', 'y'])
    expect(early.hedges).toEqual(['u→v'])
    expect(late.hedges).toEqual(['x→y'])
  })
})

describe('hedge delay: a quantile needs enough TTFBs', () => {
  it('a node (or all nodes together) gives no quantile before minSamples TTFBs, then the quantile of them', () => {
    const stats = createNodeStats()
    for (let i = 1; i <= 7; i++) stats.recordTtfb('http://a', i * 10)
    // seven samples: too few to trust a p90, so the client keeps its initial delay
    expect(stats.ttfbQuantile('http://a', 0.9, DEFAULT_HEDGE_MIN_SAMPLES)).toBeUndefined()
    expect(stats.globalQuantile(0.9, DEFAULT_HEDGE_MIN_SAMPLES)).toBeUndefined()
    // without a minimum, one sample is a quantile
    expect(stats.ttfbQuantile('http://a', 0.9)).toBeGreaterThan(0)
    stats.recordTtfb('http://b', 80)
    // eight in all: the global quantile is known, the node's own not yet
    expect(stats.ttfbQuantile('http://a', 0.9, DEFAULT_HEDGE_MIN_SAMPLES)).toBeUndefined()
    expect(stats.globalQuantile(0.9, DEFAULT_HEDGE_MIN_SAMPLES)).toBeGreaterThanOrEqual(70)
    stats.recordTtfb('http://a', 80)
    expect(stats.ttfbQuantile('http://a', 0.9, DEFAULT_HEDGE_MIN_SAMPLES)).toBeGreaterThanOrEqual(70)
  })

  it('minSamples is an option in [1, 64]', () => {
    for (const minSamples of [0, 65, 1.5])
      expect(() => createClient({ nodes: ['http://127.0.0.1:1'], hedge: { minSamples } })).toThrow(
        expect.objectContaining({ code: 'SHOAL_ERR_INVALID_ARGUMENT' }),
      )
  })
})
