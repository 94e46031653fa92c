import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createTrackerClient } from '@shoal/client-sdk'
import {
  computeCid,
  encodeNodeRecord,
  encodeSiteManifest,
  signNodeRecord,
  signSiteManifest,
} from '@shoal/protocol'
import type { Tracker } from '@shoal/tracker'
import { request } from 'undici'
import { generatePrivateKey, type PrivateKeyAccount, privateKeyToAccount } from 'viem/accounts'
import { afterEach, describe, expect, it } from 'vitest'
import { type MeshOptions, trackerDiscovery } from '../src/mesh/index.ts'
import { createEdgeNode, type EdgeNode } from '../src/node.ts'
import { startTestTracker } from './helpers/tracker.ts'
import { waitFor } from './helpers/wait.ts'

const cleanups: (() => Promise<unknown>)[] = []
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn().catch(() => {})
})

/** Registers a node's real peer id and multiaddrs, as its record carries them, and waits until it is active. */
async function register(tracker: Tracker, node: EdgeNode, account: PrivateKeyAccount, region: string) {
  const record = await signNodeRecord(account, {
    node: account.address,
    peerId: node.mesh!.peerId,
    multiaddrs: node.mesh!.recordMultiaddrs(),
    httpUrl: `${node.url}/`,
    region,
    capacity: 12_500_000,
    payout: account.address,
    timestamp: Math.floor(Date.now() / 1000),
  })
  const registered = await request(`${tracker.url}/v1/nodes`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: encodeNodeRecord(record),
  })
  expect(registered.statusCode).toBeLessThan(300)
  await registered.body.dump()
  await waitFor(() => tracker.index.get(account.address)?.status === 'active')
}

async function startNode(dir: string, name: string, tracker: Tracker, mesh: MeshOptions = {}) {
  const account = privateKeyToAccount(generatePrivateKey())
  const node = createEdgeNode(
    {
      dataDir: join(dir, name),
      host: '127.0.0.1',
      port: 0,
      shutdownGraceMs: 100,
      trackerUrl: tracker.url,
      mesh,
    },
    { account },
  )
  await node.start()
  cleanups.push(() => node.stop())
  return { node, account }
}

describe('mesh discovery through the tracker', () => {
  it('a node with no neighbours finds the holder of a CID in the tracker selection and fetches from it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shoal-mesh-tracker-'))
    cleanups.push(() => rm(dir, { recursive: true, force: true }))
    const tracker = await startTestTracker(dir)
    cleanups.push(() => tracker.stop())

    let hits = 0
    const bytes = Buffer.alloc(700_000, 7)
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31 + (i >> 9)) & 0xff
    const origin = http.createServer((_req, res) => {
      hits++
      res.writeHead(200, { 'content-length': bytes.length }).end(bytes)
    })
    origin.listen(0, '127.0.0.1')
    await once(origin, 'listening')
    cleanups.push(() => new Promise((r) => origin.close(r)))
    const originUrl = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`

    const start = (name: string) => startNode(dir, name, tracker)
    const a = await start('a')
    const b = await start('b')
    // A registers its real peer id and multiaddrs, as a node's record carries them
    await register(tracker, a.node, a.account, 'eu-west')

    const publisher = privateKeyToAccount(generatePrivateKey())
    const { cid } = await computeCid(bytes)
    const manifest = await signSiteManifest(publisher, {
      publisher: publisher.address,
      site: 'demo',
      sequence: 1,
      origin: `${originUrl}/`,
      timestamp: Math.floor(Date.now() / 1000),
      entries: [
        {
          path: '/f.bin',
          cid: cid.text,
          size: bytes.length,
          contentType: 'application/octet-stream',
          cacheControl: '',
        },
      ],
    })
    for (const { node } of [a, b]) {
      const res = await request(`${node.url}/manifests/demo`, {
        method: 'PUT',
        body: encodeSiteManifest(manifest),
      })
      expect(res.statusCode).toBe(200)
      await res.body.dump()
    }
    const get = async (node: EdgeNode) => {
      const res = await request(`${node.url}/s/demo/f.bin`)
      return { status: res.statusCode, body: Buffer.from(await res.body.arrayBuffer()) }
    }
    expect((await get(a.node)).body.equals(bytes)).toBe(true)
    expect(hits).toBe(1)
    expect(b.node.mesh!.neighbours()).toEqual([])

    // a node started once A is registered has it as a neighbour before any miss
    const c = await start('c')
    await waitFor(() => c.node.mesh!.neighbours().includes(a.node.mesh!.peerId))

    const fromB = await get(b.node)
    expect(fromB.status).toBe(200)
    expect(fromB.body.equals(bytes)).toBe(true)
    expect(hits).toBe(1)
    expect(b.node.mesh!.neighbours()).toContain(a.node.mesh!.peerId)
  })

  it("with the node's region, discovery asks the tracker for half its peers in that region", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shoal-mesh-region-'))
    cleanups.push(() => rm(dir, { recursive: true, force: true }))
    const tracker = await startTestTracker(dir)
    cleanups.push(() => tracker.stop())
    const eu = await startNode(dir, 'eu', tracker)
    const us = await startNode(dir, 'us', tracker)
    await register(tracker, eu.node, eu.account, 'eu-west')
    await register(tracker, us.node, us.account, 'us-east')
    const client = createTrackerClient({ url: tracker.url })
    const { cid } = await computeCid(Buffer.from('regional'))
    const one = (region: string) => trackerDiscovery(client, { count: 1, region })(cid)
    expect((await one('eu-west')).map((p) => p.peerId)).toEqual([eu.node.mesh!.peerId])
    expect((await one('us-east')).map((p) => p.peerId)).toEqual([us.node.mesh!.peerId])
    // half near, the rest from the selection for anyone (here: both nodes), each once
    const both = await trackerDiscovery(client, { count: 2, region: 'us-east' })(cid)
    expect(both.map((p) => p.peerId)).toEqual([us.node.mesh!.peerId, eu.node.mesh!.peerId])
    expect(both[0]).toMatchObject({ node: us.account.address, multiaddrs: us.node.mesh!.recordMultiaddrs() })
    const anywhere = await trackerDiscovery(client)(cid)
    expect(new Set(anywhere.map((p) => p.peerId))).toEqual(
      new Set([us.node.mesh!.peerId, eu.node.mesh!.peerId]),
    )
  })
})
