/**
 * Receipts over the mesh (`/shoal/receipt/1.0.0`, docs/mesh.md): a real edge node, real
 * libp2p on 127.0.0.1, real keys. A client that reaches a node only through the mesh
 * opens a session, names it in its chunk requests, and the node meters what it sends and
 * stores the client's receipts in its durable book with the HTTP path's checks. (A
 * receipt acknowledged over the mesh surviving SIGKILL: client-sdk/test/receipts.test.ts.)
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  CHUNK_PROTOCOL,
  createMeshClient,
  createMeshTransport,
  MESH_RECEIPT_LIMITS,
  type MeshClient,
  type MeshNode,
  RECEIPT_PROTOCOL,
} from '@shoal/client-sdk/node'
import {
  type BandwidthReceipt,
  computeCid,
  encodeBandwidthReceipt,
  RECEIPT_KIND,
  type Signed,
  signBandwidthReceipt,
  signTicket,
  type Ticket,
  ticketId,
  verifyBandwidthReceipt,
} from '@shoal/protocol'
import { request } from 'undici'
import type { Hex } from 'viem'
import { generatePrivateKey, type PrivateKeyAccount, privateKeyToAccount } from 'viem/accounts'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createEdgeNode, type EdgeNode } from '../src/node.ts'
import { frame, rawExchange } from './helpers/mesh-raw.ts'
import { pattern } from './helpers/pattern.ts'

const EPOCH_SECONDS = 3600
const epochNow = () => Math.floor(Date.now() / 1000 / EPOCH_SECONDS)
const issuer = privateKeyToAccount(generatePrivateKey())
const client = privateKeyToAccount(generatePrivateKey())
const nodeKey = privateKeyToAccount(generatePrivateKey())
const randomSession = (): Hex =>
  `0x${Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('hex')}`

const cleanups: (() => Promise<unknown>)[] = []
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn().catch(() => {})
})

async function ticketFor(holder: PrivateKeyAccount, signer = issuer, budget = 2 ** 30) {
  return signTicket(signer, {
    issuer: signer.address,
    client: holder.address,
    budget,
    expiry: Math.floor(Date.now() / 1000) + 2 * EPOCH_SECONDS,
    nonce: randomSession(),
  })
}

async function push(url: string, bytes: Uint8Array) {
  const res = await request(`${url.replace(/\/$/, '')}/c/${(await computeCid(bytes)).cid.text}`, {
    method: 'PUT',
    body: bytes,
  })
  await res.body.dump()
  expect(res.statusCode).toBeLessThan(300)
}

/** A receipt of `holder` for `bytes` of `session` on `ticket` (the fields can be overridden). */
const receiptOf = (
  holder: PrivateKeyAccount,
  ticket: Signed<Ticket>,
  session: Hex,
  bytes: number,
  fields: Partial<BandwidthReceipt> = {},
) =>
  signBandwidthReceipt(holder, {
    node: nodeKey.address,
    client: ticket.message.client,
    session,
    bytes,
    epoch: epochNow(),
    ticket: ticketId(ticket.message),
    kind: RECEIPT_KIND.content,
    ...fields,
  })

async function sessionBytes(node: EdgeNode): Promise<number> {
  return (await node.metrics.sessionBytes.get()).values[0]?.value ?? 0
}

