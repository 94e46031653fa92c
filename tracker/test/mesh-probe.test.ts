/**
 * The mesh probe: with `meshProbe` on, the tracker dials a node's claimed libp2p
 * addresses itself (real libp2p nodes on 127.0.0.1: TCP, Noise, Yamux, circuit relay v2)
 * and hands a node to mesh clients only when it reached the registered peer id there and
 * had a ping answered. A claim at an address where another peer answers, or nothing
 * listens, or through a relay that holds no reservation for it, is not handed out; a node
 * that becomes reachable later is picked up; the API answers while probes hang.
 */
import { once } from 'node:events'
import net, { type AddressInfo } from 'node:net'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Libp2p, PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { createMeshTransport } from '@shoal/client-sdk/node'
import { afterEach, describe, expect, it } from 'vitest'
import { meshProbeTarget } from '../src/reachability/mesh-prober.ts'
import { metaOf } from '../src/registry/registry.ts'
import {
  makeContent,
  nowSeconds,
  type Registered,
  registerNode,
  sendHeartbeat,
  startTestNode,
  type TestNode,
  waitFor,
} from './helpers/test-node.ts'
import { startTracker, type TrackerFixture } from './helpers/tracker.ts'

const MESH_PROBE = { intervalMs: 200, timeoutMs: 2_000, backoffMaxMs: 400, concurrency: 8 }

const cleanups: (() => Promise<unknown>)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {})
})

async function tracker(over: Parameters<typeof startTracker>[0] = {}): Promise<TrackerFixture> {
  const t = await startTracker({ meshProbe: MESH_PROBE, ...over })
  cleanups.push(() => t.close())
  return t
}

/** A bare libp2p peer of the mesh's own stack, listening on 127.0.0.1 (it answers pings). */
async function peer(
  init: { privateKey?: PrivateKey; port?: number; relays?: string[]; relayServer?: boolean } = {},
) {
  const node = await createMeshTransport({
    ...(init.privateKey ? { privateKey: init.privateKey } : {}),
    listen: [`/ip4/127.0.0.1/tcp/${init.port ?? 0}`],
    nat: {
      ...(init.relays ? { relays: init.relays } : {}),
      ...(init.relayServer ? { relayServer: {} } : {}),
      dcutr: false,
    },
  })
  cleanups.push(async () => node.stop())
  return node
}

/** `/ip4/127.0.0.1/tcp/<port>` of a started peer (the record form: no `/p2p/`). */
const tcpAddr = (node: Libp2p): string =>
  node
    .getMultiaddrs()
    .map(String)
    .find((m) => m.startsWith('/ip4/127.0.0.1/tcp/') && !m.includes('p2p-circuit'))!
    .replace(/\/p2p\/[^/]+$/, '')

/** A port on 127.0.0.1 where nothing listens (it was just freed). */
async function freePort(): Promise<number> {
  const server = net.createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  await new Promise((r) => server.close(r))
  return port
}

/**
 * A test node whose HTTP URL refuses the tracker's probes (so only the mesh can reach
 * it), registered with `peerId` and `multiaddrs`, heartbeating `claim` until the test ends.
 */
async function meshOnlyNode(
  t: TrackerFixture,
  peerId: string,
  multiaddrs: string[],
  claim: 'public' | 'relayed' = 'public',
): Promise<TestNode> {
  const node = await startTestNode()
  node.mode = 'refuse'
  cleanups.push(() => node.close())
  const reg: Registered = await registerNode(t.url, node, { over: { peerId, multiaddrs } })
  expect(reg.status).toBe(201)
  const session = { key: reg.key!, sessionId: reg.sessionId! }
  const beat = () => sendHeartbeat(t.url, node, session, { figures: { reachability: claim } })
  expect((await beat()).status).toBe(200)
  const timer = setInterval(() => void beat().catch(() => {}), 100)
  cleanups.push(async () => clearInterval(timer))
  return node
}

interface NodeView {
  reachability: {
    via: string
    mesh: string | null
    meshProbe: { reachable: boolean; reason?: string; relayed?: boolean; addr?: string } | null
  }
}
const view = async (t: TrackerFixture, node: TestNode): Promise<NodeView> =>
  (await (await fetch(`${t.url}/v1/nodes/${node.address}`)).json()) as NodeView

