/**
 * Step one of settlement: tickets name the publisher that pays, epochs are served, and
 * selections that name a ticket are recorded and flushed with the tracker's state.
 */
import { decodeTicket, ticketId, verifyTicket } from '@shoal/protocol'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { afterEach, describe, expect, it } from 'vitest'
import { epochAt, epochInfo } from '../src/epochs/epochs.ts'
import { createSqliteStore } from '../src/store/sqlite.ts'
import { createSelectionLog } from '../src/tickets/selections.ts'
import {
  makeContent,
  postJson,
  publishSite,
  registerNode,
  startTestNode,
  type TestNode,
  waitFor,
} from './helpers/test-node.ts'
import { startTracker, type TrackerFixture } from './helpers/tracker.ts'

let fixtures: TrackerFixture[] = []
let nodes: TestNode[] = []
afterEach(async () => {
  for (const n of nodes) await n.close()
  for (const f of fixtures) await f.close()
  fixtures = []
  nodes = []
})

async function tracker(over = {}) {
  const t = await startTracker({ rateLimits: { tickets: { rate: 100, burst: 100 } }, ...over })
  fixtures.push(t)
  return t
}

const code = (r: { body: Record<string, unknown> }) => (r.body.error as { code: string } | undefined)?.code

describe('epochs', () => {
  it('cuts time into epochSeconds slices', () => {
    expect(epochAt(3_599_999, 3600)).toBe(0)
    expect(epochAt(3_600_000, 3600)).toBe(1)
    expect(epochAt(1_768_442_400_000, 3600)).toBe(491_234)
    expect(epochInfo(491_234, 3600)).toEqual({
      epoch: 491_234,
      startsAt: 1_768_442_400,
      endsAt: 1_768_446_000,
      epochSeconds: 3600,
    })
    expect(() => epochAt(0, 0)).toThrow(expect.objectContaining({ code: 'SHOAL_ERR_INVALID_ARGUMENT' }))
    expect(() => epochInfo(-1, 60)).toThrow(expect.objectContaining({ code: 'SHOAL_ERR_INVALID_ARGUMENT' }))
  })

  it('GET /v1/epochs/current answers the current epoch of the configured length', async () => {
    const t = await tracker({ epochSeconds: 60 })
    const before = Math.floor(Date.now() / 60_000)
    const r = await fetch(`${t.url}/v1/epochs/current`)
    const after = Math.floor(Date.now() / 60_000)
    expect(r.status).toBe(200)
    const body = (await r.json()) as Record<string, number | string>
    expect(body.epoch).toBeGreaterThanOrEqual(before)
    expect(body.epoch).toBeLessThanOrEqual(after)
    expect(body).toEqual({
      epoch: body.epoch,
      startsAt: (body.epoch as number) * 60,
      endsAt: ((body.epoch as number) + 1) * 60,
      epochSeconds: 60,
      issuer: t.account.address,
    })
  })
})

describe('tickets name the publisher that pays', () => {
  it('resolves site, cid and publisher; stores the publisher; answers the epoch', async () => {
    const t = await tracker({ epochSeconds: 120 })
    const owner = privateKeyToAccount(generatePrivateKey())
    const other = privateKeyToAccount(generatePrivateKey())
    const a = await makeContent(2000)
    const b = await makeContent(500)
    expect((await publishSite(t.url, owner, 'blog', 1, [{ path: '/a', content: a }])).status).toBe(201)
    expect((await publishSite(t.url, other, 'zine', 1, [{ path: '/b', content: b }])).status).toBe(201)
    const client = privateKeyToAccount(generatePrivateKey()).address

    const bySite = await postJson(`${t.url}/v1/tickets`, { client, site: 'blog' })
    expect(bySite.status).toBe(201)
    expect(bySite.body).toMatchObject({ publisher: owner.address })
    const now = Math.floor(Date.now() / 1000)
    expect(bySite.body.epoch).toBe(Math.floor(now / 120))
    expect(bySite.body.epochEndsAt).toBe(((bySite.body.epoch as number) + 1) * 120)
    const ticket = await verifyTicket(decodeTicket(bySite.body.ticket))
    expect(ticketId(ticket)).toBe(bySite.body.id)
    expect(await t.tracker.store.getTicket(bySite.body.id as string)).toMatchObject({
      client,
      publisher: owner.address,
    })

    const byCid = await postJson(`${t.url}/v1/tickets`, { client, cid: b.cid })
    expect([byCid.status, byCid.body.publisher]).toEqual([201, other.address])
    expect((await t.tracker.store.getTicket(byCid.body.id as string))?.publisher).toBe(other.address)

    const relay = privateKeyToAccount(generatePrivateKey()).address
    const byPublisher = await postJson(`${t.url}/v1/tickets`, { client, publisher: relay.toLowerCase() })
    expect([byPublisher.status, byPublisher.body.publisher]).toEqual([201, relay])

    // unknown site or cid: 404; none or two of them, or a bad cid: 400
    let r = await postJson(`${t.url}/v1/tickets`, { client, site: 'nope' })
    expect([r.status, code(r)]).toEqual([404, 'SHOAL_ERR_NOT_FOUND'])
    const stray = await makeContent(10)
    r = await postJson(`${t.url}/v1/tickets`, { client, cid: stray.cid })
    expect([r.status, code(r)]).toEqual([404, 'SHOAL_ERR_NOT_FOUND'])
    r = await postJson(`${t.url}/v1/tickets`, { client })
    expect([r.status, code(r)]).toEqual([400, 'SHOAL_ERR_INVALID_ARGUMENT'])
    r = await postJson(`${t.url}/v1/tickets`, { client, site: 'blog', publisher: relay })
    expect([r.status, code(r)]).toEqual([400, 'SHOAL_ERR_INVALID_ARGUMENT'])
    r = await postJson(`${t.url}/v1/tickets`, { client, cid: 'not-a-cid' })
    expect(r.status).toBe(400)
    r = await postJson(`${t.url}/v1/tickets`, { client, site: 'Bad_Name' })
    expect([r.status, code(r)]).toEqual([400, 'SHOAL_ERR_INVALID_ARGUMENT'])
    expect(await t.tracker.store.countTickets({ client })).toBe(3)
  })
})

