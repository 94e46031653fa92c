import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import http from 'node:http'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createEdgeNode, type EdgeNode } from '@shoal/edge-node'
import { encodeNodeRecord, signNodeRecord } from '@shoal/protocol'
import { fetch } from 'undici'
import { generatePrivateKey, type PrivateKeyAccount, privateKeyToAccount } from 'viem/accounts'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { selfSignedCertificate } from '../../test-support/tls.ts'
import { createClient, requestRelayTicket, selectRelays } from '../src/index.ts'
import { createRelayDispatcher, relayDispatcher } from '../src/node/index.ts'
import { waitFor } from './helpers/nodes.ts'
import { startTracker, type TrackerFixture } from './helpers/tracker.ts'

const BASE58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'
const peerId = () =>
  `12D3KooW${[...crypto.getRandomValues(new Uint8Array(44))].map((b) => BASE58[b % 58]).join('')}`

let dir: string
let t: TrackerFixture
let httpOrigin: http.Server
let httpsOrigin: https.Server
let httpUrl: string
let httpsUrl: string
let cert: Buffer
const hits: string[] = []
const nodes: { node: EdgeNode; account: PrivateKeyAccount; region: string }[] = []
const me = privateKeyToAccount(generatePrivateKey())
/** The app whose escrow pays for the relayed bytes. */
const app = privateKeyToAccount(generatePrivateKey())

async function startRelayNode(region: string, issuers: string[]): Promise<(typeof nodes)[number]> {
  const account = privateKeyToAccount(generatePrivateKey())
  const node = createEdgeNode(
    {
      dataDir: join(dir, account.address),
      port: 0,
      relay: { port: 0, issuers, egress: { allowCidrs: ['127.0.0.1/32'] } },
    },
    { account },
  )
  await node.start()
  const entry = { node, account, region }
  nodes.push(entry)
  return entry
}

async function register(entry: (typeof nodes)[number], withRelay = true): Promise<void> {
  const signed = await signNodeRecord(entry.account, {
    node: entry.account.address,
    peerId: peerId(),
    multiaddrs: ['/ip4/127.0.0.1/tcp/4001', ...(withRelay ? [entry.node.relay!.multiaddr] : [])],
    httpUrl: `${entry.node.url}/`,
    region: entry.region,
    capacity: 12_500_000,
    payout: entry.account.address,
    timestamp: Math.floor(Date.now() / 1000),
  })
  const res = await fetch(`${t.url}/v1/nodes`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: encodeNodeRecord(signed),
  })
  expect(res.status).toBeLessThan(300)
  await res.text()
  await waitFor(() => t.tracker.index.get(entry.account.address)?.status === 'active', 10_000)
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'shoal-sdk-relay-'))
  t = await startTracker()
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    hits.push(`${req.headers.host}${req.url}`)
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.end(`hello from ${req.url}`)
  }
  httpOrigin = http.createServer(handler)
  httpOrigin.listen(0, '127.0.0.1')
  await once(httpOrigin, 'listening')
  httpUrl = `http://127.0.0.1:${(httpOrigin.address() as AddressInfo).port}`
  const tls = selfSignedCertificate(dir)
  cert = tls.cert
  httpsOrigin = https.createServer({ cert, key: tls.key }, handler)
  httpsOrigin.listen(0, '127.0.0.1')
  await once(httpsOrigin, 'listening')
  httpsUrl = `https://127.0.0.1:${(httpsOrigin.address() as AddressInfo).port}`
})

afterAll(async () => {
  for (const { node } of nodes) await node.stop()
  await t?.close()
  httpOrigin?.closeAllConnections()
  httpOrigin?.close()
  httpsOrigin?.closeAllConnections()
  httpsOrigin?.close()
  await rm(dir, { recursive: true, force: true })
})

