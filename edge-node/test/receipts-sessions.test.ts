/**
 * The node's payment sessions with a real receipt book (SQLite in a temp dir) and a clock
 * the test moves: the cap on open sessions, their expiry, and restoring them after a restart.
 */
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  encodeBandwidthReceipt,
  RECEIPT_KIND,
  type Signed,
  signBandwidthReceipt,
  signTicket,
  type Ticket,
  ticketId,
} from '@shoal/protocol'
import type { Hex } from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { parseCommand } from '../src/cli/args.ts'
import { createReceiptBook, type ReceiptBook } from '../src/receipts/book.ts'
import { createSessions, MAX_SESSIONS_PER_TICKET } from '../src/receipts/sessions.ts'
import { createTrackerIdentity } from '../src/receipts/tracker-identity.ts'

const EPOCH = 3600
const tracker = privateKeyToAccount(generatePrivateKey())
const node = privateKeyToAccount(generatePrivateKey())
const client = privateKeyToAccount(generatePrivateKey())
const hex32 = (n: number) => `0x${n.toString(16).padStart(64, '0')}` as Hex

describe('payment sessions on the node', () => {
  let dir: string
  let book: ReceiptBook
  let now: number
  let ticket: Signed<Ticket>

  const sessions = (maxSessions = 3) =>
    createSessions(
      { maxSessions },
      {
        book,
        identity: createTrackerIdentity({ trackerAddress: tracker.address, epochSeconds: EPOCH }),
        node: node.address,
        clock: () => now,
      },
    )
  const epoch = () => Math.floor(now / 1000 / EPOCH)

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-sessions-'))
    book = createReceiptBook({ path: join(dir, 'receipts.db') })
    await book.open()
    now = Date.now()
    ticket = await signTicket(tracker, {
      issuer: tracker.address,
      client: client.address,
      budget: 2 ** 30,
      expiry: Math.floor(now / 1000) + 10 * EPOCH,
      nonce: hex32(99),
    })
  })
  afterEach(async () => {
    book.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('refuses sessions past the cap with 429, and makes room when old ones expire', async () => {
    const s = sessions(3)
    for (let i = 1; i <= 3; i++) await s.open({ session: hex32(i), ticket, epoch: epoch(), kind: 0 })
    await expect(s.open({ session: hex32(4), ticket, epoch: epoch(), kind: 0 })).rejects.toMatchObject({
      code: 'SHOAL_ERR_RATE_LIMITED',
    })
    // reopening an open session is idempotent; another ticket on it is a conflict
    await expect(s.open({ session: hex32(1), ticket, epoch: epoch(), kind: 0 })).resolves.toMatchObject({
      node: node.address,
    })
    await expect(s.open({ session: hex32(1), ticket, epoch: epoch(), kind: 1 })).rejects.toMatchObject({
      code: 'SHOAL_ERR_CONFLICT',
    })
    // two epochs later the old sessions are gone: metering them does nothing, new ones fit
    now += 2 * EPOCH * 1000
    await s.open({ session: hex32(4), ticket, epoch: epoch(), kind: 0 })
    expect(s.size).toBe(1)
    s.meter(hex32(1), 100)
    const signed = await signBandwidthReceipt(client, {
      node: node.address,
      client: client.address,
      session: hex32(1),
      bytes: 100,
      epoch: epoch() - 2,
      ticket: ticketId(ticket.message),
      kind: RECEIPT_KIND.content,
    })
    await expect(s.accept(encodeBandwidthReceipt(signed))).rejects.toMatchObject({
      code: 'SHOAL_ERR_NOT_FOUND',
    })
  })

  it('caps the sessions one ticket holds open, so one holder cannot lock others out', async () => {
    const s = sessions(1000)
    for (let i = 1; i <= MAX_SESSIONS_PER_TICKET; i++)
      await s.open({ session: hex32(i), ticket, epoch: epoch(), kind: 0 })
    await expect(s.open({ session: hex32(100), ticket, epoch: epoch(), kind: 0 })).rejects.toMatchObject({
      code: 'SHOAL_ERR_RATE_LIMITED',
    })
    const other = await signTicket(tracker, { ...ticket.message, nonce: hex32(98) })
    await expect(
      s.open({ session: hex32(100), ticket: other, epoch: epoch(), kind: 0 }),
    ).resolves.toMatchObject({
      node: node.address,
    })
  })

  it('restores open sessions and their receipts from the book after a restart', async () => {
    const first = sessions()
    await first.open({ session: hex32(7), ticket, epoch: epoch(), kind: 0 })
    first.meter(hex32(7), 5000)
    first.meter(hex32(8), 5000) // not a session: ignored
    const receipt = (bytes: number) =>
      signBandwidthReceipt(client, {
        node: node.address,
        client: client.address,
        session: hex32(7),
        bytes,
        epoch: epoch(),
        ticket: ticketId(ticket.message),
        kind: RECEIPT_KIND.content,
      })
    await first.accept(encodeBandwidthReceipt(await receipt(4000)))
    const second = sessions()
    second.restore()
    expect(second.size).toBe(1)
    await expect(second.accept(encodeBandwidthReceipt(await receipt(3000)))).rejects.toMatchObject({
      code: 'SHOAL_ERR_STALE',
    })
    // bytes metered before the restart are lost: only the receipted ones count as sent
    await expect(second.accept(encodeBandwidthReceipt(await receipt(4500)))).rejects.toMatchObject({
      code: 'SHOAL_ERR_FORBIDDEN',
    })
    second.meter(hex32(7), 500)
    await expect(second.accept(encodeBandwidthReceipt(await receipt(4500)))).resolves.toEqual({
      session: hex32(7),
      bytes: 4500,
    })
    expect(book.epoch(epoch()).receipts.map((r) => r.message.bytes)).toEqual([4500])
  })

  it('meters relayed bytes only into a relay session (kind 1) of the ticket that carried them', async () => {
    const s = sessions()
    await s.open({ session: hex32(20), ticket, epoch: epoch(), kind: RECEIPT_KIND.relay })
    await s.open({ session: hex32(21), ticket, epoch: epoch(), kind: RECEIPT_KIND.content })
    const id = ticketId(ticket.message)
    const receipt = (session: Hex, bytes: number, kind: number) =>
      signBandwidthReceipt(client, {
        node: node.address,
        client: client.address,
        session,
        bytes,
        epoch: epoch(),
        ticket: id,
        kind: kind as 0 | 1,
      }).then(encodeBandwidthReceipt)
    s.meterRelay(hex32(20), id, 3000)
    s.meterRelay(hex32(20), hex32(5), 9000) // another ticket's bytes: not this session's
    s.meterRelay(hex32(21), id, 9000) // a content session is not metered by the relay
    s.meter(hex32(20), 9000) // nor a relay session by content responses
    await expect(s.accept(await receipt(hex32(20), 3001, 1))).rejects.toMatchObject({
      code: 'SHOAL_ERR_FORBIDDEN',
    })
    await expect(s.accept(await receipt(hex32(20), 3000, 1))).resolves.toEqual({
      session: hex32(20),
      bytes: 3000,
    })
    await expect(s.accept(await receipt(hex32(21), 1, 0))).rejects.toMatchObject({
      code: 'SHOAL_ERR_FORBIDDEN',
    })
    // a relay receipt on a content session (or the reverse) is refused
    await expect(s.accept(await receipt(hex32(20), 3000, 0))).rejects.toMatchObject({
      code: 'SHOAL_ERR_FORBIDDEN',
    })
    expect(book.epoch(epoch()).receipts.map((r) => [r.message.kind, r.message.bytes])).toEqual([[1, 3000]])
  })

  it('refuses sessions when it cannot know its tracker or has no key', async () => {
    const blind = createSessions(
      { maxSessions: 10 },
      { book, identity: createTrackerIdentity({ epochSeconds: EPOCH }), node: node.address },
    )
    await expect(blind.open({ session: hex32(1), ticket, epoch: epoch(), kind: 0 })).rejects.toMatchObject({
      code: 'SHOAL_ERR_UNAVAILABLE',
    })
    const keyless = createSessions(
      { maxSessions: 10 },
      {
        book,
        identity: createTrackerIdentity({ trackerAddress: tracker.address, epochSeconds: EPOCH }),
        node: undefined,
      },
    )
    await expect(keyless.open({ session: hex32(1), ticket, epoch: epoch(), kind: 0 })).rejects.toMatchObject({
      code: 'SHOAL_ERR_UNAVAILABLE',
    })
    await expect(blind.open({ session: 'nope', ticket, epoch: epoch(), kind: 0 })).rejects.toMatchObject({
      code: 'SHOAL_ERR_INVALID_ARGUMENT',
    })
  })

  it('takes the receipt options from flags, the environment and the config file', () => {
    const command = parseCommand(
      ['start', '--tracker-address', tracker.address, '--epoch-seconds', '60'],
      { SHOAL_MAX_SESSIONS: '500' },
      undefined,
    )
    expect(command).toMatchObject({
      kind: 'start',
      options: { trackerAddress: tracker.address, epochSeconds: 60, maxSessions: 500 },
    })
    expect(() => parseCommand(['start', '--tracker-address', '0x12'], {}, undefined)).toThrow(
      /not an 0x address/,
    )
    expect(() => parseCommand(['start', '--max-sessions', '0'], {}, undefined)).toThrow(/positive integer/)
  })

  it("learns the tracker's issuer and epoch length from the tracker it is configured with", async () => {
    let answer: { status: number; body: unknown } = {
      status: 503,
      body: { error: { code: 'SHOAL_ERR_UNAVAILABLE' } },
    }
    let asked = 0
    const server = http.createServer((req, res) => {
      asked++
      expect(req.url).toBe('/v1/epochs/current')
      res.writeHead(answer.status, { 'content-type': 'application/json' }).end(JSON.stringify(answer.body))
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
      const identity = createTrackerIdentity({ trackerUrl: url, epochSeconds: EPOCH, retryMs: 60_000 })
      // a tracker that fails is not asked again before retryMs: sessions are refused meanwhile
      expect(await identity.issuer()).toBeUndefined()
      answer = {
        status: 200,
        body: { epoch: 1, startsAt: 60, endsAt: 120, epochSeconds: 60, issuer: tracker.address },
      }
      expect(await identity.issuer()).toBeUndefined()
      expect(asked).toBe(1)
      const fresh = createTrackerIdentity({ trackerUrl: url, epochSeconds: EPOCH })
      expect(await fresh.issuer()).toBe(tracker.address)
      expect(fresh.epochSeconds()).toBe(60)
      // known once: not asked again
      expect(await fresh.issuer()).toBe(tracker.address)
      expect(asked).toBe(2)
      // an answer without an issuer (a tracker that does not say) is no issuer
      answer = { status: 200, body: { epoch: 1, startsAt: 60, endsAt: 120, epochSeconds: 60 } }
      expect(await createTrackerIdentity({ trackerUrl: url, epochSeconds: EPOCH }).issuer()).toBeUndefined()
    } finally {
      server.close()
    }
  })
})
