/**
 * Bandwidth receipts end to end (docs/receipts.md), on real sockets: a real tracker issues
 * tickets, real edge nodes open sessions, meter and keep a durable receipt book, and the
 * client signs cumulative receipts for what it verified.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import net, { type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createReceiptBook, type EdgeNode } from '@shoal/edge-node'
import {
  type BandwidthReceipt,
  encodeBandwidthReceipt,
  type ManifestEntry,
  RECEIPT_KIND,
  type Signed,
  signBandwidthReceipt,
  signTicket,
  type Ticket,
  ticketId,
} from '@shoal/protocol'
import { Agent, request } from 'undici'
import type { Hex } from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ClientEvent, createClient, randomNonce } from '../src/index.ts'
import { createMeshClient } from '../src/node/index.ts'
import { type Content, makeContent, type Nodes, startEdgeNodes, waitFor } from './helpers/nodes.ts'
import { publish, registerNode, signManifest, startTracker, type TrackerFixture } from './helpers/tracker.ts'

const EPOCH_SECONDS = 3600
const epochNow = () => Math.floor(Date.now() / 1000 / EPOCH_SECONDS)
const KiB = 1024
const NODE_BIN = fileURLToPath(new URL('../../edge-node/bin/shoal-node.ts', import.meta.url))

const entryOf = (path: string, c: Content): ManifestEntry => ({
  path,
  cid: c.cid.text,
  size: c.bytes.length,
  contentType: 'application/octet-stream',
  cacheControl: '',
})

/** A node's or tracker's JSON answer: success fields, or the shared error body. */
interface Answer {
  status: number
  body: { error?: { code: string; message: string }; [field: string]: unknown }
}

async function post(url: string, body: string): Promise<Answer> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
  return { status: res.status, body: (await res.json()) as Answer['body'] }
}

interface Grant {
  id: Hex
  ticket: Signed<Ticket>
  epoch: number
}

async function ticketFrom(t: TrackerFixture, request: Record<string, unknown>): Promise<Grant> {
  const res = await post(`${t.url}/v1/tickets`, JSON.stringify(request))
  expect(res.status).toBe(201)
  return res.body as unknown as Grant
}

async function openSession(nodeUrl: string, ticket: Signed<Ticket>, epoch = epochNow()) {
  const session = randomNonce()
  const res = await post(
    `${nodeUrl}/v1/sessions`,
    JSON.stringify({ session, ticket, epoch, kind: RECEIPT_KIND.content }),
  )
  return { session, ...res }
}

/**
 * Reads `[start, end)` of a CID from a node for a session, on a connection of its own (a
 * connection handed to node:http stays there: a fresh one lets the fast path answer hits).
 */
async function read(nodeUrl: string, c: Content, session: Hex, range?: [number, number]): Promise<number> {
  const agent = new Agent()
  try {
    const res = await request(`${nodeUrl}/c/${c.cid.text}`, {
      dispatcher: agent,
      headers: {
        'shoal-session': session,
        ...(range === undefined ? {} : { range: `bytes=${range[0]}-${range[1] - 1}` }),
      },
    })
    return (await res.body.arrayBuffer()).byteLength
  } finally {
    await agent.close()
  }
}

/** A TCP port on 127.0.0.1 free a moment ago (for a child's mesh port, which it must be told). */
async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  await new Promise((r) => server.close(r))
  return port
}

async function sessionBytes(node: EdgeNode): Promise<number> {
  return (await node.metrics.sessionBytes.get()).values[0]?.value ?? 0
}