describe('receipts over the mesh', () => {
  let dataDir: string
  let node: EdgeNode
  let mesh: MeshClient
  let peer: MeshNode
  const bytes = pattern(700_000, 5)
  let cid: Awaited<ReturnType<typeof computeCid>>['cid']
  const leavesBytes = 32 * Math.ceil(700_000 / (256 * 1024))

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'shoal-mesh-receipts-'))
    node = createEdgeNode(
      {
        dataDir,
        host: '127.0.0.1',
        port: 0,
        shutdownGraceMs: 100,
        acceptPushes: 'any',
        trackerAddress: issuer.address,
        // objects above 128 KiB stay out of memory: chunks are sent (and metered) from disk
        // here; client-sdk/test/mesh.test.ts meters them from the memory tier
        memoryCacheBytes: 2 ** 20,
      },
      { account: nodeKey },
    )
    await node.start()
    ;({ cid } = await computeCid(bytes))
    await push(node.url, bytes)
    mesh = createMeshClient({ timeoutMs: 5000 })
    await mesh.start()
    peer = { peerId: node.mesh!.peerId, multiaddrs: node.mesh!.multiaddrs() }
  })
  afterAll(async () => {
    await mesh?.stop()
    await node?.stop()
    await rm(dataDir, { recursive: true, force: true })
  })

  it('stores a verifiable receipt for exactly the bytes the node sent in the session, and no more', async () => {
    const ticket = await ticketFor(client)
    const session = randomSession()
    const before = await sessionBytes(node)
    const opened = await mesh.openSession(peer, { session, ticket, epoch: epochNow(), kind: 0 })
    expect(opened).toEqual({ session, node: nodeKey.address })
    // bytes fetched without naming the session are not metered for it
    expect(Buffer.from(await mesh.fetch(peer, cid)).equals(bytes)).toBe(true)
    expect(await sessionBytes(node)).toBe(before)
    expect(Buffer.from(await mesh.fetch(peer, cid, { session })).equals(bytes)).toBe(true)
    const sent = leavesBytes + bytes.length
    expect((await sessionBytes(node)) - before).toBe(sent)

    // one byte more than was sent is refused, typed; exactly what was sent is stored
    const over = await receiptOf(client, ticket, session, sent + 1)
    await expect(mesh.sendReceipt(peer, encodeBandwidthReceipt(over))).rejects.toMatchObject({
      code: 'SHOAL_ERR_FORBIDDEN',
    })
    const exact = await receiptOf(client, ticket, session, sent)
    expect(await mesh.sendReceipt(peer, encodeBandwidthReceipt(exact))).toEqual({ session, bytes: sent })
    // the same receipt again is idempotent
    expect(await mesh.sendReceipt(peer, encodeBandwidthReceipt(exact))).toEqual({ session, bytes: sent })

    const { receipts, tickets } = node.receipts.epoch(epochNow())
    const stored = receipts.filter((r) => r.message.session === session)
    expect(stored).toHaveLength(1)
    expect(stored[0]!.message).toMatchObject({ bytes: sent, client: client.address, node: nodeKey.address })
    await expect(verifyBandwidthReceipt(stored[0]!)).resolves.toMatchObject({ bytes: sent })
    expect(tickets.map((t) => ticketId(t.message))).toContain(ticketId(ticket.message))
    expect((await node.metrics.receiptsRefused.get()).values).toContainEqual(
      expect.objectContaining({ labels: { reason: 'over_metered' }, value: 1 }),
    )
  })

  it('refuses a wrong session, a bad signature, a stale epoch, a foreign ticket, a lower receipt', async () => {
    const ticket = await ticketFor(client)
    const session = randomSession()
    await mesh.openSession(peer, { session, ticket, epoch: epochNow(), kind: 0 })
    await mesh.fetch(peer, cid, { session })
    const send = async (signed: Signed<BandwidthReceipt>) =>
      mesh.sendReceipt(peer, encodeBandwidthReceipt(signed)).then(
        (answer) => answer,
        (err: { code?: string }) => err.code,
      )
    await expect(
      mesh.sendReceipt(peer, encodeBandwidthReceipt(await receiptOf(client, ticket, session, 1000))),
    ).resolves.toEqual({ session, bytes: 1000 })
    // no such session
    expect(await send(await receiptOf(client, ticket, randomSession(), 10))).toBe('SHOAL_ERR_NOT_FOUND')
    // a signature that does not recover the client (it signs another receipt)
    const forged = {
      message: (await receiptOf(client, ticket, session, 2000)).message,
      signature: (await receiptOf(client, ticket, session, 3000)).signature,
    }
    expect(await send(forged)).toBe('SHOAL_ERR_INVALID_SIGNATURE')
    const stranger = privateKeyToAccount(generatePrivateKey())
    // another epoch than the session's
    expect(await send(await receiptOf(client, ticket, session, 2000, { epoch: epochNow() - 1 }))).toBe(
      'SHOAL_ERR_FORBIDDEN',
    )
    // another node
    expect(await send(await receiptOf(client, ticket, session, 2000, { node: stranger.address }))).toBe(
      'SHOAL_ERR_FORBIDDEN',
    )
    // lower than the stored one
    expect(await send(await receiptOf(client, ticket, session, 999))).toBe('SHOAL_ERR_STALE')
    // sessions: a stale epoch, a ticket the node's tracker did not sign, another kind on an open session
    const open = (body: Parameters<MeshClient['openSession']>[1]) =>
      mesh.openSession(peer, body).then(
        (answer) => answer,
        (err: { code?: string }) => err.code,
      )
    expect(await open({ session: randomSession(), ticket, epoch: epochNow() - 2, kind: 0 })).toBe(
      'SHOAL_ERR_INVALID_ARGUMENT',
    )
    const foreign = await ticketFor(client, privateKeyToAccount(generatePrivateKey()))
    expect(await open({ session: randomSession(), ticket: foreign, epoch: epochNow(), kind: 0 })).toBe(
      'SHOAL_ERR_FORBIDDEN',
    )
    expect(await open({ session, ticket, epoch: epochNow(), kind: 1 })).toBe('SHOAL_ERR_CONFLICT')
    // nothing refused reached the book
    const stored = node.receipts.epoch(epochNow()).receipts.filter((r) => r.message.session === session)
    expect(stored.map((r) => r.message.bytes)).toEqual([1000])
  })

  it('closes the stream on malformed and oversized frames, never the node', async () => {
    const raw = await createMeshTransport()
    cleanups.push(async () => raw.stop())
    const ticket = await ticketFor(client)
    const receipt = encodeBandwidthReceipt(await receiptOf(client, ticket, randomSession(), 1))
    const cases: [string, string, Uint8Array, string | undefined][] = [
      ['not JSON', RECEIPT_PROTOCOL, frame('{nope'), 'SHOAL_ERR_INVALID_FORMAT'],
      ['JSON array', RECEIPT_PROTOCOL, frame('[1]'), 'SHOAL_ERR_INVALID_FORMAT'],
      ['empty object', RECEIPT_PROTOCOL, frame('{}'), 'SHOAL_ERR_INVALID_FORMAT'],
      [
        'both fields',
        RECEIPT_PROTOCOL,
        frame(`{"open":{},"receipt":${receipt}}`),
        'SHOAL_ERR_INVALID_FORMAT',
      ],
      ['unknown field', RECEIPT_PROTOCOL, frame('{"close":1}'), 'SHOAL_ERR_INVALID_FORMAT'],
      ['open: not an object', RECEIPT_PROTOCOL, frame('{"open":"x"}'), 'SHOAL_ERR_INVALID_ARGUMENT'],
      [
        'open: bad ticket',
        RECEIPT_PROTOCOL,
        frame(
          JSON.stringify({
            open: { session: randomSession(), ticket: { x: 1 }, epoch: epochNow(), kind: 0 },
          }),
        ),
        'SHOAL_ERR_INVALID_FORMAT',
      ],
      [
        'receipt: malformed',
        RECEIPT_PROTOCOL,
        frame('{"receipt":{"message":{}}}'),
        'SHOAL_ERR_INVALID_FORMAT',
      ],
      [
        'frame over the limit',
        RECEIPT_PROTOCOL,
        frame(`{"receipt":"${'x'.repeat(MESH_RECEIPT_LIMITS.maxRequestBytes)}"}`),
        'SHOAL_ERR_TOO_LARGE',
      ],
      ['2^27-byte prefix', RECEIPT_PROTOCOL, new Uint8Array([0x80, 0x80, 0x80, 0x40]), 'SHOAL_ERR_TOO_LARGE'],
      [
        '5-byte prefix',
        RECEIPT_PROTOCOL,
        new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x7f]),
        'SHOAL_ERR_INVALID_FORMAT',
      ],
      ['truncated frame', RECEIPT_PROTOCOL, new Uint8Array([0x20, 0x7b]), 'SHOAL_ERR_INVALID_FORMAT'],
      ['empty stream', RECEIPT_PROTOCOL, new Uint8Array(0), undefined],
      [
        'chunk request: bad session',
        CHUNK_PROTOCOL,
        frame(JSON.stringify({ cid: cid.text, from: 0, to: 1, leaves: true, session: '0x12' })),
        'SHOAL_ERR_INVALID_FORMAT',
      ],
      [
        'chunk request: session and an extra field',
        CHUNK_PROTOCOL,
        frame(
          JSON.stringify({ cid: cid.text, from: 0, to: 1, leaves: true, session: randomSession(), x: 1 }),
        ),
        'SHOAL_ERR_INVALID_FORMAT',
      ],
    ]
    for (const [what, protocol, bytesOut, code] of cases) {
      const { frames, status } = await rawExchange(raw, node, protocol, bytesOut)
      expect(status, what).not.toBe('open')
      if (code === undefined) expect(frames, what).toEqual([])
      else {
        expect(frames, what).toHaveLength(1)
        expect(JSON.parse(frames[0]!), what).toMatchObject({ status: 'error', code })
      }
    }
    // the node still serves and still takes receipts
    const session = randomSession()
    await mesh.openSession(peer, { session, ticket, epoch: epochNow(), kind: 0 })
    expect(Buffer.from(await mesh.fetch(peer, cid, { session })).equals(bytes)).toBe(true)
    const ok = await receiptOf(client, ticket, session, bytes.length)
    expect(await mesh.sendReceipt(peer, encodeBandwidthReceipt(ok))).toEqual({ session, bytes: bytes.length })
  })
})