describe('relays through the tracker', () => {
  it('lists only nodes that announce a relay, the client region first', async () => {
    const issuer = t.tracker.tickets.issuer
    const eu = await startRelayNode('eu-west', [issuer])
    const us = await startRelayNode('us-east', [issuer])
    const plain = await startRelayNode('eu-west', [issuer])
    await register(eu)
    await register(us)
    await register(plain, false)
    const forEu = await selectRelays(t.url, { region: 'eu-west', count: 5 })
    expect(forEu.map((r) => r.relayUrl)).toEqual([eu.node.relay!.url, us.node.relay!.url])
    expect(forEu[0]!.node).toBe(eu.account.address)
    const forUs = await selectRelays(t.url, { region: 'us-east', count: 1 })
    expect(forUs.map((r) => r.relayUrl)).toEqual([us.node.relay!.url])
    const excluded = await selectRelays(t.url, { region: 'eu-west', exclude: [eu.account.address] })
    expect(excluded.map((r) => r.relayUrl)).toEqual([us.node.relay!.url])
  })

  it('client.relayDispatcher-style: fetch over http and https (CONNECT) through a selected relay', async () => {
    const client = createClient({ tracker: t.url, region: 'eu-west' })
    const dispatcher = relayDispatcher(client, { account: me, payer: app.address, requestTls: { ca: cert } })
    try {
      const a = await fetch(`${httpUrl}/plain`, { dispatcher })
      expect(a.status).toBe(200)
      expect(await a.text()).toBe('hello from /plain')
      const b = await fetch(`${httpsUrl}/secure`, { dispatcher })
      expect(b.status).toBe(200)
      expect(await b.text()).toBe('hello from /secure')
      // it went through the eu-west relay, whose meter counted the client's bytes
      const eu = nodes.find((n) => n.region === 'eu-west')!
      const usage = [...eu.node.relay!.meter.entries()]
      expect(usage.map((u) => u.client)).toContain(me.address)
      expect(usage.reduce((n, u) => n + u.down, 0)).toBeGreaterThan(0)
    } finally {
      await dispatcher.close()
    }
  })

  it('answers a forbidden destination with the relay 403, without failing over', async () => {
    const dispatcher = createRelayDispatcher(
      { account: me, payer: app.address, region: 'eu-west' },
      { tracker: { url: t.url } },
    )
    try {
      const res = await fetch('http://10.0.0.1/', { dispatcher })
      expect(res.status).toBe(403)
      expect(res.headers.get('shoal-relay-error')).toBe('SHOAL_ERR_FORBIDDEN')
      expect((await res.json()) as unknown).toMatchObject({ error: { code: 'SHOAL_ERR_FORBIDDEN' } })
    } finally {
      await dispatcher.close()
    }
  })
})

describe('relay failover', () => {
  it('skips a dead relay and one that refuses the ticket, over http and https', async () => {
    const issuer = t.tracker.tickets.issuer
    const dead = await startRelayNode('eu-west', [issuer])
    const deadUrl = dead.node.relay!.url
    await dead.node.stop()
    const stranger = privateKeyToAccount(generatePrivateKey()).address
    const refusing = await startRelayNode('eu-west', [stranger])
    const good = await startRelayNode('eu-west', [issuer])
    const ticket = await requestRelayTicket(t.url, me, { body: { publisher: app.address } })
    for (const target of [`${httpUrl}/failover`, `${httpsUrl}/failover-tls`]) {
      const dispatcher = createRelayDispatcher(
        {
          relays: [deadUrl, refusing.node.relay!.url, good.node.relay!.url],
          ticket,
          requestTls: { ca: cert },
        },
        {},
      )
      try {
        const res = await fetch(target, { dispatcher })
        expect(res.status).toBe(200)
        expect(await res.text()).toBe(`hello from ${new URL(target).pathname}`)
      } finally {
        await dispatcher.close()
      }
    }
    expect([...good.node.relay!.meter.entries()].length).toBe(1)
    expect([...refusing.node.relay!.meter.entries()].length).toBe(0)
  })

  it('fails with a typed error listing each relay when none will carry the request', async () => {
    const stranger = privateKeyToAccount(generatePrivateKey()).address
    const refusing = await startRelayNode('eu-west', [stranger])
    const ticket = await requestRelayTicket(t.url, me, { body: { publisher: app.address } })
    const dispatcher = createRelayDispatcher({ relays: [refusing.node.relay!.url], ticket }, {})
    try {
      const err = await fetch(`${httpUrl}/nowhere`, { dispatcher }).catch((e: unknown) => e)
      const cause = (err as { cause?: { code?: string; failures?: unknown[] } }).cause
      expect(cause?.code).toBe('SHOAL_ERR_UNAVAILABLE')
      expect(cause?.failures).toHaveLength(1)
      expect(hits).not.toContain(expect.stringContaining('/nowhere'))
    } finally {
      await dispatcher.close()
    }
  })

  it('refuses to build without relays or a way to get a ticket', () => {
    expect(() => createRelayDispatcher({}, {})).toThrow(
      expect.objectContaining({ code: 'SHOAL_ERR_INVALID_ARGUMENT' }),
    )
    expect(() => createRelayDispatcher({ relays: ['http://127.0.0.1:1'] }, {})).toThrow(
      expect.objectContaining({ code: 'SHOAL_ERR_INVALID_ARGUMENT' }),
    )
  })
})

