import { hashChunk } from '@shoal/protocol'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { afterEach, describe, expect, it } from 'vitest'
import {
  type Content,
  makeContent,
  postJson,
  publishSite,
  registerNode,
  signedReport,
  startTestNode,
  type TestNode,
  waitFor,
} from './helpers/test-node.ts'
import { startTracker, type TrackerFixture } from './helpers/tracker.ts'

let nodes: TestNode[] = []
let fixtures: TrackerFixture[] = []
afterEach(async () => {
  for (const f of fixtures) await f.close()
  for (const n of nodes) await n.close().catch(() => {})
  nodes = []
  fixtures = []
})

async function setup(over = {}) {
  const t = await startTracker(over)
  fixtures.push(t)
  return t
}

async function activeNode(t: TrackerFixture, content: Content, flipBit?: number) {
  const n = await startTestNode()
  nodes.push(n)
  n.serve(content, flipBit === undefined ? {} : { flipBit })
  await registerNode(t.url, n)
  await waitFor(() => t.tracker.index.get(n.address)?.status === 'active')
  return n
}

const publisher = privateKeyToAccount(generatePrivateKey())
const leafHash = async (b: Uint8Array) => `0x${Buffer.from(await hashChunk(b)).toString('hex')}` as const

describe('content audits', () => {
  it('catches a node that serves a flipped bit: integrity failure, cool-off, out of selection, on record', async () => {
    const t = await setup()
    const content = await makeContent(3000) // 3 chunks of 1 KiB
    expect((await publishSite(t.url, publisher, 'blog', 1, [{ path: '/a.bin', content }])).status).toBe(201)
    const honest = await activeNode(t, content)
    const liar = await activeNode(t, content, 2500) // a bit of chunk 2

    expect(await t.tracker.auditor.audit(honest.address, content.cid, { chunk: 2 })).toMatchObject({
      outcome: 'passed',
    })
    expect(await t.tracker.auditor.audit(liar.address, content.cid, { chunk: 0 })).toMatchObject({
      outcome: 'passed',
    })
    const failed = await t.tracker.auditor.audit(liar.address, content.cid, { chunk: 2 })
    expect(failed).toMatchObject({ outcome: 'failed', node: liar.address, cid: content.cid, chunk: 2 })

    const view = t.tracker.index.get(liar.address)!
    expect(view.status).toBe('cooling-off')
    const picked = t.tracker.index.select({ cid: content.cid, count: 5 }).map((p) => p.node)
    expect(picked).toEqual([honest.address])
    const info = (await (await fetch(`${t.url}/v1/nodes/${liar.address}`)).json()) as {
      components: { integrity: number }
      integrityEvents: { cid: string; chunk: number; source: string }[]
    }
    expect(info.components.integrity).toBe(0.5)
    await waitFor(async () => {
      const again = (await (await fetch(`${t.url}/v1/nodes/${liar.address}`)).json()) as typeof info
      return again.integrityEvents.length === 1 ? again : undefined
    }).then((again) =>
      expect(again.integrityEvents[0]).toMatchObject({ cid: content.cid, chunk: 2, source: 'audit' }),
    )
    const metrics = await (await fetch(`${t.url}/metrics`)).text()
    expect(metrics).toMatch(/shoal_tracker_audits_total\{outcome="failed"\} 1/)
  })

  it('runs audits on its own schedule over published content and the nodes it is placed on', async () => {
    // a busy CI machine must not mark the node down mid-test: slow probes and late
    // answers are not misses here (only refused probes would be)
    const t = await setup({ auditIntervalMs: 40, probeTimeoutMs: 5_000, index: { downAfterMs: 60_000 } })
    const content = await makeContent(900) // one chunk: every range covers the flipped bit
    await publishSite(t.url, publisher, 'site', 1, [{ path: '/x', content }])
    const liar = await startTestNode()
    nodes.push(liar)
    liar.serve(content, { flipBit: 10 })
    await registerNode(t.url, liar)
    // no audit is asked for: the schedule finds the node once probes make it selectable
    // (it may pass through 'active' faster than a poll can see)
    await waitFor(() => t.tracker.index.get(liar.address)?.status === 'cooling-off', { timeoutMs: 20_000 })
  })

  it('treats wrong leaves as proven, and refusals or missing content as inconclusive', async () => {
    const t = await setup()
    const content = await makeContent(3000)
    const other = await makeContent(3000)
    await publishSite(t.url, publisher, 'blog', 1, [{ path: '/a.bin', content }])
    const empty = await activeNode(t, other)
    expect(await t.tracker.auditor.audit(empty.address, content.cid)).toMatchObject({
      outcome: 'inconclusive',
      reason: 'leaves: status 404',
    })
    expect(t.tracker.index.get(empty.address)?.status).toBe('active')
    const liar = await activeNode(t, other)
    liar.serve({ ...content, leaves: other.leaves })
    expect(await t.tracker.auditor.audit(liar.address, content.cid)).toMatchObject({ outcome: 'failed' })
    expect(t.tracker.index.get(liar.address)?.status).toBe('cooling-off')
  })

  it("turns a client's integrity evidence into a targeted audit, and refuses evidence the leaves refute", async () => {
    const t = await setup({ rateLimits: { reports: { rate: 100, burst: 100 } } })
    const content = await makeContent(3000)
    await publishSite(t.url, publisher, 'blog', 1, [{ path: '/a.bin', content }])
    const honest = await activeNode(t, content)
    const liar = await activeNode(t, content, 1500) // chunk 1
    const client = privateKeyToAccount(generatePrivateKey())

    // the leaves are known once any audit fetched them
    await t.tracker.auditor.audit(honest.address, content.cid, { chunk: 0 })
    const realLeaf1 = `0x${Buffer.from(content.leaves.subarray(32, 64)).toString('hex')}` as const
    let r = await postJson(
      `${t.url}/v1/reports`,
      await signedReport(client, {
        node: honest.address,
        failures: 1,
        cid: content.cid,
        chunk: 1,
        badHash: realLeaf1,
      }),
    )
    expect([r.status, (r.body.error as { code: string }).code]).toEqual([400, 'SHOAL_ERR_INVALID_PROOF'])
    expect((await t.tracker.store.getClient(client.address))?.refuted).toBe(1)
    expect(t.tracker.index.get(honest.address)?.status).toBe('active')

    const bad = new Uint8Array(content.bytes.subarray(1024, 2048))
    bad[1500 - 1024]! ^= 1
    r = await postJson(
      `${t.url}/v1/reports`,
      await signedReport(client, {
        node: liar.address,
        failures: 1,
        cid: content.cid,
        chunk: 1,
        badHash: await leafHash(bad),
      }),
    )
    expect(r.status).toBe(202)
    expect(r.body.auditQueued).toBe(true)
    await waitFor(() => t.tracker.index.get(liar.address)?.status === 'cooling-off')
    const events = await t.tracker.store.listIntegrityEvents(liar.address, 5)
    expect(events[0]).toMatchObject({ source: 'report', chunk: 1 })

    // a false claim against the honest node queues an audit that clears it
    r = await postJson(
      `${t.url}/v1/reports`,
      await signedReport(client, {
        node: honest.address,
        failures: 1,
        cid: content.cid,
        chunk: 2,
        badHash: `0x${'ee'.repeat(32)}`,
      }),
    )
    expect(r.status).toBe(202)
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(t.tracker.index.get(honest.address)?.status).toBe('active')
  })
})
