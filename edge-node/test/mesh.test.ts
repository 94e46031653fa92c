import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Libp2p, Stream } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { nodeReportTypedData } from '@shoal/client-sdk'
import {
  CHUNK_PROTOCOL,
  createMeshClient,
  createMeshTransport,
  decodeChunkRequest,
  encodeVarint,
  frameReader,
  HAVE_PROTOCOL,
  MESH_LIMITS,
  type MeshIntegrityEvidence,
  writeFrame,
  writeJson,
} from '@shoal/client-sdk/node'
import { chunkSpan, computeCid, encodeSiteManifest, signSiteManifest } from '@shoal/protocol'
import { request } from 'undici'
import { verifyTypedData } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { afterEach, describe, expect, it } from 'vitest'
import {
  createMesh,
  type Mesh,
  type MeshComponents,
  type MeshHoldings,
  type MeshPeerInfo,
  trackerReporter,
} from '../src/mesh/index.ts'
import { createEdgeNode, type EdgeNode } from '../src/node.ts'
import { frame, rawExchange } from './helpers/mesh-raw.ts'
import { pattern } from './helpers/pattern.ts'
import { waitFor } from './helpers/wait.ts'

const publisher = privateKeyToAccount(`0x${'42'.repeat(32)}`)
const nodeKey = privateKeyToAccount(`0x${'43'.repeat(32)}`)

interface Origin {
  url: string
  hits: () => number
  files: Map<string, Buffer>
  close(): Promise<void>
}