/** The nodes a mesh client is handed for a CID. */
async function meshSelect(
  t: TrackerFixture,
): Promise<{ node: string; peerId: string; reachability?: string }[]> {
  const { cid } = await makeContent(2048)
  const res = await fetch(`${t.url}/v1/select?cid=${cid}&count=8&mesh=1`)
  expect(res.status).toBe(200)
  return ((await res.json()) as { nodes: { node: string; peerId: string }[] }).nodes
}

const probed = (t: TrackerFixture, node: TestNode) =>
  waitFor(async () => {
    const v = await view(t, node)
    return v.reachability.meshProbe !== null ? v : undefined
  })

describe('mesh probe', () => {
  it('hands a node to mesh clients once the tracker reached its peer id at its claimed address and it answered a ping', async () => {
    const t = await tracker()
    const p = await peer()
    const node = await meshOnlyNode(t, p.peerId.toString(), [tcpAddr(p)])
    const v = await waitFor(async () => {
      const v = await view(t, node)
      return v.reachability.via === 'mesh' ? v : undefined
    })
    expect(v.reachability).toMatchObject({
      via: 'mesh',
      mesh: 'public',
      meshProbe: { reachable: true, relayed: false },
    })
    expect(v.reachability.meshProbe!.addr).toContain(tcpAddr(p))
    expect(await meshSelect(t)).toEqual([
      expect.objectContaining({ node: node.address, peerId: p.peerId.toString(), reachability: 'mesh' }),
    ])
    // a new record with other addresses is not handed out on the old probe's word
    expect(
      (
        await registerNode(t.url, node, {
          over: {
            peerId: p.peerId.toString(),
            multiaddrs: [`/ip4/127.0.0.1/tcp/${await freePort()}`],
            // a newer record than the first (timestamps are in seconds)
            timestamp: nowSeconds() + 1,
          },
        })
      ).status,
    ).toBe(200)
    expect(await meshSelect(t)).toEqual([])
    expect((await probed(t, node)).reachability).toMatchObject({
      via: 'none',
      meshProbe: { reachable: false },
    })
  })

  it('does not hand out a claim where another peer answers, or nothing listens', async () => {
    const t = await tracker()
    const honest = await peer()
    // a node naming its own peer id but another peer's address: Noise shows the lie
    const liar = await meshOnlyNode(t, peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString(), [
      tcpAddr(honest),
    ])
    // a node whose claimed port is closed
    const closed = await meshOnlyNode(t, peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString(), [
      `/ip4/127.0.0.1/tcp/${await freePort()}`,
    ])
    const [a, b] = await Promise.all([probed(t, liar), probed(t, closed)])
    expect(a.reachability).toMatchObject({ via: 'none', mesh: 'public', meshProbe: { reachable: false } })
    expect(a.reachability.meshProbe!.reason).toBe('wrong peer')
    expect(b.reachability).toMatchObject({ via: 'none', mesh: 'public', meshProbe: { reachable: false } })
    expect(b.reachability.meshProbe!.reason).not.toBe('wrong peer')
    expect(await meshSelect(t)).toEqual([])
  })

  it('checks a relayed claim through the named relay, and refuses one the relay holds no reservation for', async () => {
    const t = await tracker()
    const relay = await peer({ relayServer: true })
    const relayAddr = `${tcpAddr(relay)}/p2p/${relay.peerId.toString()}`
    const behind = await peer({ relays: [relayAddr] })
    await waitFor(() => behind.getMultiaddrs().some((m) => String(m).includes('/p2p-circuit')), {
      timeoutMs: 10_000,
    })
    // only the circuit address is claimed: the probe must go through the relay
    const relayed = await meshOnlyNode(t, behind.peerId.toString(), [`${relayAddr}/p2p-circuit`], 'relayed')
    // a node claiming the same relay without holding a reservation there
    const unreserved = await peer()
    const bogus = await meshOnlyNode(t, unreserved.peerId.toString(), [`${relayAddr}/p2p-circuit`], 'relayed')
    const v = await waitFor(async () => {
      const v = await view(t, relayed)
      return v.reachability.via === 'mesh' ? v : undefined
    })
    expect(v.reachability.meshProbe).toMatchObject({ reachable: true, relayed: true })
    expect(v.reachability.meshProbe!.addr).toContain('/p2p-circuit')
    expect((await probed(t, bogus)).reachability).toMatchObject({
      via: 'none',
      meshProbe: { reachable: false },
    })
    expect((await meshSelect(t)).map((n) => n.node)).toEqual([relayed.address])
  })

  it('picks up a node that becomes reachable later, and drops one that stops answering', async () => {
    const t = await tracker()
    const key = await generateKeyPair('Ed25519')
    const port = await freePort()
    const node = await meshOnlyNode(t, peerIdFromPrivateKey(key).toString(), [`/ip4/127.0.0.1/tcp/${port}`])
    expect((await probed(t, node)).reachability).toMatchObject({
      via: 'none',
      meshProbe: { reachable: false },
    })
    // it failed, and is probed again (with a back-off) until it comes up on that port
    const p = await peer({ privateKey: key, port })
    await waitFor(async () => ((await view(t, node)).reachability.via === 'mesh' ? true : undefined))
    expect((await meshSelect(t)).map((n) => n.node)).toEqual([node.address])
    // and goes away again: the next probe fails, and mesh clients no longer get it
    await p.stop()
    await waitFor(async () => ((await view(t, node)).reachability.via === 'none' ? true : undefined))
    expect(await meshSelect(t)).toEqual([])
  })

  it('leaves a node whose URL answers undialled, and dials it once its URL stops answering', async () => {
    const t = await tracker()
    const p = await peer()
    const node = await startTestNode()
    cleanups.push(() => node.close())
    const reg = await registerNode(t.url, node, {
      over: { peerId: p.peerId.toString(), multiaddrs: [tcpAddr(p)] },
    })
    const session = { key: reg.key!, sessionId: reg.sessionId! }
    await waitFor(async () => ((await view(t, node)).reachability.via === 'url' ? true : undefined))
    // the claim comes while the URL answers: no mesh probe is needed for it
    const timer = setInterval(
      () => void sendHeartbeat(t.url, node, session, { figures: { reachability: 'public' } }).catch(() => {}),
      100,
    )
    cleanups.push(async () => clearInterval(timer))
    await waitFor(async () => ((await view(t, node)).reachability.mesh === 'public' ? true : undefined))
    await new Promise((r) => setTimeout(r, 3 * MESH_PROBE.intervalMs))
    expect((await view(t, node)).reachability).toMatchObject({ via: 'url', meshProbe: null })
    // its URL goes away: the next round dials its mesh address, and mesh clients get it
    node.mode = 'refuse'
    const v = await waitFor(async () => {
      const v = await view(t, node)
      return v.reachability.via === 'mesh' ? v : undefined
    })
    expect(v.reachability).toMatchObject({ url: false, meshProbe: { reachable: true } })
    expect((await meshSelect(t)).map((n) => n.node)).toEqual([node.address])
  })

  it('keeps answering the API while every mesh probe hangs', async () => {
    // accepts TCP connections and never says a word: every Noise handshake waits for the timeout
    const sockets = new Set<net.Socket>()
    const silent = net.createServer((s) => {
      sockets.add(s)
      s.on('error', () => {})
    })
    silent.listen(0, '127.0.0.1')
    await once(silent, 'listening')
    cleanups.push(async () => {
      for (const s of sockets) s.destroy()
      await new Promise((r) => silent.close(r))
    })
    const addr = `/ip4/127.0.0.1/tcp/${(silent.address() as AddressInfo).port}`
    const t = await tracker({ meshProbe: { ...MESH_PROBE, concurrency: 2, timeoutMs: 60_000 } })
    const nodes: TestNode[] = []
    for (let i = 0; i < 6; i++) {
      const id = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
      nodes.push(await meshOnlyNode(t, id, [addr]))
    }
    await waitFor(() => t.tracker.meshProber!.stats().inFlight === 2)
    await waitFor(() => sockets.size >= 2)
    // the API answers (and hands out none of them) while the probes hang
    for (let i = 0; i < 5; i++) {
      const health = await fetch(`${t.url}/health`)
      expect(health.status).toBe(200)
      await health.arrayBuffer()
      expect(await meshSelect(t)).toEqual([])
      expect((await view(t, nodes[i]!)).reachability.via).toBe('none')
    }
    expect(t.tracker.meshProber!.stats()).toMatchObject({ targets: 6, inFlight: 2 })
  })
})

