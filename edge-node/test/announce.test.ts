/**
 * A real edge node registers itself with a real tracker, is probed into selection and
 * reports its figures in MAC'd heartbeats; a tracker that lost the session gets a new
 * registration.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { computeCid } from '@shoal/protocol'
import { createSqliteStore, createTracker, type Tracker } from '@shoal/tracker'
import pino from 'pino'
import { Registry } from 'prom-client'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { afterEach, describe, expect, it } from 'vitest'
import { createEdgeNode, type EdgeNode } from '../src/node.ts'
import { type Announcer, announceNode, createAnnouncer, type MeshReachability } from '../src/tracker/index.ts'

const cleanup: (() => Promise<unknown>)[] = []
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => {})
})

async function tempDir(prefix: string) {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  cleanup.push(() => rm(dir, { recursive: true, force: true }))
  return dir
}

async function startTracker(dir: string, key = generatePrivateKey(), port = 0): Promise<Tracker> {
  const tracker = createTracker(
    {
      port,
      allowPrivateUrls: true,
      probeIntervalMs: 200,
      probeTimeoutMs: 2_000,
      auditIntervalMs: 0,
      stateFlushIntervalMs: 100,
      shutdownGraceMs: 100,
    },
    {
      store: createSqliteStore({ path: join(dir, 'tracker.db') }),
      account: privateKeyToAccount(key),
      register: new Registry(),
    },
  )
  await tracker.start()
  return tracker
}

async function until<T>(fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (v !== undefined) return v
    if (Date.now() > deadline) throw new Error('timed out waiting')
    await new Promise((r) => setTimeout(r, 25))
  }
}

async function startNode(
  trackerUrl: string,
): Promise<{ node: EdgeNode; account: ReturnType<typeof privateKeyToAccount> }> {
  const account = privateKeyToAccount(generatePrivateKey())
  const node = createEdgeNode(
    {
      dataDir: await tempDir('shoal-announce-node-'),
      host: '127.0.0.1',
      port: 0,
      trackerUrl,
      acceptPushes: 'any',
    },
    { account, registry: new Registry() },
  )
  await node.start()
  cleanup.push(() => node.stop())
  return { node, account }
}

describe('announcing a node to its tracker', () => {
  it('registers, becomes active and selectable, and reports its figures in heartbeats', async () => {
    const tracker = await startTracker(await tempDir('shoal-announce-tracker-'))
    cleanup.push(() => tracker.stop())
    const { node, account } = await startNode(tracker.url)
    const announcer: Announcer = await announceNode(
      node,
      account,
      { region: 'eu-west', capacity: 5_000_000 },
      { logger: pino({ level: 'silent' }), heartbeatIntervalMs: 100 },
    )
    cleanup.push(() => announcer.stop())
    await announcer.registered()
    await until(() => (tracker.index.get(account.address)?.status === 'active' ? true : undefined))

    // traffic the heartbeat must report
    const bytes = new TextEncoder().encode('served through the node')
    const { cid } = await computeCid(bytes)
    expect((await fetch(`${node.url}/c/${cid.text}`, { method: 'PUT', body: bytes })).status).toBe(201)
    expect(await (await fetch(`${node.url}/c/${cid.text}`)).text()).toBe('served through the node')

    const info = await until(async () => {
      const body = (await (await fetch(`${tracker.url}/v1/nodes/${account.address}`)).json()) as {
        record: { message: { region: string; capacity: number; peerId: string; httpUrl: string } }
        heartbeat: { servedBytes: number; servedRequests: number; cacheObjects: number } | null
      }
      return body.heartbeat !== null && body.heartbeat.servedBytes >= bytes.length ? body : undefined
    })
    const identity = { peerId: node.mesh!.peerId }
    expect(info.record.message).toMatchObject({
      region: 'eu-west',
      capacity: 5_000_000,
      peerId: identity.peerId,
      httpUrl: `${node.url}/`,
    })
    expect(identity.peerId).toMatch(/^12D3KooW/)
    expect(info.heartbeat!.servedRequests).toBeGreaterThanOrEqual(2)
    expect(info.heartbeat!.cacheObjects).toBeGreaterThanOrEqual(1) // the body, and its leaves
    expect(tracker.index.select({ cid: cid.text, count: 3 }).map((p) => p.node)).toEqual([account.address])
    expect(announcer.trackerStatus).toBe('active')
  })

  it('retries while the tracker is down and registers again with a tracker that lost its session', async () => {
    const trackerDir = await tempDir('shoal-announce-tracker-')
    const trackerKey = generatePrivateKey()
    const first = await startTracker(trackerDir, trackerKey)
    const port = Number(new URL(first.url).port)
    const { node, account } = await startNode(first.url)
    const announcer = await announceNode(
      node,
      account,
      { region: 'local', capacity: 1_000_000 },
      { logger: pino({ level: 'silent' }), heartbeatIntervalMs: 100 },
    )
    cleanup.push(() => announcer.stop())
    await announcer.registered()
    await first.stop()
    // heartbeats fail while the tracker is away; the node keeps serving
    await new Promise((r) => setTimeout(r, 300))
    expect((await fetch(`${node.url}/health`)).status).toBe(200)

    // a tracker on the same address with an empty store: it knows neither record nor session
    await rm(join(trackerDir, 'tracker.db'), { force: true })
    await rm(join(trackerDir, 'tracker.db-wal'), { force: true })
    await rm(join(trackerDir, 'tracker.db-shm'), { force: true })
    const second = await startTracker(trackerDir, trackerKey, port)
    cleanup.push(() => second.stop())
    await until(() => (second.index.get(account.address)?.status === 'active' ? true : undefined), 30_000)
    expect(announcer.state).toBe('registered')
  })
})

describe('announcing mesh reachability', () => {
  it('reports its mesh reachability in heartbeats and registers a new record when its addresses change, not when they only reorder', async () => {
    const tracker = await startTracker(await tempDir('shoal-announce-tracker-'))
    cleanup.push(() => tracker.stop())
    const { node, account } = await startNode(tracker.url)
    const direct = '/ip4/127.0.0.1/tcp/4001'
    const other = '/ip4/127.0.0.1/tcp/4002'
    const circuit =
      '/ip4/127.0.0.1/tcp/4003/p2p/12D3KooWRkGLz4YbVmrsWK75VjFTs8NvaBu42xhAmQaP4KeJpw1L/p2p-circuit'
    let addrs = [direct, other]
    let claim: MeshReachability = 'private'
    const announcer = createAnnouncer(
      {
        trackerUrl: tracker.url,
        record: {
          peerId: node.mesh!.peerId,
          multiaddrs: addrs,
          httpUrl: `${node.url}/`,
          region: 'eu-west',
          capacity: 5_000_000,
          payout: account.address,
        },
        heartbeatIntervalMs: 50,
        reregisterMinMs: 0,
      },
      {
        account,
        figures: () => node.figures(),
        logger: pino({ level: 'silent' }),
        multiaddrs: () => addrs,
        reachability: () => claim,
      },
    )
    cleanup.push(() => announcer.stop())
    announcer.start()
    await announcer.registered()
    type View = {
      record: { message: { multiaddrs: string[]; timestamp: number } }
      heartbeat: { reachability?: string; timestamp: number } | null
    }
    const view = async () =>
      (await (await fetch(`${tracker.url}/v1/nodes/${account.address}`)).json()) as View
    const first = await until(async () => {
      const v = await view()
      return v.heartbeat?.reachability === 'private' ? v : undefined
    })
    expect(first.record.message.multiaddrs).toEqual([direct, other])

    // the same addresses in another order: heartbeats go on, no new record
    addrs = [other, direct]
    const later = await until(async () => {
      const v = await view()
      return (v.heartbeat?.timestamp ?? 0) > first.heartbeat!.timestamp + 200 ? v : undefined
    })
    expect(later.record.message.timestamp).toBe(first.record.message.timestamp)

    // a relay reservation: a new signed record with the circuit address, and the claim
    addrs = [circuit, direct, other]
    claim = 'relayed'
    const moved = await until(async () => {
      const v = await view()
      return v.record.message.multiaddrs.includes(circuit) && v.heartbeat?.reachability === 'relayed'
        ? v
        : undefined
    })
    expect(moved.record.message.timestamp).toBeGreaterThan(first.record.message.timestamp)
    expect(announcer.state).toBe('registered')
  })
})