async function startOrigin(): Promise<Origin> {
  let hits = 0
  const files = new Map<string, Buffer>()
  const server = http.createServer((req, res) => {
    hits++
    const body = files.get(req.url ?? '/')
    if (body === undefined) res.writeHead(404).end()
    else res.writeHead(200, { 'content-length': body.length }).end(body)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    hits: () => hits,
    files,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

const cleanups: (() => Promise<unknown>)[] = []
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn().catch(() => {})
})

async function startNode(
  mesh: { bootstrap?: MeshPeerInfo[] } = {},
  components: Parameters<typeof createEdgeNode>[1] = {},
): Promise<EdgeNode> {
  const dataDir = await mkdtemp(join(tmpdir(), 'shoal-mesh-'))
  const node = createEdgeNode(
    {
      dataDir,
      host: '127.0.0.1',
      port: 0,
      shutdownGraceMs: 100,
      mesh: { ...mesh, haveTimeoutMs: 1000 },
    },
    components,
  )
  await node.start()
  cleanups.push(async () => {
    await node.stop()
    await rm(dataDir, { recursive: true, force: true })
  })
  return node
}

const peerOf = (node: EdgeNode): MeshPeerInfo => ({
  peerId: node.mesh!.peerId,
  multiaddrs: node.mesh!.multiaddrs(),
})

/** A bare mesh (no edge node) on 127.0.0.1, stopped after the test. */
async function startMesh(holdings: MeshHoldings, init = {}, discover?: MeshComponents['discover']) {
  const mesh = createMesh(
    { listen: ['/ip4/127.0.0.1/tcp/0'], ...init },
    { holdings, ...(discover ? { discover } : {}) },
  )
  await mesh.start()
  cleanups.push(() => mesh.stop())
  return mesh
}
const meshInfo = (m: Mesh): MeshPeerInfo => ({ peerId: m.peerId, multiaddrs: m.multiaddrs() })
const noHoldings: MeshHoldings = {
  has: () => false,
  leaves: async () => undefined,
  read: async () => undefined,
}
/** Holdings of one object of `size` pattern bytes. */
async function holdingOne(size: number, seed: number) {
  const bytes = pattern(size, seed)
  const { cid, leaves } = await computeCid(bytes)
  const holdings: MeshHoldings = {
    has: (c) => c.text === cid.text,
    leaves: async () => leaves,
    read: async (_c, start, end) => bytes.subarray(start, end),
  }
  return { cid, holdings }
}

async function publish(nodes: EdgeNode[], origin: Origin, bytes: Buffer) {
  const { cid, leaves } = await computeCid(bytes)
  origin.files.set('/app.bin', bytes)
  const signed = await signSiteManifest(publisher, {
    publisher: publisher.address,
    site: 'demo',
    sequence: 1,
    origin: `${origin.url}/`,
    timestamp: Math.floor(Date.now() / 1000),
    entries: [
      {
        path: '/app.bin',
        cid: cid.text,
        size: bytes.length,
        contentType: 'application/octet-stream',
        cacheControl: 'public, max-age=300',
      },
    ],
  })
  for (const node of nodes) {
    const res = await request(`${node.url}/manifests/demo`, {
      method: 'PUT',
      body: encodeSiteManifest(signed),
    })
    expect(res.statusCode).toBe(200)
    await res.body.dump()
  }
  return { cid, leaves }
}

async function get(node: EdgeNode, path: string): Promise<{ status: number; body: Buffer }> {
  const res = await request(`${node.url}${path}`)
  return { status: res.statusCode, body: Buffer.from(await res.body.arrayBuffer()) }
}

/** A libp2p peer that speaks the chunk protocol with its own (possibly lying) handler. */
async function startRogue(onChunk: (stream: Stream) => Promise<void>): Promise<Libp2p> {
  const rogue = await createMeshTransport({ listen: ['/ip4/127.0.0.1/tcp/0'] })
  await rogue.handle(HAVE_PROTOCOL, async (stream) => {
    const reader = frameReader(stream)
    await reader.next(MESH_LIMITS.maxRequestBytes)
    await writeJson(stream, { have: [true] })
    await stream.close()
  })
  await rogue.handle(CHUNK_PROTOCOL, (stream) => onChunk(stream))
  cleanups.push(async () => rogue.stop())
  return rogue
}

describe('mesh: nodes fill their caches from each other', () => {
  it('B and C get a CID from A over the mesh; the origin counts exactly one request', async () => {
    const origin = await startOrigin()
    cleanups.push(() => origin.close())
    const a = await startNode()
    const b = await startNode({ bootstrap: [peerOf(a)] })
    const c = await startNode({ bootstrap: [peerOf(a)] })
    expect(b.mesh!.neighbours()).toContain(a.mesh!.peerId)
    expect(c.mesh!.neighbours()).toContain(a.mesh!.peerId)
    const bytes = pattern(1_000_000 + 123)
    await publish([a, b, c], origin, bytes)

    const fromA = await get(a, '/s/demo/app.bin')
    expect(fromA.status).toBe(200)
    expect(fromA.body.equals(bytes)).toBe(true)
    expect(origin.hits()).toBe(1)

    const [fromB, fromC] = await Promise.all([get(b, '/s/demo/app.bin'), get(c, '/s/demo/app.bin')])
    expect(fromB.status).toBe(200)
    expect(fromB.body.equals(bytes)).toBe(true)
    expect(fromC.status).toBe(200)
    expect(fromC.body.equals(bytes)).toBe(true)
    expect(origin.hits()).toBe(1)
    const metrics = await (await request(`${b.url}/metrics`)).body.text()
    expect(metrics).toContain(`shoal_edge_mesh_chunk_bytes_total{direction="in"} ${bytes.length}`)
    expect(metrics).toContain('shoal_edge_mesh_peers{state="connected"} 1')
    const served = await (await request(`${a.url}/metrics`)).body.text()
    expect(served).toContain(`shoal_edge_mesh_chunk_bytes_total{direction="out"} ${2 * bytes.length}`)
    // B holds it now, verified: a second read is a cache hit
    expect((await get(b, '/s/demo/app.bin')).body.equals(bytes)).toBe(true)
    expect(origin.hits()).toBe(1)
  })

  it('keeps its libp2p identity in <dataDir>/peer-key.json (0600) across restarts', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'shoal-mesh-key-'))
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }))
    const first = createEdgeNode({ dataDir, host: '127.0.0.1', port: 0, shutdownGraceMs: 100 })
    await first.start()
    const id = first.mesh!.peerId
    await first.stop()
    expect((await stat(join(dataDir, 'peer-key.json'))).mode & 0o777).toBe(0o600)
    const file = JSON.parse(await readFile(join(dataDir, 'peer-key.json'), 'utf8'))
    expect(file).toMatchObject({ type: 'Ed25519', seed: expect.stringMatching(/^[0-9a-f]{64}$/), peerId: id })
    const second = createEdgeNode({ dataDir, host: '127.0.0.1', port: 0, shutdownGraceMs: 100 })
    await second.start()
    expect(second.mesh!.peerId).toBe(id)
    expect(second.mesh!.multiaddrs()[0]).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\//)
    await second.stop()
  })

  it('a peer sending bad bytes is disconnected, banned and reported; the node falls back to the origin', async () => {
    const origin = await startOrigin()
    cleanups.push(() => origin.close())
    const bytes = pattern(600_000, 3)
    const { cid, leaves } = await computeCid(bytes)
    const flipped = Buffer.from(bytes)
    const badChunk = 1
    flipped[chunkSpan(cid, badChunk).start + 5]! ^= 1
    const rogue = await startRogue(async (stream) => {
      const reader = frameReader(stream)
      const req = decodeChunkRequest((await reader.next(MESH_LIMITS.maxRequestBytes))!)
      await writeJson(stream, { status: 'ok' })
      if (req.leaves) await writeFrame(stream, leaves)
      for (let i = req.from; i < req.to; i++) {
        const span = chunkSpan(cid, i)
        await writeFrame(stream, flipped.subarray(span.start, span.end))
      }
      await stream.close()
    })
    const reports: { peer: MeshPeerInfo; evidence: MeshIntegrityEvidence }[] = []
    const rogueNode = privateKeyToAccount(`0x${'44'.repeat(32)}`).address
    const b = await startNode(
      {
        bootstrap: [
          { peerId: rogue.peerId.toString(), multiaddrs: rogue.getMultiaddrs().map(String), node: rogueNode },
        ],
      },
      {
        meshReport: async (peer, evidence) => {
          reports.push({ peer, evidence })
        },
      },
    )
    expect(b.mesh!.neighbours()).toContain(rogue.peerId.toString())
    await publish([b], origin, bytes)

    const res = await get(b, '/s/demo/app.bin')
    expect(res.status).toBe(200)
    expect(res.body.equals(bytes)).toBe(true)
    expect(origin.hits()).toBe(1)
    expect(b.mesh!.banned()).toEqual([rogue.peerId.toString()])
    expect(b.mesh!.neighbours()).not.toContain(rogue.peerId.toString())
    expect(reports).toHaveLength(1)
    expect(reports[0]!.peer.node).toBe(rogueNode)
    const span = chunkSpan(cid, badChunk)
    const badHash = createHash('sha256')
      .update(new Uint8Array([0]))
      .update(flipped.subarray(span.start, span.end))
      .digest('hex')
    expect(reports[0]!.evidence).toEqual({ cid: cid.text, chunk: badChunk, badHash: `0x${badHash}` })
    // the banned peer cannot come back
    await rogue.dial(multiaddr(b.mesh!.multiaddrs()[0]!)).catch(() => {})
    for (let i = 0; i < 50 && rogue.getConnections().length > 0; i++)
      await new Promise((r) => setTimeout(r, 20))
    expect(rogue.getConnections()).toHaveLength(0)
    expect(b.mesh!.neighbours()).not.toContain(rogue.peerId.toString())
  })

  it('a peer that answers with an error is not punished: the node goes on to the origin', async () => {
    const origin = await startOrigin()
    cleanups.push(() => origin.close())
    const refusing = await startRogue(async (stream) => {
      const reader = frameReader(stream)
      await reader.next(MESH_LIMITS.maxRequestBytes)
      await writeJson(stream, { status: 'error', code: 'SHOAL_ERR_TOO_LARGE', message: 'not today' })
      await stream.close()
    })
    const reports: unknown[] = []
    const b = await startNode(
      {
        bootstrap: [{ peerId: refusing.peerId.toString(), multiaddrs: refusing.getMultiaddrs().map(String) }],
      },
      { meshReport: async (...args) => void reports.push(args) },
    )
    const bytes = pattern(300_000, 12)
    await publish([b], origin, bytes)
    const res = await get(b, '/s/demo/app.bin')
    expect(res.status).toBe(200)
    expect(res.body.equals(bytes)).toBe(true)
    expect(origin.hits()).toBe(1)
    expect(b.mesh!.banned()).toEqual([])
    expect(b.mesh!.neighbours()).toContain(refusing.peerId.toString())
    expect(reports).toEqual([])
  })

  it('chunks served to peers take tokens from the egress cap (a mesh over a stub holdings bag)', async () => {
    const bytes = pattern(3_000_000, 4)
    const { cid, leaves } = await computeCid(bytes)
    const taken: number[] = []
    const holdings: MeshHoldings = {
      has: (c) => c.text === cid.text,
      leaves: async () => leaves,
      read: async (_c, start, end) => bytes.subarray(start, end),
    }
    const mesh = createMesh(
      { listen: ['/ip4/127.0.0.1/tcp/0'] },
      { holdings, egress: { take: async (n) => void taken.push(n) } },
    )
    await mesh.start()
    cleanups.push(() => mesh.stop())
    const sdk = createMeshClient()
    await sdk.start()
    cleanups.push(() => sdk.stop())
    const node = { peerId: mesh.peerId, multiaddrs: mesh.multiaddrs() }
    expect(Buffer.from(await sdk.fetch(node, cid)).equals(bytes)).toBe(true)
    expect(taken.reduce((a, b) => a + b, 0)).toBe(bytes.length)
    // sends grow from one chunk to 1 MiB (the peer sees nothing of a send until it is whole)
    expect(taken[0]).toBe(cid.chunkSize)
    expect(Math.max(...taken)).toBe(2 ** 20)
  })

  it("a node whose neighbours are full still dials the tracker's holders of a CID it misses", async () => {
    const { cid, holdings } = await holdingOne(300_000, 5)
    const holder = await startMesh(holdings)
    const other = await startMesh(noHoldings)
    let discovered = 0
    // the tracker names the holder for this CID (and nobody for the random CID a node
    // bootstraps its neighbours from)
    const node = await startMesh(noHoldings, { maxNeighbours: 1 }, async (c) => {
      if (c.text !== cid.text) return []
      discovered++
      return [meshInfo(holder)]
    })
    // its one neighbour slot is taken by a node that does not hold the CID
    await node.addPeers([meshInfo(other)])
    expect(node.neighbours().map(String)).toEqual([other.peerId])
    const found = await node.findHolder(cid)
    expect(discovered).toBe(1)
    expect(found?.toString()).toBe(holder.peerId)
  })

  it("at its limit a node closes its least useful idle neighbour for the tracker's holder of a CID, and keeps the one that held what it asked for", async () => {
    const wanted = await holdingOne(300_000, 6)
    const earlier = await holdingOne(300_000, 7)
    const holder = await startMesh(wanted.holdings)
    const useful = await startMesh(earlier.holdings)
    const idle = await startMesh(noHoldings)
    // one neighbour, and the fan-out may add one more (never past twice the limit): two
    // connections at most; the tracker names the holder for the wanted CID only
    const node = await startMesh(noHoldings, { maxNeighbours: 1 }, async (c) =>
      c.text === wanted.cid.text ? [meshInfo(holder)] : [],
    )
    await node.addPeers([meshInfo(idle)])
    await node.addPeers([meshInfo(useful)], { extra: 1 })
    expect(new Set(node.neighbours())).toEqual(new Set([idle.peerId, useful.peerId]))
    // `useful` holds what the node asks for first; `idle` never held anything it asked for
    expect((await node.findHolder(earlier.cid))?.toString()).toBe(useful.peerId)
    const found = await node.findHolder(wanted.cid)
    expect(found?.toString()).toBe(holder.peerId)
    expect(new Set(node.neighbours())).toEqual(new Set([useful.peerId, holder.peerId]))
    expect(node.libp2p!.getConnections().length).toBeLessThanOrEqual(2)
    // and the holder serves the chunks
    const stream = await node.source.body(wanted.cid, {})
    let received = 0
    for await (const part of stream!) received += part.byteLength
    expect(received).toBe(300_000)
    // without room to make (every other neighbour named as a holder too), nobody is closed
    const plain = await startMesh(noHoldings, { maxNeighbours: 1 })
    await plain.addPeers([meshInfo(idle), meshInfo(useful)], { extra: 1 })
    await plain.addPeers([meshInfo(idle), meshInfo(useful), meshInfo(holder)], { extra: 1, makeRoom: true })
    expect(new Set(plain.neighbours())).toEqual(new Set([idle.peerId, useful.peerId]))
  })

  it('asks each holder the tracker names as soon as its connection is up, not after the slowest dial', async () => {
    const { cid, holdings } = await holdingOne(300_000, 9)
    // a peer that accepts TCP and never answers the handshake: its dial ends only at dialTimeoutMs
    const stalled = net.createServer()
    const sockets: net.Socket[] = []
    stalled.on('connection', (socket) => sockets.push(socket))
    stalled.listen(0, '127.0.0.1')
    await once(stalled, 'listening')
    cleanups.push(async () => {
      for (const socket of sockets) socket.destroy()
      stalled.close()
    })
    const stalledId = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    const stalledInfo = {
      peerId: stalledId,
      multiaddrs: [`/ip4/127.0.0.1/tcp/${(stalled.address() as AddressInfo).port}/p2p/${stalledId}`],
    }
    const holder = await startMesh(holdings)
    const node = await startMesh(noHoldings, { dialTimeoutMs: 60_000 }, async (c) =>
      c.text === cid.text ? [stalledInfo, meshInfo(holder)] : [],
    )
    const found = await node.findHolder(cid)
    expect(found?.toString()).toBe(holder.peerId)
    // the stalled dial is still under way: the node did not wait for it
    expect(sockets.length).toBe(1)
    expect(sockets[0]!.destroyed).toBe(false)
  })

  it('a node dialled past its high watermark trims its least useful idle neighbours, so it still accepts a new peer', async () => {
    const { cid, holdings } = await holdingOne(300_000, 8)
    // two neighbours: libp2p refuses inbound connections at four, the node trims past three
    const node = await startMesh(noHoldings, { maxNeighbours: 2, neighbourGraceMs: 300 })
    const useful = await startMesh(holdings)
    await node.addPeers([meshInfo(useful)])
    expect((await node.findHolder(cid))?.toString()).toBe(useful.peerId)
    // three peers dial it (libp2p also refuses more than five a second from one host)
    const others = await Promise.all(Array.from({ length: 3 }, () => startMesh(noHoldings)))
    for (const other of others) await other.addPeers([meshInfo(node)])
    expect(others.every((o) => o.neighbours().includes(node.peerId))).toBe(true)
    // once out of their grace period the idle ones go, the useful neighbour stays
    await waitFor(() => node.neighbours().length <= 2)
    expect(node.neighbours()).toContain(useful.peerId)
    // so a new peer is accepted (at four connections libp2p would refuse it)
    const late = await startMesh(noHoldings)
    await late.addPeers([meshInfo(node)])
    expect(late.neighbours()).toContain(node.peerId)
    await waitFor(() => node.neighbours().includes(late.peerId))
  })

  it('trackerReporter files the evidence as a NodeReport signed by the node key', async () => {
    const filed: unknown[] = []
    const report = trackerReporter(nodeKey, {
      report: async (signed) => {
        filed.push(signed)
        return { node: '', standing: 1, weight: 1, status: 'active', auditQueued: true }
      },
    })
    const { cid } = await computeCid(pattern(600_000))
    const bad = privateKeyToAccount(`0x${'45'.repeat(32)}`).address
    const evidence = { cid: cid.text, chunk: 2, badHash: `0x${'ab'.repeat(32)}` as const }
    await report({ peerId: 'x', multiaddrs: [], node: bad }, evidence)
    expect(filed).toHaveLength(1)
    const signed = filed[0] as {
      message: Parameters<typeof nodeReportTypedData>[0]
      signature: `0x${string}`
    }
    expect(signed.message).toMatchObject({
      client: nodeKey.address,
      node: bad,
      cid: cid.text,
      chunk: 2,
      badHash: evidence.badHash,
      failures: 1,
      bytes: 600_000 - 2 * 262_144,
    })
    expect(
      await verifyTypedData({
        address: nodeKey.address,
        ...nodeReportTypedData(signed.message),
        signature: signed.signature,
      }),
    ).toBe(true)
  })
})

