/**
 * `createClient` over the mesh: a node whose HTTP URL the tracker cannot reach (its probes
 * fail) but which holds a circuit relay reservation is handed out by the tracker only to
 * mesh clients (`mesh=1`), as a peer id and multiaddrs without a URL, and serves a CID
 * to `createClient` with a mesh dispatch over the chunk protocol: verified, ranges too.
 * A client without the mesh is never handed that node. A client with an account pays it
 * over the mesh (`/shoal/receipt/1.0.0`): the node stores its receipts in its book.
 */
import { once } from 'node:events'
import net, { type AddressInfo } from 'node:net'
import { type Announcer, announceNode, type EdgeNode } from '@shoal/edge-node'
import { verifyBandwidthReceipt } from '@shoal/protocol'
import pino from 'pino'
import { request } from 'undici'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ClientEvent, createClient } from '../src/index.ts'
import { createMeshClient, createMeshDispatch, type MeshClient } from '../src/node/index.ts'
import { type Content, makeContent, type Nodes, startEdgeNodes, waitFor } from './helpers/nodes.ts'
import { publish, signManifest, startTracker, type TrackerFixture } from './helpers/tracker.ts'

let t: TrackerFixture
let relay: Nodes
let nated: Nodes
let node: EdgeNode
let announcer: Announcer
let mesh: MeshClient
let content: Content
const account = privateKeyToAccount(generatePrivateKey())

/** A URL on 127.0.0.1 where nothing listens: what the tracker's probes meet. */
async function deadUrl(): Promise<string> {
  const server = net.createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  await new Promise((r) => server.close(r))
  return `http://127.0.0.1:${port}/`
}

const getJson = async (url: string) => {
  const res = await request(url)
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> }
}

beforeAll(async () => {
  t = await startTracker()
  content = await makeContent(300_000, 64 * 1024)
  // a node with a public address that offers circuit relay v2 (it is not registered)
  relay = await startEdgeNodes(1, [], { mesh: { relayServer: true } })
  const relayAddr = relay.nodes[0]!.mesh!.multiaddrs()[0]!
  // the node "behind NAT": reserves a slot on the relay; its HTTP URL answers no one
  nated = await startEdgeNodes(1, [account], { trackerUrl: t.url, mesh: { relays: [relayAddr] } })
  node = nated.nodes[0]!
  await nated.push(content)
  await waitFor(() => node.mesh!.reachability() === 'relayed', 10_000)
  announcer = await announceNode(
    node,
    account,
    { region: 'eu-west', capacity: 12_500_000, publicUrl: await deadUrl() },
    { logger: pino({ level: 'silent' }), heartbeatIntervalMs: 100 },
  )
  await announcer.registered()
  mesh = createMeshClient({ timeoutMs: 5_000 })
  await mesh.start()
}, 30_000)

afterAll(async () => {
  await announcer?.stop()
  await mesh?.stop()
  await nated?.close()
  await relay?.close()
  await t?.close()
})