describe('bandwidth receipts with a real tracker and real nodes', () => {
  let t: TrackerFixture
  let nodes: Nodes
  const keys = [0, 1].map(() => privateKeyToAccount(generatePrivateKey()))
  const publisher = privateKeyToAccount(generatePrivateKey())
  let big: Content
  let small: Content

  beforeAll(async () => {
    t = await startTracker()
    nodes = await startEdgeNodes(2, keys, {
      trackerAddress: t.account.address,
      memoryCacheBytes: 16 * 2 ** 20,
    })
    for (let i = 0; i < 2; i++) await registerNode(t, keys[i]!, nodes.urls[i]!)
    big = await makeContent(3 * 2 ** 20 + 12_345, 64 * KiB, 11)
    small = await makeContent(200 * KiB, 16 * KiB, 12)
    await nodes.push(big)
    await nodes.push(small)
    await publish(
      t,
      await signManifest(publisher, 'paid', 1, [entryOf('/big.bin', big), entryOf('/small.bin', small)]),
    )
  })
  afterAll(async () => {
    await nodes.close()
    await t.close()
  })

  it('accumulates receipts over a fetch, never above what each node sent', async () => {
    const account = privateKeyToAccount(generatePrivateKey())
    const events: ClientEvent[] = []
    const before = await Promise.all(nodes.nodes.map(sessionBytes))
    const client = createClient({
      tracker: t.url,
      account,
      receiptEveryBytes: 256 * KiB,
      hedge: { enabled: false },
      onEvent: (e) => events.push(e),
    })
    const res = await client.fetch('shoal://paid/big.bin')
    expect(Buffer.from(await res.arrayBuffer()).equals(Buffer.from(big.bytes))).toBe(true)
    await client.stop()

    const accepted = events.filter((e) => e.type === 'receipt' && e.outcome === 'accepted') as {
      bytes: number
    }[]
    // cumulative: several receipts, each for more bytes than the one before
    expect(accepted.length).toBeGreaterThan(3)
    expect(events.filter((e) => e.type === 'receipt' && e.outcome !== 'accepted')).toEqual([])
    const mine = nodes.nodes.map((n) =>
      n.receipts.epoch(epochNow()).receipts.filter((r) => r.message.client === account.address),
    )
    // the node's book holds the latest receipt of the session: every verified byte, leaves included
    const leavesBytes = 32 * Math.ceil(big.bytes.length / (64 * KiB))
    const total = mine.flat().reduce((sum, r) => sum + r.message.bytes, 0)
    expect(total).toBe(big.bytes.length + leavesBytes)
    for (let i = 0; i < nodes.nodes.length; i++) {
      const node = nodes.nodes[i]!
      const metered = (await sessionBytes(node)) - before[i]!
      const receipted = mine[i]!.reduce((sum, r) => sum + r.message.bytes, 0)
      expect(receipted).toBeLessThanOrEqual(metered)
      for (const r of mine[i]!) {
        expect(r.message.node).toBe(keys[i]!.address)
        expect(r.message.epoch).toBe(epochNow())
      }
      // the tickets the receipts name are in the book, signed by the tracker
      const { tickets } = node.receipts.epoch(epochNow())
      for (const r of mine[i]!) {
        const ticket = tickets.find((tk) => ticketId(tk.message) === r.message.ticket)
        expect(ticket?.message.issuer).toBe(t.account.address)
        expect(ticket?.message.client).toBe(account.address)
      }
    }
  })

  it('fetches without an account: no ticket, no session, no receipt', async () => {
    const opened = await Promise.all(nodes.nodes.map((n) => n.metrics.sessionsOpened.get()))
    const client = createClient({ tracker: t.url })
    const res = await client.fetch('shoal://paid/small.bin')
    expect(Buffer.from(await res.arrayBuffer()).equals(Buffer.from(small.bytes))).toBe(true)
    await client.stop()
    const after = await Promise.all(nodes.nodes.map((n) => n.metrics.sessionsOpened.get()))
    expect(after.map((m) => m.values[0]?.value ?? 0)).toEqual(opened.map((m) => m.values[0]?.value ?? 0))
  })

  it('fetches a CID no site lists unpaid, and does not ask the tracker for its ticket on every fetch', async () => {
    const loose = await makeContent(50 * KiB, 16 * KiB, 13)
    await nodes.push(loose)
    // the real fetch, counting the ticket requests it carries
    let ticketRequests = 0
    const counting: typeof fetch = (input, init) => {
      if (String(input).endsWith('/v1/tickets')) ticketRequests++
      return fetch(input, init)
    }
    const events: ClientEvent[] = []
    const client = createClient({
      tracker: t.url,
      account: privateKeyToAccount(generatePrivateKey()),
      fetch: counting,
      onEvent: (e) => events.push(e),
    })
    for (let i = 0; i < 3; i++) {
      const res = await client.fetch(`shoal://${loose.cid.text}`)
      expect(Buffer.from(await res.arrayBuffer()).equals(Buffer.from(loose.bytes))).toBe(true)
    }
    await client.stop()
    expect(ticketRequests).toBe(1)
    const failed = events.filter((e) => e.type === 'session')
    expect(failed).toHaveLength(3)
    expect(failed[0]).toMatchObject({
      outcome: 'failed',
      reason: expect.stringContaining('SHOAL_ERR_NOT_FOUND'),
    })
    expect(events.filter((e) => e.type === 'receipt')).toEqual([])
  })

  it('refuses forged, over-metered, decreasing, wrong-ticket and over-budget receipts with typed errors', async () => {
    const client = privateKeyToAccount(generatePrivateKey())
    const node = nodes.nodes[0]!
    const url = node.url
    const grant = await ticketFrom(t, { client: client.address, site: 'paid' })
    const opened = await openSession(url, grant.ticket, grant.epoch)
    expect(opened.status).toBe(201)
    expect(opened.body.node).toBe(keys[0]!.address)
    const session = opened.session
    // a ranged read (node:http path) and a whole read (fast path: a memory hit)
    const fastBefore = (await (await fetch(`${url}/metrics`)).text()).match(
      /shoal_edge_fast_path_responses_total (\d+)/,
    )
    const got = (await read(url, small, session, [0, 100_000])) + (await read(url, small, session))
    expect(got).toBe(100_000 + small.bytes.length)
    const fastAfter = (await (await fetch(`${url}/metrics`)).text()).match(
      /shoal_edge_fast_path_responses_total (\d+)/,
    )
    expect(Number(fastAfter?.[1])).toBe(Number(fastBefore?.[1]) + 1)
    const receipt = (bytes: number, over: Partial<BandwidthReceipt> = {}): BandwidthReceipt => ({
      node: keys[0]!.address,
      client: client.address,
      session,
      bytes,
      epoch: grant.epoch,
      ticket: grant.id,
      kind: RECEIPT_KIND.content,
      ...over,
    })
    const send = async (signed: Signed<BandwidthReceipt>) =>
      post(`${url}/v1/receipts`, encodeBandwidthReceipt(signed))

    const over = await send(await signBandwidthReceipt(client, receipt(got + 1)))
    expect([over.status, over.body.error?.code]).toEqual([403, 'SHOAL_ERR_FORBIDDEN'])

    const valid = await signBandwidthReceipt(client, receipt(150_000))
    // a signature over other bytes: the recovered signer is not the client
    const forged = await send({ message: { ...valid.message, bytes: got }, signature: valid.signature })
    expect([forged.status, forged.body.error?.code]).toEqual([401, 'SHOAL_ERR_INVALID_SIGNATURE'])
    const stranger = privateKeyToAccount(generatePrivateKey())
    const strangers = await send(
      await signBandwidthReceipt(stranger, receipt(got, { client: stranger.address })),
    )
    expect([strangers.status, strangers.body.error?.code]).toEqual([403, 'SHOAL_ERR_FORBIDDEN'])

    expect(await send(valid)).toEqual({ status: 200, body: { session, bytes: 150_000 } })
    // the same receipt again is an idempotent 200
    expect(await send(valid)).toEqual({ status: 200, body: { session, bytes: 150_000 } })
    const lower = await send(await signBandwidthReceipt(client, receipt(149_999)))
    expect([lower.status, lower.body.error?.code]).toEqual([409, 'SHOAL_ERR_STALE'])

    const other = await ticketFrom(t, { client: client.address, cid: small.cid.text })
    const wrongTicket = await send(await signBandwidthReceipt(client, receipt(got, { ticket: other.id })))
    expect([wrongTicket.status, wrongTicket.body.error?.code]).toEqual([403, 'SHOAL_ERR_FORBIDDEN'])
    const wrongNode = await send(await signBandwidthReceipt(client, receipt(got, { node: keys[1]!.address })))
    expect([wrongNode.status, wrongNode.body.error?.code]).toEqual([403, 'SHOAL_ERR_FORBIDDEN'])
    const unknown = await send(await signBandwidthReceipt(client, receipt(10, { session: randomNonce() })))
    expect([unknown.status, unknown.body.error?.code]).toEqual([404, 'SHOAL_ERR_NOT_FOUND'])
    const garbage = await post(`${url}/v1/receipts`, '{"message":{}}')
    expect([garbage.status, garbage.body.error?.code]).toEqual([400, 'SHOAL_ERR_INVALID_FORMAT'])

    // still the latest: all the refusals changed nothing in the book
    expect(node.receipts.latest(session)?.message.bytes).toBe(150_000)
    expect((await send(await signBandwidthReceipt(client, receipt(got)))).status).toBe(200)

    // a ticket's budget bounds its receipts
    const tight = await ticketFrom(t, { client: client.address, site: 'paid', budget: 50_000 })
    const s2 = await openSession(url, tight.ticket, tight.epoch)
    expect(s2.status).toBe(201)
    await read(url, small, s2.session, [0, 100_000])
    const overBudget = await send(
      await signBandwidthReceipt(client, receipt(60_000, { session: s2.session, ticket: tight.id })),
    )
    expect([overBudget.status, overBudget.body.error?.code]).toEqual([403, 'SHOAL_ERR_FORBIDDEN'])

    const metrics = await (await fetch(`${url}/metrics`)).text()
    for (const reason of ['over_metered', 'signature', 'decreasing', 'wrong_ticket', 'over_budget'])
      expect(metrics).toMatch(new RegExp(`shoal_edge_receipts_refused_total\\{reason="${reason}"\\} [1-9]`))
    expect(metrics).toMatch(/shoal_edge_receipts_accepted_total [1-9]/)
  })

  it('opens sessions only on current, unexpired tickets of its own tracker', async () => {
    const client = privateKeyToAccount(generatePrivateKey())
    const url = nodes.nodes[1]!.url
    const now = Math.floor(Date.now() / 1000)
    const expired = await signTicket(t.account, {
      issuer: t.account.address,
      client: client.address,
      budget: 2 ** 20,
      expiry: now - 3600,
      nonce: randomNonce(),
    })
    const r1 = await openSession(url, expired)
    expect([r1.status, r1.body.error?.code]).toEqual([401, 'SHOAL_ERR_EXPIRED'])
    // a receipt on the session that was never opened earns nothing
    const receipt = await signBandwidthReceipt(client, {
      node: keys[1]!.address,
      client: client.address,
      session: r1.session,
      bytes: 1,
      epoch: epochNow(),
      ticket: ticketId(expired.message),
      kind: RECEIPT_KIND.content,
    })
    const refused = await post(`${url}/v1/receipts`, encodeBandwidthReceipt(receipt))
    expect([refused.status, refused.body.error?.code]).toEqual([404, 'SHOAL_ERR_NOT_FOUND'])

    const rogue = privateKeyToAccount(generatePrivateKey())
    const foreign = await signTicket(rogue, {
      issuer: rogue.address,
      client: client.address,
      budget: 2 ** 20,
      expiry: now + 3600,
      nonce: randomNonce(),
    })
    const r2 = await openSession(url, foreign)
    expect([r2.status, r2.body.error?.code]).toEqual([403, 'SHOAL_ERR_FORBIDDEN'])

    const grant = await ticketFrom(t, { client: client.address, site: 'paid' })
    const r3 = await openSession(url, grant.ticket, epochNow() - 2)
    expect([r3.status, r3.body.error?.code]).toEqual([400, 'SHOAL_ERR_INVALID_ARGUMENT'])
    // the previous epoch is still open (clock skew at the boundary)
    expect((await openSession(url, grant.ticket, epochNow() - 1)).status).toBe(201)
  })
})