describe('mesh: bad input closes the stream, never the node', () => {
  it('answers malformed, oversized and out-of-range requests with an error or a reset, then still serves', async () => {
    const origin = await startOrigin()
    cleanups.push(() => origin.close())
    const a = await startNode()
    const bytes = pattern(300_000, 9)
    const { cid } = await computeCid(bytes)
    await publish([a], origin, bytes)
    expect((await get(a, '/s/demo/app.bin')).status).toBe(200)
    const client = await createMeshTransport()
    cleanups.push(async () => client.stop())

    const cases: [string, string, Uint8Array, string | undefined][] = [
      ['not JSON', CHUNK_PROTOCOL, frame('{nope'), 'SHOAL_ERR_INVALID_FORMAT'],
      ['JSON array', CHUNK_PROTOCOL, frame('[1,2]'), 'SHOAL_ERR_INVALID_FORMAT'],
      [
        'extra field',
        CHUNK_PROTOCOL,
        frame(JSON.stringify({ cid: cid.text, from: 0, to: 1, leaves: true, x: 1 })),
        'SHOAL_ERR_INVALID_FORMAT',
      ],
      [
        'bad cid',
        CHUNK_PROTOCOL,
        frame(JSON.stringify({ cid: 'sNOPE', from: 0, to: 1, leaves: true })),
        'SHOAL_ERR_INVALID_FORMAT',
      ],
      [
        'range past the end',
        CHUNK_PROTOCOL,
        frame(JSON.stringify({ cid: cid.text, from: 0, to: 3, leaves: false })),
        'SHOAL_ERR_INVALID_FORMAT',
      ],
      [
        'negative index',
        CHUNK_PROTOCOL,
        frame(JSON.stringify({ cid: cid.text, from: -1, to: 1, leaves: false })),
        'SHOAL_ERR_INVALID_FORMAT',
      ],
      [
        'empty ask',
        CHUNK_PROTOCOL,
        frame(JSON.stringify({ cid: cid.text, from: 1, to: 1, leaves: false })),
        'SHOAL_ERR_INVALID_FORMAT',
      ],
      [
        'frame over the request limit',
        CHUNK_PROTOCOL,
        frame('x'.repeat(MESH_LIMITS.maxRequestBytes + 1)),
        'SHOAL_ERR_TOO_LARGE',
      ],
      ['2^27-byte length prefix', CHUNK_PROTOCOL, encodeVarint(2 ** 27), 'SHOAL_ERR_TOO_LARGE'],
      [
        '5-byte length prefix',
        CHUNK_PROTOCOL,
        new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x7f]),
        'SHOAL_ERR_INVALID_FORMAT',
      ],
      ['non-minimal prefix', CHUNK_PROTOCOL, new Uint8Array([0x81, 0x00, 0x41]), 'SHOAL_ERR_INVALID_FORMAT'],
      ['truncated frame', CHUNK_PROTOCOL, new Uint8Array([0x10, 0x41]), 'SHOAL_ERR_INVALID_FORMAT'],
      ['empty stream', CHUNK_PROTOCOL, new Uint8Array(0), undefined],
      [
        'have: 33 CIDs',
        HAVE_PROTOCOL,
        frame(JSON.stringify({ cids: Array(33).fill(cid.text) })),
        'SHOAL_ERR_INVALID_FORMAT',
      ],
      [
        'have: not a list',
        HAVE_PROTOCOL,
        frame(JSON.stringify({ cids: cid.text })),
        'SHOAL_ERR_INVALID_FORMAT',
      ],
    ]
    for (const [what, protocol, send, code] of cases) {
      const { frames } = await rawExchange(client, a, protocol, send)
      if (code === undefined) expect(frames, what).toEqual([])
      else {
        expect(frames, what).toHaveLength(1)
        expect(JSON.parse(frames[0]!), what).toMatchObject({ status: 'error', code })
      }
    }
    // unknown content is a typed not-found
    const other = await computeCid(pattern(5000, 1))
    const missing = await rawExchange(
      client,
      a,
      CHUNK_PROTOCOL,
      frame(JSON.stringify({ cid: other.cid.text, from: 0, to: 1, leaves: true })),
    )
    expect(JSON.parse(missing.frames[0]!)).toMatchObject({ status: 'error', code: 'SHOAL_ERR_NOT_FOUND' })
    // the node is fine: it still serves HTTP and the mesh
    expect((await get(a, '/health')).status).toBe(200)
    const sdk = createMeshClient()
    await sdk.start()
    cleanups.push(() => sdk.stop())
    expect(Buffer.from(await sdk.fetch(peerOf(a), cid)).equals(bytes)).toBe(true)
  })
})