describe('a node reachable only through the mesh', () => {
  it('is recorded as mesh-reachable: the probes refute its URL, its heartbeats report the relay', async () => {
    let view: Record<string, unknown> = {}
    await waitFor(() => {
      void getJson(`${t.url}/v1/nodes/${account.address}`).then((r) => {
        view = r.body
      })
      return (view.reachability as { via?: string } | undefined)?.via === 'mesh'
    }, 10_000)
    expect(view.status).toBe('unreachable')
    expect(view.reachability).toMatchObject({ via: 'mesh', url: false, mesh: 'relayed' })
    expect((view.heartbeat as { reachability?: string }).reachability).toBe('relayed')
    // the record it signed names its circuit address (registered again once it had one)
    const record = (view.record as { message: { multiaddrs: string[] } }).message
    expect(record.multiaddrs.some((m) => m.includes('/p2p-circuit'))).toBe(true)
  })

  it('is handed only to mesh clients, as a peer id and multiaddrs without a URL', async () => {
    const plain = await getJson(`${t.url}/v1/select?cid=${content.cid.text}`)
    expect(plain.body.nodes).toEqual([])
    const meshSelect = await getJson(`${t.url}/v1/select?cid=${content.cid.text}&mesh=1`)
    const nodes = meshSelect.body.nodes as Record<string, unknown>[]
    expect(nodes).toHaveLength(1)
    expect(nodes[0]).toMatchObject({ node: account.address, reachability: 'mesh', peerId: node.mesh!.peerId })
    expect(nodes[0]!.httpUrl).toBeUndefined()
    expect((nodes[0]!.multiaddrs as string[]).some((m) => m.includes('/p2p-circuit'))).toBe(true)
  })

  it('serves a CID to createClient through the mesh, verified, whole and by range', async () => {
    const events: { type: string }[] = []
    const client = createClient(
      { tracker: t.url, region: 'eu-west', onEvent: (e) => events.push(e) },
      { mesh: createMeshDispatch(mesh) },
    )
    try {
      const whole = await client.fetch(`shoal://${content.cid.text}`)
      expect(whole.status).toBe(200)
      expect(new Uint8Array(await whole.arrayBuffer())).toEqual(content.bytes)
      const part = await client.fetch(`shoal://${content.cid.text}`, {
        headers: { range: 'bytes=70000-200000' },
      })
      expect(part.status).toBe(206)
      expect(new Uint8Array(await part.arrayBuffer())).toEqual(content.bytes.subarray(70_000, 200_001))
      expect(events.filter((e) => e.type === 'integrity-failure')).toEqual([])
    } finally {
      await client.stop()
    }
    // the same fetch without the mesh has no node to ask
    const plain = createClient({ tracker: t.url, region: 'eu-west' })
    try {
      await expect(plain.fetch(`shoal://${content.cid.text}`)).rejects.toMatchObject({
        code: 'SHOAL_ERR_UNAVAILABLE',
      })
    } finally {
      await plain.stop()
    }
  })

  it('is paid over the mesh: a paying client leaves a stored, verifiable receipt for the bytes it verified', async () => {
    const publisher = privateKeyToAccount(generatePrivateKey())
    await publish(
      t,
      await signManifest(publisher, 'meshpaid', 1, [
        {
          path: '/a.bin',
          cid: content.cid.text,
          size: content.bytes.length,
          contentType: 'application/octet-stream',
          cacheControl: '',
        },
      ]),
    )
    const payer = privateKeyToAccount(generatePrivateKey())
    const events: ClientEvent[] = []
    const metered = async () => (await node.metrics.sessionBytes.get()).values[0]?.value ?? 0
    const before = await metered()
    const client = createClient(
      {
        tracker: t.url,
        region: 'eu-west',
        account: payer,
        receiptEveryBytes: 64 * 1024,
        onEvent: (e) => events.push(e),
      },
      { mesh: createMeshDispatch(mesh) },
    )
    try {
      const res = await client.fetch(`shoal://${content.cid.text}`)
      expect(new Uint8Array(await res.arrayBuffer())).toEqual(content.bytes)
    } finally {
      await client.stop()
    }
    const receiptEvents = events.filter((e) => e.type === 'receipt')
    expect(receiptEvents.filter((e) => e.outcome !== 'accepted')).toEqual([])
    // cumulative: several receipts as the bytes were verified
    expect(receiptEvents.length).toBeGreaterThan(1)
    expect(events.filter((e) => e.type === 'session')).toEqual([])

    const epoch = Math.floor(Date.now() / 1000 / 3600)
    const { receipts, tickets } = node.receipts.epoch(epoch)
    const mine = receipts.filter((r) => r.message.client === payer.address)
    expect(mine).toHaveLength(1)
    // every verified byte from the node: its leaf list and the object
    const verified = content.leaves.length + content.bytes.length
    expect(mine[0]!.message).toMatchObject({ node: account.address, bytes: verified, kind: 0 })
    await expect(verifyBandwidthReceipt(mine[0]!)).resolves.toMatchObject({ bytes: verified })
    // exactly what the node sent in the session: the leaf list once (the chunk requests
    // carry the verified leaves) and every chunk
    expect((await metered()) - before).toBe(verified)
    const ticket = tickets.find((tk) => tk.message.client === payer.address)
    expect(ticket?.message.issuer).toBe(t.account.address)
    // submitted with the node's other receipts, and the tracker noted it handed this
    // mesh-only node to the ticket: settlement pays only such pairs
    expect(node.receipts.pendingEpochs()).toContain(epoch)
    await t.tracker.flush()
    const selected = await t.tracker.store.listSelectionsOf([mine[0]!.message.ticket])
    expect(selected.map((s) => s.node.toLowerCase())).toEqual([account.address.toLowerCase()])
  })
})
