import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { afterEach, describe, expect, it } from 'vitest'
import {
  nowSeconds,
  postJson,
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
  const t = await startTracker({ rateLimits: { reports: { rate: 1000, burst: 1000 } }, ...over })
  fixtures.push(t)
  const n = await startTestNode()
  nodes.push(n)
  await registerNode(t.url, n)
  await waitFor(() => t.tracker.index.get(n.address)?.status === 'active')
  return { t, n }
}

const code = (r: { body: Record<string, unknown> }) => (r.body.error as { code: string } | undefined)?.code

describe('client reports', () => {
  it('accepts a signed report weighted by the reporter standing and refuses its replay', async () => {
    const { t, n } = await setup()
    const client = privateKeyToAccount(generatePrivateKey())
    const report = await signedReport(client, {
      node: n.address,
      requests: 4,
      failures: 1,
      throughput: 9_000_000,
    })
    const r = await postJson(`${t.url}/v1/reports`, report)
    expect(r.status).toBe(202)
    expect(r.body).toMatchObject({
      node: n.address,
      standing: 0.05,
      weight: 0.05,
      status: 'active',
      auditQueued: false,
    })
    const f = t.tracker.index.explain(n.address).figures
    expect(f.successes).toBeCloseTo(0.0375, 6)
    expect(f.failures).toBeCloseTo(0.0125, 6)
    const replay = await postJson(`${t.url}/v1/reports`, report)
    expect([replay.status, code(replay)]).toEqual([409, 'SHOAL_ERR_REPLAY'])
  })

  it('refuses forged, stale, self and inconsistent reports without touching the score', async () => {
    const { t, n } = await setup()
    const client = privateKeyToAccount(generatePrivateKey())
    const before = t.tracker.index.explain(n.address).figures
    const forged = await signedReport(client, { node: n.address, failures: 10 })
    forged.message = { ...forged.message, client: privateKeyToAccount(generatePrivateKey()).address }
    let r = await postJson(`${t.url}/v1/reports`, forged)
    expect([r.status, code(r)]).toEqual([401, 'SHOAL_ERR_INVALID_SIGNATURE'])
    r = await postJson(
      `${t.url}/v1/reports`,
      await signedReport(client, { node: n.address, timestamp: nowSeconds() - 7200 }),
    )
    expect([r.status, code(r)]).toEqual([401, 'SHOAL_ERR_EXPIRED'])
    r = await postJson(`${t.url}/v1/reports`, await signedReport(n.account, { node: n.address }))
    expect([r.status, code(r)]).toEqual([403, 'SHOAL_ERR_FORBIDDEN'])
    r = await postJson(
      `${t.url}/v1/reports`,
      await signedReport(client, { node: n.address, requests: 1, failures: 2 }),
    )
    expect([r.status, code(r)]).toEqual([400, 'SHOAL_ERR_INVALID_ARGUMENT'])
    r = await postJson(
      `${t.url}/v1/reports`,
      await signedReport(client, { node: n.address, throughput: 1e13 }),
    )
    expect([r.status, code(r)]).toEqual([400, 'SHOAL_ERR_INVALID_ARGUMENT'])
    const stranger = privateKeyToAccount(generatePrivateKey()).address
    r = await postJson(`${t.url}/v1/reports`, await signedReport(client, { node: stranger }))
    expect([r.status, code(r)]).toEqual([404, 'SHOAL_ERR_NOT_FOUND'])
    const after = t.tracker.index.explain(n.address).figures
    expect([after.successes, after.failures]).toEqual([before.successes, before.failures])
  })

  it('rate-limits a report flood from one client (429) and the flood moves the score no further', async () => {
    const { t, n } = await setup()
    const client = privateKeyToAccount(generatePrivateKey())
    const statuses: number[] = []
    for (let i = 0; i < 14; i++) {
      const r = await postJson(
        `${t.url}/v1/reports`,
        await signedReport(client, { node: n.address, failures: 10 }),
      )
      statuses.push(r.status)
      if (r.status === 429) expect(code(r)).toBe('SHOAL_ERR_RATE_LIMITED')
    }
    const accepted = statuses.filter((s) => s === 202).length
    expect(accepted).toBe(10)
    expect(statuses.slice(10)).toEqual([429, 429, 429, 429])
    // …and the flood from one fresh key spent at most the low-standing budget
    expect(t.tracker.index.explain(n.address).figures.failures).toBeLessThanOrEqual(0.25 + 1e-9)
  })

  it('a swarm of fresh keys cannot sink a good node', async () => {
    const { t, n } = await setup()
    const before = t.tracker.index.explain(n.address)
    for (let i = 0; i < 60; i++) {
      const swarm = privateKeyToAccount(generatePrivateKey())
      const r = await postJson(
        `${t.url}/v1/reports`,
        await signedReport(swarm, { node: n.address, requests: 100, failures: 100 }),
      )
      expect(r.status).toBe(202)
    }
    const after = t.tracker.index.explain(n.address)
    expect(after.figures.failures).toBeCloseTo(0.25, 3)
    expect(after.components.success).toBeGreaterThan(0.8)
    expect(after.score).toBeGreaterThan(0.75 * before.score)
    expect(after.eligible).toBe(true)
  })
})