describe('SDK mesh client (Node)', () => {
  it('fetches verified chunks from a node, answers has(), and refuses a node sending bad bytes', async () => {
    const origin = await startOrigin()
    cleanups.push(() => origin.close())
    const a = await startNode()
    const bytes = pattern(2 * 262_144 + 77, 5)
    const { cid, leaves } = await computeCid(bytes)
    await publish([a], origin, bytes)
    const sdk = createMeshClient({ timeoutMs: 5000 })
    await sdk.start()
    cleanups.push(() => sdk.stop())
    const other = await computeCid(pattern(4000, 2))
    expect(await sdk.has(peerOf(a), cid)).toBe(false)
    expect((await get(a, '/s/demo/app.bin')).status).toBe(200)
    expect(await sdk.has(peerOf(a), cid)).toBe(true)
    expect(await sdk.has(peerOf(a), other.cid)).toBe(false)
    expect(Buffer.from(await sdk.fetch(peerOf(a), cid.text)).equals(bytes)).toBe(true)
    expect(Buffer.from(await sdk.fetch(peerOf(a), cid, { leaves })).equals(bytes)).toBe(true)
    await expect(sdk.fetch(peerOf(a), other.cid)).rejects.toMatchObject({ code: 'SHOAL_ERR_NOT_FOUND' })
    await expect(sdk.fetch(peerOf(a), 'not-a-cid')).rejects.toMatchObject({ code: 'SHOAL_ERR_INVALID_CID' })

    const rogue = await startRogue(async (stream) => {
      const reader = frameReader(stream)
      await reader.next(MESH_LIMITS.maxRequestBytes)
      await writeJson(stream, { status: 'ok' })
      await writeFrame(stream, leaves)
      await writeFrame(stream, Buffer.alloc(262_144))
      await stream.close()
    })
    const rogueInfo = { peerId: rogue.peerId.toString(), multiaddrs: rogue.getMultiaddrs().map(String) }
    await expect(sdk.fetch(rogueInfo, cid)).rejects.toMatchObject({
      code: 'SHOAL_ERR_INTEGRITY',
      evidence: { cid: cid.text, chunk: 0 },
    })
  })
})

