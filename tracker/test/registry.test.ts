import { encodeNodeRecord, signNodeRecord } from '@shoal/protocol'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createPostgresStore } from '../src/index.ts'
import {
  nowSeconds,
  postJson,
  registerNode,
  startTestNode,
  type TestNode,
  waitFor,
} from './helpers/test-node.ts'
import { type OpenStore, openSqliteStore, startTracker, type TrackerFixture } from './helpers/tracker.ts'
import { type PgCluster, startPgCluster } from './store/pg-cluster.ts'

const CID = 'saejacwl7zmysqljumvgcadjudd6kk4c4mshl6mtoy46y3xxrdba7q5wy'

let nodes: TestNode[] = []
let fixtures: TrackerFixture[] = []

afterEach(async () => {
  for (const f of fixtures.reverse()) await f.close()
  for (const n of nodes) await n.close().catch(() => {})
  nodes = []
  fixtures = []
})

/**
 * The same suite runs on each store: SQLite (the default) and PostgreSQL (a throwaway
 * cluster this file starts, one database per tracker).
 */
let cluster: PgCluster | undefined
let databases = 0
afterAll(async () => {
  await cluster?.stop()
})

const BACKENDS: { name: string; store: string; setup(): Promise<void>; openStore(): Promise<OpenStore> }[] = [
  { name: 'SQLite', store: 'sqlite', setup: async () => {}, openStore: async () => openSqliteStore },
  {
    name: 'PostgreSQL',
    store: 'postgres',
    async setup() {
      cluster ??= await startPgCluster()
    },
    async openStore() {
      const url = await cluster!.createDatabase(`registry_${++databases}`)
      return () => createPostgresStore({ connectionString: url })
    },
  },
]

async function testNode(options = {}) {
  const n = await startTestNode(options)
  nodes.push(n)
  return n
}

async function select(url: string, cid = CID, count = 5): Promise<string[]> {
  const res = await fetch(`${url}/v1/select?cid=${cid}&count=${count}`)
  expect(res.status).toBe(200)
  const body = (await res.json()) as { nodes: { node: string }[] }
  return body.nodes.map((n) => n.node)
}

interface NodeInfo {
  node: string
  status: string
  eligible: boolean
  registration: string
  registeredAt: number
  components: Record<string, number>
  figures: Record<string, number>
  record: { message: Record<string, unknown> }
}

async function nodeInfo(url: string, address: string) {
  const res = await fetch(`${url}/v1/nodes/${address}`)
  return { status: res.status, body: (await res.json()) as NodeInfo }
}