describe('the receipt book survives a crash', () => {
  let t: TrackerFixture
  let dir: string
  let child: ChildProcess | undefined

  /** Starts shoal-node in a child process (`extra` CLI arguments, another data dir). */
  const start = async (extra: string[] = [], dataDir = dir): Promise<{ url: string; node: string }> => {
    const proc = spawn(
      process.execPath,
      [
        '--disable-warning=ExperimentalWarning',
        NODE_BIN,
        'start',
        '--listen',
        '127.0.0.1:0',
        ...extra,
        '--data-dir',
        dataDir,
        '--accept-pushes',
        'any',
        '--tracker-address',
        t.account.address,
        '--log-level',
        'warn',
      ],
      { env: { ...process.env, SHOAL_KEY_PASSPHRASE: '' }, stdio: ['ignore', 'pipe', 'inherit'] },
    )
    child = proc
    return new Promise((resolve, reject) => {
      let seen = ''
      proc.stdout?.on('data', (d: Buffer) => {
        seen += d
        const m = /shoal-node (0x[0-9a-fA-F]{40}) serving at (\S+)/.exec(seen)
        if (m !== null) resolve({ node: m[1]!, url: m[2]! })
      })
      proc.once('exit', (code) => reject(new Error(`shoal-node exited early with ${code}`)))
    })
  }

  beforeAll(async () => {
    t = await startTracker()
    dir = await mkdtemp(join(tmpdir(), 'shoal-receipts-crash-'))
  })
  afterAll(async () => {
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      await once(child, 'exit')
    }
    await t.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('keeps an acknowledged receipt through SIGKILL and a restart', async () => {
    const publisher = privateKeyToAccount(generatePrivateKey())
    const client = privateKeyToAccount(generatePrivateKey())
    const c = await makeContent(300 * KiB, 16 * KiB, 21)
    await publish(t, await signManifest(publisher, 'crash', 1, [entryOf('/a.bin', c)]))
    let { url, node } = await start()
    const put = await request(`${url}/c/${c.cid.text}`, { method: 'PUT', body: c.bytes })
    await put.body.dump()
    expect(put.statusCode).toBe(201)
    const grant = await ticketFrom(t, { client: client.address, site: 'crash' })
    const { session, status } = await openSession(url, grant.ticket, grant.epoch)
    expect(status).toBe(201)
    expect(await read(url, c, session)).toBe(c.bytes.length)
    const signed = await signBandwidthReceipt(client, {
      node: node as Hex,
      client: client.address,
      session,
      bytes: c.bytes.length,
      epoch: grant.epoch,
      ticket: grant.id,
      kind: RECEIPT_KIND.content,
    })
    expect(await post(`${url}/v1/receipts`, encodeBandwidthReceipt(signed))).toEqual({
      status: 200,
      body: { session, bytes: c.bytes.length },
    })

    // no graceful stop: the acknowledged receipt must already be on disk
    const killed = child!
    killed.kill('SIGKILL')
    await once(killed, 'exit')
    expect(killed.signalCode).toBe('SIGKILL')

    ;({ url, node } = await start())
    // the restarted node restored the session with its receipt: the same receipt is an
    // idempotent 200, a lower one is stale
    expect((await post(`${url}/v1/receipts`, encodeBandwidthReceipt(signed))).status).toBe(200)
    const lower = await signBandwidthReceipt(client, { ...signed.message, bytes: c.bytes.length - 1 })
    const stale = await post(`${url}/v1/receipts`, encodeBandwidthReceipt(lower))
    expect([stale.status, stale.body.error?.code]).toEqual([409, 'SHOAL_ERR_STALE'])
    // metering resumes on the restored session
    expect(await read(url, c, session, [0, 1000])).toBe(1000)
    const more = await signBandwidthReceipt(client, { ...signed.message, bytes: c.bytes.length + 1000 })
    expect((await post(`${url}/v1/receipts`, encodeBandwidthReceipt(more))).status).toBe(200)

    const stopped = child!
    stopped.kill('SIGTERM')
    await once(stopped, 'exit')
    const book = createReceiptBook({ path: join(dir, 'receipts.db') })
    await book.open()
    try {
      const { receipts, tickets } = book.epoch(grant.epoch)
      expect(receipts.map((r) => [r.message.session, r.message.bytes])).toEqual([
        [session, c.bytes.length + 1000],
      ])
      expect(tickets.map((tk) => ticketId(tk.message))).toEqual([grant.id])
      expect(book.pendingEpochs()).toEqual([grant.epoch])
      book.markSubmitted(grant.epoch)
      expect(book.pendingEpochs()).toEqual([])
    } finally {
      book.close()
    }
    await waitFor(() => stopped.exitCode !== null || stopped.signalCode !== null)
  })

  it('keeps a receipt acknowledged over the mesh (/shoal/receipt/1.0.0) through SIGKILL and a restart', async () => {
    const meshDir = await mkdtemp(join(tmpdir(), 'shoal-mesh-receipts-crash-'))
    const publisher = privateKeyToAccount(generatePrivateKey())
    const client = privateKeyToAccount(generatePrivateKey())
    const c = await makeContent(300 * KiB, 64 * KiB, 22)
    await publish(t, await signManifest(publisher, 'meshcrash', 1, [entryOf('/a.bin', c)]))
    const meshPort = await freePort()
    const args = ['--mesh-port', String(meshPort)]
    let { url, node } = await start(args, meshDir)
    const { peerId } = JSON.parse(await readFile(join(meshDir, 'peer-key.json'), 'utf8')) as {
      peerId: string
    }
    const peer = { peerId, multiaddrs: [`/ip4/127.0.0.1/tcp/${meshPort}`] }
    const put = await request(`${url}/c/${c.cid.text}`, { method: 'PUT', body: c.bytes })
    await put.body.dump()
    expect(put.statusCode).toBe(201)
    const grant = await ticketFrom(t, { client: client.address, site: 'meshcrash' })
    const session = randomNonce()
    const sent = c.leaves.length + c.bytes.length
    const signed = await signBandwidthReceipt(client, {
      node: node as Hex,
      client: client.address,
      session,
      bytes: sent,
      epoch: grant.epoch,
      ticket: grant.id,
      kind: RECEIPT_KIND.content,
    })
    const first = createMeshClient({ timeoutMs: 5000 })
    await first.start()
    try {
      const opened = await first.openSession(peer, {
        session,
        ticket: grant.ticket,
        epoch: grant.epoch,
        kind: 0,
      })
      expect(opened).toEqual({ session, node })
      expect(Buffer.from(await first.fetch(peer, c.cid, { session })).equals(Buffer.from(c.bytes))).toBe(true)
      expect(await first.sendReceipt(peer, encodeBandwidthReceipt(signed))).toEqual({ session, bytes: sent })
      // no graceful stop: the acknowledged receipt must already be on disk
      const killed = child!
      killed.kill('SIGKILL')
      await once(killed, 'exit')
      expect(killed.signalCode).toBe('SIGKILL')
    } finally {
      await first.stop()
    }

    ;({ url, node } = await start(args, meshDir))
    const second = createMeshClient({ timeoutMs: 5000 })
    await second.start()
    try {
      // the restarted node restored the session with its receipt: the same one is an
      // idempotent answer, a lower one is stale
      expect(await second.sendReceipt(peer, encodeBandwidthReceipt(signed))).toEqual({ session, bytes: sent })
      const lower = await signBandwidthReceipt(client, { ...signed.message, bytes: sent - 1 })
      await expect(second.sendReceipt(peer, encodeBandwidthReceipt(lower))).rejects.toMatchObject({
        code: 'SHOAL_ERR_STALE',
      })
    } finally {
      await second.stop()
    }
    const stopped = child!
    stopped.kill('SIGTERM')
    await once(stopped, 'exit')
    const book = createReceiptBook({ path: join(meshDir, 'receipts.db') })
    await book.open()
    try {
      const { receipts } = book.epoch(grant.epoch)
      expect(receipts.map((r) => [r.message.session, r.message.bytes])).toEqual([[session, sent]])
    } finally {
      book.close()
      await rm(meshDir, { recursive: true, force: true })
    }
  })
})