describe('SDK mesh client: a lying or slow node', () => {
  it('refuses oversized headers, wrong chunk lengths and bad leaves, and honours its signal', async () => {
    const bytes = pattern(300_000, 8)
    const { cid, leaves } = await computeCid(bytes)
    let mode: 'big-header' | 'short-chunk' | 'bad-leaves' | 'silent' | 'stall' = 'big-header'
    const rogue = await startRogue(async (stream) => {
      const reader = frameReader(stream)
      await reader.next(MESH_LIMITS.maxRequestBytes)
      if (mode === 'silent') return // never answers
      if (mode === 'stall') {
        await writeJson(stream, { status: 'ok' })
        await writeFrame(stream, leaves)
        return // the chunks never come
      }
      if (mode === 'big-header') {
        await writeFrame(stream, Buffer.alloc(MESH_LIMITS.maxHeaderBytes + 1, 0x20))
      } else {
        await writeJson(stream, { status: 'ok' })
        if (mode === 'bad-leaves') await writeFrame(stream, Buffer.alloc(leaves.length))
        else {
          await writeFrame(stream, leaves)
          await writeFrame(stream, bytes.subarray(0, 1000))
        }
      }
      await stream.close().catch(() => {})
    })
    const node = { peerId: rogue.peerId.toString(), multiaddrs: rogue.getMultiaddrs().map(String) }
    const sdk = createMeshClient({ timeoutMs: 5000 })
    await sdk.start()
    cleanups.push(() => sdk.stop())
    await expect(sdk.fetch(node, cid)).rejects.toMatchObject({ code: 'SHOAL_ERR_TOO_LARGE' })
    mode = 'short-chunk'
    await expect(sdk.fetch(node, cid)).rejects.toMatchObject({ code: 'SHOAL_ERR_INVALID_FORMAT' })
    mode = 'bad-leaves'
    await expect(sdk.fetch(node, cid)).rejects.toMatchObject({ code: 'SHOAL_ERR_INVALID_LEAVES' })
    mode = 'silent'
    await expect(sdk.fetch(node, cid, { signal: AbortSignal.timeout(50) })).rejects.toMatchObject({
      code: expect.stringMatching(/^SHOAL_ERR_(TIMEOUT|ABORTED)$/),
    })
    mode = 'stall'
    const impatient = createMeshClient({ timeoutMs: 300 })
    await impatient.start()
    cleanups.push(() => impatient.stop())
    await expect(impatient.fetch(node, cid)).rejects.toMatchObject({ code: 'SHOAL_ERR_TIMEOUT' })
  })
})