describe('meshProbeTarget', () => {
  const id = '12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo'
  const relayId = '12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq'
  it('keeps TCP addresses on public IP literals, direct or through a relay, each ending in the peer id', () => {
    expect(
      meshProbeTarget(
        id,
        [
          '/ip4/203.0.113.9/tcp/7580',
          `/ip4/198.51.100.4/tcp/4001/p2p/${relayId}/p2p-circuit`,
          `/ip6/2001:db8::1/tcp/7580/p2p/${id}`,
        ],
        false,
      ).addrs,
    ).toEqual([
      `/ip4/203.0.113.9/tcp/7580/p2p/${id}`,
      `/ip4/198.51.100.4/tcp/4001/p2p/${relayId}/p2p-circuit/p2p/${id}`,
      `/ip6/2001:db8::1/tcp/7580/p2p/${id}`,
    ])
  })

  it('never dials private, loopback or link-local addresses (direct or the relay), names, other transports or other peer ids', () => {
    const refused = [
      '/ip4/127.0.0.1/tcp/7580',
      '/ip4/10.0.0.2/tcp/7580',
      '/ip4/192.168.1.10/tcp/7580',
      '/ip4/100.64.0.1/tcp/7580',
      '/ip4/169.254.1.1/tcp/7580',
      '/ip6/::1/tcp/7580',
      '/ip6/fe80::1/tcp/7580',
      '/ip6/fd00::1/tcp/7580',
      '/ip6/::ffff:127.0.0.1/tcp/7580',
      `/ip4/10.1.2.3/tcp/4001/p2p/${relayId}/p2p-circuit`,
      '/dns4/node.example.com/tcp/7580',
      '/ip4/203.0.113.9/udp/7580/quic-v1',
      '/ip4/203.0.113.9/tcp/7580/http',
      '/ip4/203.0.113.9/tcp/0',
      '/ip4/203.0.113.9/tcp/70000',
      `/ip4/203.0.113.9/tcp/7580/p2p/${relayId}`,
      `/ip4/203.0.113.9/tcp/7580/p2p/${id}/p2p-circuit`,
      '/ip4/not-an-ip/tcp/7580',
    ]
    expect(meshProbeTarget(id, refused, false).addrs).toEqual([])
    // a devnet (allowPrivateUrls) may dial loopback
    expect(meshProbeTarget(id, ['/ip4/127.0.0.1/tcp/7580'], true).addrs).toEqual([
      `/ip4/127.0.0.1/tcp/7580/p2p/${id}`,
    ])
  })
})