describe('selections that name a ticket', () => {
  it('records the (ticket, node) pairs handed out, flushed with the state, kept across a restart', async () => {
    const t0 = await tracker()
    const owner = privateKeyToAccount(generatePrivateKey())
    const content = await makeContent(3000)
    await publishSite(t0.url, owner, 'blog', 1, [{ path: '/a', content }])
    for (let i = 0; i < 3; i++) {
      const n = await startTestNode()
      nodes.push(n)
      await registerNode(t0.url, n)
      await waitFor(() => t0.tracker.index.get(n.address)?.status === 'active')
    }
    const client = privateKeyToAccount(generatePrivateKey()).address
    const issued = await postJson(`${t0.url}/v1/tickets`, { client, site: 'blog' })
    const id = issued.body.id as string

    const sel = await fetch(`${t0.url}/v1/select?cid=${content.cid}&count=2&ticket=${id}`)
    expect(sel.status).toBe(200)
    const picked = ((await sel.json()) as { nodes: { node: string }[] }).nodes.map((n) => n.node)
    expect(picked).toHaveLength(2)
    // a selection without a ticket, and one naming a ticket never issued, record nothing
    await fetch(`${t0.url}/v1/select?cid=${content.cid}&count=3`)
    const forged = `0x${'ab'.repeat(32)}`
    await fetch(`${t0.url}/v1/select?cid=${content.cid}&count=3&ticket=${forged}`)
    // a bad ticket id is refused
    const bad = await fetch(`${t0.url}/v1/select?cid=${content.cid}&ticket=0x12`)
    expect(bad.status).toBe(400)

    await t0.tracker.flush()
    const lower = (xs: string[]) => xs.map((x) => x.toLowerCase()).sort()
    expect(lower(await t0.tracker.store.listSelections(id))).toEqual(lower(picked))
    expect(await t0.tracker.store.listSelections(forged)).toEqual([])
    expect(t0.tracker.selections.pending).toBe(0)

    // asking again adds the third node; stop() flushes it
    await fetch(`${t0.url}/v1/select?cid=${content.cid}&count=3&ticket=${id}`)
    const t1 = await t0.restart()
    fixtures.push(t1)
    expect(await t1.tracker.store.listSelections(id)).toHaveLength(3)
  })

  it('keeps pending pairs when a flush fails, and bounds them', async () => {
    const store = createSqliteStore({ path: ':memory:' })
    const dropped: number[] = []
    const log = createSelectionLog(
      { maxPending: 2 },
      {
        store,
        clock: () => 5,
        metrics: { selectionsDropped: { inc: () => dropped.push(1) } } as never,
      },
    )
    const id = `0x${'01'.repeat(32)}`
    log.record(id, [
      '0x1111111111111111111111111111111111111111',
      '0x2222222222222222222222222222222222222222',
    ])
    log.record(id, [
      '0x1111111111111111111111111111111111111111',
      '0x3333333333333333333333333333333333333333',
    ])
    expect([log.pending, dropped.length]).toEqual([2, 1])
    // the store is not open: the flush fails and keeps the pairs
    await expect(log.flush()).rejects.toMatchObject({ code: 'SHOAL_ERR_UNAVAILABLE' })
    expect(log.pending).toBe(2)
    await store.open()
    await store.addTicket({
      id,
      client: '0x1111111111111111111111111111111111111111',
      budget: 1,
      expiry: 1,
      issuedAt: 1,
      ticket: '{}',
    })
    expect(await log.flush()).toBe(2)
    expect(await store.listSelections(id)).toEqual([
      '0x1111111111111111111111111111111111111111',
      '0x2222222222222222222222222222222222222222',
    ])
    await store.close()
  })
})