describe('relay receipts', () => {
  it('receipts for relayed bytes are stored, and survive a restart of the relay node', async () => {
    const issuer = t.tracker.tickets.issuer as `0x${string}`
    const account = privateKeyToAccount(generatePrivateKey())
    const init = {
      dataDir: join(dir, `paid-${account.address}`),
      port: 0,
      trackerAddress: issuer,
      relay: { port: 0, issuers: [issuer], egress: { allowCidrs: ['127.0.0.1/32'] } },
    }
    const node = createEdgeNode(init, { account })
    await node.start()
    const entry = { node, account, region: 'ap-south' }
    nodes.push(entry)
    await register(entry)
    const events: { type: string; outcome: string }[] = []
    const dispatcher = createRelayDispatcher(
      { region: 'ap-south', count: 1, account: me, signer: me, payer: app.address, requestTls: { ca: cert } },
      { tracker: { url: t.url }, emit: (e) => events.push(e as { type: string; outcome: string }) },
    )
    const texts: string[] = []
    try {
      for (const target of [`${httpUrl}/paid`, `${httpsUrl}/paid-tls`, `${httpUrl}/paid-again`]) {
        const res = await fetch(target, { dispatcher })
        texts.push(await res.text())
      }
      // the client's request body is counted too
      const posted = await fetch(`${httpUrl}/paid-post`, {
        dispatcher,
        method: 'POST',
        body: 'x'.repeat(5000),
      })
      texts.push(await posted.text())
    } finally {
      await dispatcher.close()
    }
    expect(texts).toEqual([
      'hello from /paid',
      'hello from /paid-tls',
      'hello from /paid-again',
      'hello from /paid-post',
    ])
    expect(events.filter((e) => e.type === 'receipt' && e.outcome !== 'accepted')).toEqual([])
    const epoch = Math.floor(Date.now() / 1000 / 3600)
    const stored = node.receipts.epoch(epoch)
    expect(stored.receipts).toHaveLength(1)
    const r = stored.receipts[0]!.message
    expect(r).toMatchObject({ node: account.address, client: me.address, kind: 1, epoch })
    // what the client saw of four exchanges (bodies both ways), never more than the relay metered
    const usage = node.relay!.meter.entries().next().value!
    expect(r.bytes).toBeGreaterThanOrEqual(5000 + texts.join('').length)
    expect(r.bytes).toBeLessThanOrEqual(usage.up + usage.down)
    expect(stored.tickets.map((s) => s.message.client)).toEqual([me.address])
    expect(node.receipts.pendingEpochs()).toContain(epoch)

    // the tracker noted it handed this relay to this ticket: settlement pays only such pairs
    await t.tracker.flush()
    const selected = await t.tracker.store.listSelectionsOf([r.ticket])
    expect(selected.map((s) => s.node.toLowerCase())).toEqual([account.address.toLowerCase()])
    // a restart keeps the acknowledged receipt and its session
    await node.stop()
    const again = createEdgeNode(init, { account })
    await again.start()
    entry.node = again
    expect(again.receipts.epoch(epoch).receipts.map((s) => s.message)).toEqual([r])
    expect(again.sessions.size).toBe(1)
  })
})