describe('the multiaddrs a tracker hands out', () => {
  it('leave out private and loopback IP literals (direct or the relay) unless private URLs are allowed', async () => {
    const node = await startTestNode()
    cleanups.push(() => node.close())
    const record = node.record({
      multiaddrs: [
        '/ip4/192.168.1.1/tcp/80',
        '/ip4/127.0.0.1/tcp/7580',
        '/ip4/10.0.0.1/tcp/4001/p2p/12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq/p2p-circuit',
        '/ip6/fd00::1/tcp/7580',
        '/ip4/203.0.113.9/tcp/7580',
        '/dns4/node.example.com/tcp/7580',
        '/ip4/203.0.113.9/tcp/7481/http',
      ],
    })
    const strict = metaOf(record, false)
    expect(JSON.parse(`{${strict.json}}`).multiaddrs).toEqual([
      '/ip4/203.0.113.9/tcp/7580',
      '/dns4/node.example.com/tcp/7580',
      '/ip4/203.0.113.9/tcp/7481/http',
    ])
    expect(JSON.parse(`{${strict.meshJson!}}`).multiaddrs).toEqual([
      '/ip4/203.0.113.9/tcp/7580',
      '/dns4/node.example.com/tcp/7580',
    ])
    // a record naming only private addresses gives mesh clients nothing to dial
    expect(metaOf(node.record({ multiaddrs: ['/ip4/10.0.0.2/tcp/7580'] }), false).meshJson).toBeUndefined()
    // a devnet (allowPrivateUrls) hands out what the record says
    expect(JSON.parse(`{${metaOf(record, true).json}}`).multiaddrs).toEqual(record.multiaddrs)
  })
})
