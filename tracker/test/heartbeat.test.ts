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

async function setup() {
  const t = await startTracker()
  fixtures.push(t)
  const n = await startTestNode()
  nodes.push(n)
  const r = await registerNode(t.url, n)
  const session = { key: r.key!, sessionId: r.sessionId! }
  await waitFor(() => t.tracker.index.get(n.address)?.status === 'active')
  return { t, n, session }
}

const code = (r: { body: Record<string, unknown> }) => (r.body.error as { code: string } | undefined)?.code

describe('heartbeats authenticated by the session key agreed at registration', () => {
  it('accepts a heartbeat with the right MAC and applies its load', async () => {
    const { t, n, session } = await setup()
    const r = await sendHeartbeat(t.url, n, session, { figures: { load: 12_000_000 } })
    expect(r).toMatchObject({ status: 200, body: { status: 'over-capacity' } })
    expect(t.tracker.index.explain(n.address).figures.load).toBe(12_000_000)
    const ok = await sendHeartbeat(t.url, n, session, { figures: { load: 1000 } })
    expect(ok.body.status).toBe('active')
    const info = (await (await fetch(`${t.url}/v1/nodes/${n.address}`)).json()) as {
      heartbeat: Record<string, number>
    }
    expect(info.heartbeat).toMatchObject({
      load: 1000,
      cacheObjects: 10,
      servedRequests: 100,
      connections: 3,
    })
  })

  it('refuses replays (same or older timestamp), forged MACs, unknown sessions and stale clocks; none changes the load', async () => {
    const { t, n, session } = await setup()
    const ts = Date.now()
    expect((await sendHeartbeat(t.url, n, session, { timestamp: ts, figures: { load: 5 } })).status).toBe(200)
    const load = () => t.tracker.index.explain(n.address).figures.load
    let r = await sendHeartbeat(t.url, n, session, { timestamp: ts, figures: { load: 7 } })
    expect([r.status, code(r)]).toEqual([409, 'SHOAL_ERR_REPLAY'])
    r = await sendHeartbeat(t.url, n, session, { timestamp: ts - 1, figures: { load: 7 } })
    expect([r.status, code(r)]).toEqual([409, 'SHOAL_ERR_REPLAY'])
    r = await sendHeartbeat(t.url, n, { ...session, key: Buffer.alloc(32, 1) }, { figures: { load: 7 } })
    expect([r.status, code(r)]).toEqual([401, 'SHOAL_ERR_INVALID_SIGNATURE'])
    r = await sendHeartbeat(t.url, n, { ...session, sessionId: 'ab'.repeat(16) }, { figures: { load: 7 } })
    expect([r.status, code(r)]).toEqual([401, 'SHOAL_ERR_UNAUTHORIZED'])
    r = await sendHeartbeat(t.url, n, session, { timestamp: Date.now() + 10 * 60_000, figures: { load: 7 } })
    expect([r.status, code(r)]).toEqual([401, 'SHOAL_ERR_EXPIRED'])
    const res = await fetch(`${t.url}/v1/nodes/heartbeat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    })
    expect(res.status).toBe(401)
    expect(load()).toBe(5)
  })

  it('refuses negative, fractional, absurd and unknown figures with 400 naming the field', async () => {
    const { t, n, session } = await setup()
    for (const [figures, field] of [
      [{ load: -1 }, 'load'],
      [{ load: 1.5 }, 'load'],
      [{ load: 1e13 }, 'load'],
      [{ connections: 1e9 }, 'connections'],
      [{ cacheBytes: Number.MAX_SAFE_INTEGER + 2 }, 'cacheBytes'],
      [{ extra: 1 }, 'heartbeat'],
    ] as const) {
      const r = await sendHeartbeat(t.url, n, session, { figures: figures as Record<string, number> })
      expect(r.status).toBe(400)
      expect(code(r)).toBe('SHOAL_ERR_INVALID_ARGUMENT')
      expect((r.body.error as { message: string }).message).toContain(field)
    }
    expect(t.tracker.index.explain(n.address).figures.heartbeatAt).toBeNull()
  })

  it('keeps sessions across a restart (the key is in the store)', async () => {
    const { t, n, session } = await setup()
    expect((await sendHeartbeat(t.url, n, session)).status).toBe(200)
    const t2 = await t.restart()
    fixtures.push(t2)
    expect((await sendHeartbeat(t2.url, n, session)).status).toBe(200)
  })

  it('accepts heartbeats at a replica sharing the store, also after the node registers again elsewhere', async () => {
    const { t, n, session } = await setup()
    const replica = await startTracker({}, { dir: t.dir, account: t.account, keep: true })
    fixtures.push(replica)
    expect((await sendHeartbeat(replica.url, n, session)).status).toBe(200)
    const again = await registerNode(t.url, n, { over: { timestamp: Math.floor(Date.now() / 1000) + 1 } })
    expect(again.status).toBe(200)
    const fresh = { key: again.key!, sessionId: again.sessionId! }
    expect((await sendHeartbeat(replica.url, n, fresh)).status).toBe(200)
    const old = await sendHeartbeat(replica.url, n, session)
    expect(old.status).toBe(401)
  })

  it('a replica picks up nodes registered through another replica after it started', async () => {
    const t = await startTracker()
    fixtures.push(t)
    const replica = await startTracker({ syncIntervalMs: 50 }, { dir: t.dir, account: t.account, keep: true })
    fixtures.push(replica)
    const n = await startTestNode()
    nodes.push(n)
    const r = await registerNode(t.url, n)
    await waitFor(() => replica.tracker.index.get(n.address)?.status === 'active')
    expect((await sendHeartbeat(replica.url, n, { key: r.key!, sessionId: r.sessionId! })).status).toBe(200)
    const res = await fetch(
      `${replica.url}/v1/select?cid=saejacwl7zmysqljumvgcadjudd6kk4c4mshl6mtoy46y3xxrdba7q5wy`,
    )
    expect(((await res.json()) as { nodes: { node: string }[] }).nodes.map((x) => x.node)).toEqual([
      n.address,
    ])
  })

  it('answers a registration without a session, and then refuses heartbeats', async () => {
    const t = await startTracker()
    fixtures.push(t)
    const n = await startTestNode()
    nodes.push(n)
    const r = await registerNode(t.url, n, { session: false })
    expect(r.status).toBe(201)
    expect(r.body.session).toBeUndefined()
  })
})