describe.each(BACKENDS)('registration and probes over real HTTP on $name', (backend) => {
  beforeAll(() => backend.setup(), 600_000)

  async function tracker(over = {}) {
    const f = await startTracker(over, { openStore: await backend.openStore() })
    fixtures.push(f)
    return f
  }

  it('registers a node, probes it with signed challenges and selects it with its URL, peer id and multiaddrs', async () => {
    const t = await tracker()
    const n = await testNode()
    const r = await registerNode(t.url, n)
    expect(r.status).toBe(201)
    expect(r.body).toMatchObject({ created: true, node: n.address, status: 'unreachable' })
    expect(r.sessionId).toMatch(/^[0-9a-f]{32}$/)
    await waitFor(async () => (await select(t.url)).includes(n.address))
    expect(n.health).toBeGreaterThan(0)
    const res = await fetch(`${t.url}/v1/select?cid=${CID}&count=2`)
    const body = (await res.json()) as { cid: string; nodes: Record<string, unknown>[] }
    expect(body.cid).toBe(CID)
    expect(body.nodes[0]).toMatchObject({
      node: n.address,
      region: 'eu-west',
      httpUrl: n.url,
      peerId: n.peerId,
      multiaddrs: ['/ip4/127.0.0.1/tcp/4001'],
    })
    expect(body.nodes[0]!.score).toBeGreaterThan(0)
    const info = await nodeInfo(t.url, n.address.toLowerCase())
    expect(info.status).toBe(200)
    expect(info.body).toMatchObject({
      node: n.address,
      status: 'active',
      eligible: true,
      registration: 'registered',
    })
    expect(Object.keys(info.body.components)).toEqual([
      'uptime',
      'success',
      'latency',
      'throughput',
      'integrity',
      'score',
    ])
    expect(info.body.figures.answered).toBeGreaterThan(0)
    expect(info.body.record.message.httpUrl).toBe(n.url)
  })

  it('takes a node that stops answering out of selection within two probe intervals', async () => {
    const t = await tracker({ probeIntervalMs: 500, probeTimeoutMs: 200 })
    const a = await testNode()
    const b = await testNode()
    await registerNode(t.url, a)
    await registerNode(t.url, b)
    await waitFor(async () => (await select(t.url)).length === 2)
    const killedAt = Date.now()
    await b.close()
    // the last selection still naming b must have been asked within two intervals of the kill
    let lastWithB = killedAt
    await waitFor(
      async () => {
        const askedAt = Date.now()
        const picked = await select(t.url)
        if (picked.includes(b.address)) lastWithB = askedAt
        return picked.length === 1 && picked[0] === a.address
      },
      { intervalMs: 10 },
    )
    expect(lastWithB - killedAt).toBeLessThanOrEqual(2 * 500)
    expect((await nodeInfo(t.url, b.address)).body.status).toBe('down')
  })

  it('never selects a node whose answers are signed by another key (a proxy faking liveness)', async () => {
    const t = await tracker()
    const n = await testNode()
    n.mode = 'forge'
    await registerNode(t.url, n)
    await waitFor(() => n.health >= 3)
    expect(await select(t.url)).toEqual([])
    const info = await nodeInfo(t.url, n.address)
    expect(info.body.status).toBe('unreachable')
    expect(info.body.figures.answered).toBe(0)
  })

  it('keeps the registry, scores and placement across a restart', async () => {
    let t = await tracker()
    const a = await testNode()
    const b = await testNode()
    await registerNode(t.url, a)
    await registerNode(t.url, b)
    await waitFor(async () => (await select(t.url)).length === 2)
    const before = await select(t.url, CID, 2)
    const answered = (await nodeInfo(t.url, a.address)).body.figures.answered as number
    t = await t.restart()
    fixtures.push(t)
    const stats = (await (await fetch(`${t.url}/v1/stats`)).json()) as { tracker: { store: string } }
    expect(stats.tracker.store).toBe(backend.store)
    // selectable at once after the restart (grace), before any new probe answer
    expect(await select(t.url, CID, 2)).toEqual(before)
    const info = await nodeInfo(t.url, a.address)
    expect(info.status).toBe(200)
    expect(info.body.figures.answered).toBeGreaterThanOrEqual(answered)
    expect(info.body.record.message.node).toBe(a.address)
    // and still probed: a node killed after the restart leaves selection
    await a.close()
    await waitFor(async () => (await select(t.url)).length === 1)
  })

  it('refuses forged, replayed, stale and conflicting registrations, and none changes a score', async () => {
    const t = await tracker()
    const n = await testNode()
    const signed = await n.signedRecord()
    expect((await registerNode(t.url, n, { signed })).status).toBe(201)
    await waitFor(async () => (await select(t.url)).includes(n.address))
    await t.tracker.flush()
    const before = (await nodeInfo(t.url, n.address)).body

    // replay: the very same record
    let r = await registerNode(t.url, n, { signed })
    expect(r.status).toBe(409)
    expect(r.body).toEqual({ error: { code: 'SHOAL_ERR_REPLAY', message: expect.any(String) } })
    // an older record
    r = await registerNode(t.url, n, { over: { timestamp: signed.message.timestamp - 5 } })
    expect([r.status, (r.body.error as { code: string }).code]).toEqual([409, 'SHOAL_ERR_STALE'])
    // forged: signed by another key, naming this node
    const forger = privateKeyToAccount(generatePrivateKey())
    const forged = await signNodeRecord(forger, {
      ...n.record({ timestamp: nowSeconds() + 1 }),
      node: forger.address,
    })
    forged.message = { ...forged.message, node: n.address }
    r = await postJson(`${t.url}/v1/nodes`, encodeNodeRecord(forged))
    expect([r.status, (r.body.error as { code: string }).code]).toEqual([401, 'SHOAL_ERR_INVALID_SIGNATURE'])
    // too old for the freshness window
    r = await registerNode(t.url, n, { over: { timestamp: nowSeconds() - 3600 } })
    expect((r.body.error as { code: string }).code).toBe('SHOAL_ERR_STALE')
    const fresh = await testNode()
    r = await registerNode(t.url, fresh, { over: { timestamp: nowSeconds() - 3600 } })
    expect([r.status, (r.body.error as { code: string }).code]).toEqual([401, 'SHOAL_ERR_EXPIRED'])
    // another key claiming the URL, or the peer id
    const thief = await testNode()
    r = await registerNode(t.url, thief, { over: { httpUrl: n.url } })
    expect([r.status, (r.body.error as { code: string }).code]).toEqual([409, 'SHOAL_ERR_CONFLICT'])
    r = await registerNode(t.url, thief, { over: { peerId: n.peerId } })
    expect([r.status, (r.body.error as { code: string }).code]).toEqual([409, 'SHOAL_ERR_CONFLICT'])
    // a session bound to another registration
    const other = await n.signedRecord({ timestamp: nowSeconds() + 2 })
    r = await postJson(`${t.url}/v1/nodes`, {
      record: JSON.parse(encodeNodeRecord(other)),
      session: { publicKey: `0x${'11'.repeat(32)}`, signature: signed.signature },
    })
    expect([r.status, (r.body.error as { code: string }).code]).toEqual([401, 'SHOAL_ERR_INVALID_SIGNATURE'])

    const after = (await nodeInfo(t.url, n.address)).body
    expect(after.record).toEqual(before.record)
    expect(after.components.success).toBe(before.components.success)
    expect(after.components.integrity).toBe(before.components.integrity)
    expect(after.registeredAt).toBe(before.registeredAt)
  })

  it('refuses node URLs on private addresses unless allowed', async () => {
    const t = await tracker({ allowPrivateUrls: false })
    const n = await testNode()
    const r = await registerNode(t.url, n)
    expect([r.status, (r.body.error as { code: string }).code]).toEqual([403, 'SHOAL_ERR_FORBIDDEN'])
  })

  it('lets a node move to a new URL and frees the old one', async () => {
    const t = await tracker()
    const n = await testNode()
    await registerNode(t.url, n)
    const moved = await registerNode(t.url, n, {
      over: { httpUrl: 'http://127.0.0.1:1/', timestamp: nowSeconds() + 1 },
    })
    expect(moved.status).toBe(200)
    expect(moved.body.created).toBe(false)
    const other = await testNode()
    expect((await registerNode(t.url, other, { over: { httpUrl: n.url } })).status).toBe(201)
  })
})
