import { randomBytes } from 'node:crypto'
import { computeCid } from '@shoal/protocol'
import { afterEach, describe, expect, it } from 'vitest'
import { registerNode, sendHeartbeat, startTestNode, type TestNode, waitFor } from './helpers/test-node.ts'
import { startTracker, type TrackerFixture } from './helpers/tracker.ts'

let nodes: TestNode[] = []
let fixtures: TrackerFixture[] = []
afterEach(async () => {
  for (const f of fixtures) await f.close()
  for (const n of nodes) await n.close().catch(() => {})
  nodes = []
  fixtures = []
})

async function selectOver(url: string, cid: string, count: number, region?: string): Promise<string[]> {
  const res = await fetch(`${url}/v1/select?cid=${cid}&count=${count}${region ? `&region=${region}` : ''}`)
  return ((await res.json()) as { nodes: { node: string }[] }).nodes.map((n) => n.node)
}

describe('placement over HTTP', () => {
  it('keeps most CIDs on their nodes when an unrelated node joins, and never picks an over-capacity node', async () => {
    // slow probes: placement weights settle and stay put while we compare
    const t = await startTracker({
      probeIntervalMs: 2_000,
      probeTimeoutMs: 500,
      rateLimits: { select: { rate: 1e6, burst: 1e6 }, register: { rate: 100, burst: 100 } },
    })
    fixtures.push(t)
    const sessions = new Map<string, { key: Buffer; sessionId: string }>()
    for (let i = 0; i < 10; i++) {
      const n = await startTestNode()
      nodes.push(n)
      const r = await registerNode(t.url, n)
      sessions.set(n.address, { key: r.key!, sessionId: r.sessionId! })
    }
    await waitFor(() => t.tracker.index.stats().byStatus.active === 10)
    const cids: string[] = []
    for (let i = 0; i < 200; i++) cids.push((await computeCid(randomBytes(8))).cid.text)
    const before = new Map<string, string[]>()
    for (const cid of cids) before.set(cid, await selectOver(t.url, cid, 3))

    const joiner = await startTestNode()
    nodes.push(joiner)
    await registerNode(t.url, joiner)
    await waitFor(() => t.tracker.index.stats().byStatus.active === 11)

    let keptPairs = 0
    let keptSets = 0
    let joinerPicks = 0
    for (const cid of cids) {
      const now = await selectOver(t.url, cid, 3)
      const old = before.get(cid)!
      expect(now).toHaveLength(3)
      keptPairs += now.filter((n) => old.includes(n)).length
      if (now.every((n) => old.includes(n))) keptSets++
      if (now.includes(joiner.address)) joinerPicks++
    }
    // the new node takes about its share (3 of 11 per CID), everything else stays
    expect(keptPairs / (3 * cids.length)).toBeGreaterThan(0.8)
    expect(keptSets / cids.length).toBeGreaterThan(0.55)
    expect(joinerPicks).toBeGreaterThan(0)
    expect(keptPairs + joinerPicks).toBe(3 * cids.length)

    // a node at capacity is never chosen
    const busy = nodes[0]!
    await sendHeartbeat(t.url, busy, sessions.get(busy.address)!, { figures: { load: 12_400_000 } })
    for (const cid of cids.slice(0, 50)) expect(await selectOver(t.url, cid, 10)).not.toContain(busy.address)
  })

  it('prefers nodes in the client region', async () => {
    const t = await startTracker({ rateLimits: { select: { rate: 1e6, burst: 1e6 } } })
    fixtures.push(t)
    const eu = await startTestNode({ region: 'eu-west' })
    const us = await startTestNode({ region: 'us-east' })
    nodes.push(eu, us)
    await registerNode(t.url, eu)
    await registerNode(t.url, us)
    await waitFor(() => t.tracker.index.stats().byStatus.active === 2)
    for (let i = 0; i < 20; i++) {
      const cid = (await computeCid(randomBytes(8))).cid.text
      expect((await selectOver(t.url, cid, 1, 'us-east'))[0]).toBe(us.address)
      expect((await selectOver(t.url, cid, 1, 'eu-west'))[0]).toBe(eu.address)
      expect(await selectOver(t.url, cid, 2, 'us-east')).toEqual([us.address, eu.address])
    }
  })
})
