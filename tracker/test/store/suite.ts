/**
 * The storage compliance suite: every `TrackerStore` adapter runs it (libp2p style,
 * one suite exported as a function). `sqlite.test.ts` and `postgres.test.ts` call it.
 *
 * @example
 * runStoreSuite('sqlite', async () => {
 *   const path = join(await mkdtemp(join(tmpdir(), 'store-')), 'tracker.db')
 *   const store = createSqliteStore({ path })
 *   await store.open()
 *   return { store, async open() { … another store on path … }, async cleanup() { … } }
 * })
 */

import { afterEach, describe, expect, it } from 'vitest'
import type { NodeStateRow } from '../../src/selection/index.ts'
import type { PutNodeInput, TrackerStore } from '../../src/store/types.ts'

export interface StoreFixture {
  /** A fresh, empty, opened store. */
  store: TrackerStore
  /** Opens another store on the same data (a restart, or a second replica). */
  open(): Promise<TrackerStore>
  /** Closes everything the fixture made and removes its data. */
  cleanup(): Promise<void>
}

const A = '0x1111111111111111111111111111111111111111'
const B = '0x2222222222222222222222222222222222222222'
const C = '0x3333333333333333333333333333333333333333'
/** A checksummed address with letters, to test case-insensitive lookups. */
const MIXED = '0xAbCdEF0123456789aBcDeF0123456789AbcDEF01'

function nodeInput(
  address: string,
  over: Partial<PutNodeInput['node']> = {},
  sessionId = 'aa',
): PutNodeInput {
  return {
    node: {
      address,
      peerId: `12D3KooW${address.slice(2, 12)}`,
      httpUrl: `https://${address.slice(2, 10).toLowerCase()}.example/`,
      region: 'eu-west',
      capacity: 10_000_000,
      recordTimestamp: 1_700_000_000,
      record: `{"message":{"node":"${address}"},"signature":"0x00"}`,
      updatedAt: 1_700_000_000_000,
      ...over,
    },
    session: { id: sessionId.padEnd(32, '0'), key: new Uint8Array(32).fill(7), createdAt: 1_700_000_000_000 },
  }
}

function stateRow(node: string, over: Partial<NodeStateRow> = {}): NodeStateRow {
  return {
    node,
    region: 'eu-west',
    capacity: 10_000_000,
    registeredAt: 1_700_000_000_000,
    flagged: false,
    latencyMs: 42.5,
    lastAnsweredAt: 1_700_000_100_000,
    lastProbeAt: 1_700_000_100_000,
    consecutiveMisses: 0,
    uptime: '1101',
    successes: 3.5,
    failures: 0.25,
    reportAt: 1_700_000_050_000,
    throughput: 1_234_567,
    integrityFailures: 1,
    coolOffUntil: null,
    load: 1000,
    heartbeatAt: null,
    placementWeight: 77,
    ...over,
  }
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p
  } catch (err) {
    return (err as { code?: string }).code ?? String(err)
  }
  return 'resolved'
}

const CID1 = 'saejacwl7zmysqljumvgcadjudd6kk4c4mshl6mtoy46y3xxrdba7q5wy'
const CID2 = 'saejdcwl7zmysqljumvgcadjudd6kk4c4mshl6mtoy46y3xxrdba7q5wy'
const CID3 = 'saejqcwl7zmysqljumvgcadjudd6kk4c4mshl6mtoy46y3xxrdba7q5wy'

/** Runs the compliance suite against one adapter. `makeStore` returns a fresh fixture per test. */
export function runStoreSuite(name: string, makeStore: () => Promise<StoreFixture>): void {
  describe(`TrackerStore compliance: ${name}`, () => {
    let fixtures: StoreFixture[] = []
    const fresh = async (): Promise<StoreFixture> => {
      const f = await makeStore()
      fixtures.push(f)
      return f
    }
    afterEach(async () => {
      for (const f of fixtures) await f.cleanup()
      fixtures = []
    })

    it('stores a node with its session and finds it by address in any case and by URL', async () => {
      const { store } = await fresh()
      const r = await store.putNode(nodeInput(MIXED))
      expect(r).toEqual({ created: true, registeredAt: 1_700_000_000_000 })
      const got = await store.getNode(MIXED.toLowerCase())
      expect(got).toMatchObject({
        address: MIXED,
        region: 'eu-west',
        status: 'registered',
        capacity: 10_000_000,
      })
      expect(got?.record).toContain(MIXED)
      expect((await store.getNodeByUrl(got!.httpUrl))?.address).toBe(MIXED)
      const session = await store.getSession(MIXED)
      expect(session?.id).toBe('aa'.padEnd(32, '0'))
      expect(session?.key).toBeInstanceOf(Uint8Array)
      expect([...(session?.key ?? [])]).toEqual(new Array(32).fill(7))
      expect(await store.getNode(A)).toBeUndefined()
      expect(await store.getSession(A)).toBeUndefined()
      expect(await store.countNodes()).toBe(1)
    })

    it('updates a node with a newer record, keeps registeredAt and replaces the session', async () => {
      const { store } = await fresh()
      await store.putNode(nodeInput(A))
      const r = await store.putNode(
        nodeInput(
          A,
          { recordTimestamp: 1_700_000_060, updatedAt: 1_700_000_060_000, region: 'us-east' },
          'bb',
        ),
      )
      expect(r).toEqual({ created: false, registeredAt: 1_700_000_000_000 })
      expect(await store.getNode(A)).toMatchObject({ region: 'us-east', recordTimestamp: 1_700_000_060 })
      expect((await store.getSession(A))?.id).toBe('bb'.padEnd(32, '0'))
    })

    it('refuses a replayed (same timestamp) or older record and keeps the stored one', async () => {
      const { store } = await fresh()
      await store.putNode(nodeInput(A, { recordTimestamp: 1_700_000_100 }))
      expect(await codeOf(store.putNode(nodeInput(A, { recordTimestamp: 1_700_000_100 }, 'cc')))).toBe(
        'SHOAL_ERR_REPLAY',
      )
      expect(
        await codeOf(store.putNode(nodeInput(A, { recordTimestamp: 1_700_000_099, region: 'x' }, 'cc'))),
      ).toBe('SHOAL_ERR_STALE')
      expect(await store.getNode(A)).toMatchObject({ recordTimestamp: 1_700_000_100, region: 'eu-west' })
      expect((await store.getSession(A))?.id).toBe('aa'.padEnd(32, '0'))
    })

    it('refuses a URL or a peer id another key owns, and frees a URL its owner gave up', async () => {
      const { store } = await fresh()
      await store.putNode(nodeInput(A, { httpUrl: 'https://one.example/', peerId: 'peerA' }))
      expect(
        await codeOf(store.putNode(nodeInput(B, { httpUrl: 'https://one.example/', peerId: 'peerB' }))),
      ).toBe('SHOAL_ERR_CONFLICT')
      expect(
        await codeOf(store.putNode(nodeInput(B, { httpUrl: 'https://two.example/', peerId: 'peerA' }))),
      ).toBe('SHOAL_ERR_CONFLICT')
      expect(await store.getNode(B)).toBeUndefined()
      await store.putNode(
        nodeInput(A, { httpUrl: 'https://three.example/', peerId: 'peerA', recordTimestamp: 1_700_000_001 }),
      )
      await store.putNode(nodeInput(B, { httpUrl: 'https://one.example/', peerId: 'peerB' }))
      expect((await store.getNodeByUrl('https://one.example/'))?.address).toBe(B)
    })

    it('lets exactly one of two racing registrations claim a URL', async () => {
      const f = await fresh()
      const other = await f.open()
      const results = await Promise.allSettled([
        f.store.putNode(nodeInput(A, { httpUrl: 'https://race.example/' })),
        other.putNode(nodeInput(B, { httpUrl: 'https://race.example/' })),
      ])
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1)
      const rejected = results.find((r) => r.status === 'rejected') as PromiseRejectedResult
      expect(rejected.reason.code).toBe('SHOAL_ERR_CONFLICT')
    })

    it('pages through nodes in address order with their saved state', async () => {
      const { store } = await fresh()
      for (const a of [C, A, B]) await store.putNode(nodeInput(a))
      expect(await store.putNodeStates([stateRow(A), stateRow(C, { flagged: true }), stateRow(MIXED)])).toBe(
        2,
      )
      const first = await store.listNodes({ limit: 2 })
      expect(first.nodes.map((n) => n.node.address)).toEqual([A, B])
      expect(first.nodes[0]?.state).toEqual(stateRow(A))
      expect(first.nodes[1]?.state).toBeUndefined()
      expect(first.next).toBeDefined()
      const second = await store.listNodes({ limit: 2, after: first.next! })
      expect(second.nodes.map((n) => n.node.address)).toEqual([C])
      expect(second.nodes[0]?.state?.flagged).toBe(true)
      expect(second.next).toBeUndefined()
      expect(await codeOf(store.listNodes({ limit: 0 }))).toBe('SHOAL_ERR_INVALID_ARGUMENT')
    })

    it('lists registrations changed since a time, oldest change first (replica sync)', async () => {
      const { store } = await fresh()
      await store.putNode(nodeInput(A, { updatedAt: 1_000 }))
      await store.putNode(nodeInput(B, { updatedAt: 3_000 }))
      await store.putNode(nodeInput(C, { updatedAt: 2_000 }))
      expect((await store.listNodesUpdated({ since: 2_000, limit: 10 })).map((n) => n.address)).toEqual([
        C,
        B,
      ])
      expect((await store.listNodesUpdated({ since: 0, limit: 1 })).map((n) => n.address)).toEqual([A])
      const before = Date.now()
      await store.setNodeStatus(A, 'retired')
      const changed = await store.listNodesUpdated({ since: before, limit: 10 })
      expect(changed.map((n) => [n.address, n.status])).toEqual([[A, 'retired']])
    })

    it('pages through registrations changed at the same time without repeating or skipping one', async () => {
      const { store } = await fresh()
      // a bulk change: every row has the same time, more rows than a page
      for (const address of [MIXED, C, A]) await store.putNode(nodeInput(address, { updatedAt: 5_000 }))
      await store.putNode(nodeInput(B, { updatedAt: 6_000 }))
      const seen: string[] = []
      let since = 0
      let after: string | undefined
      for (let page = 0; page < 10; page++) {
        const rows = await store.listNodesUpdated({ since, after, limit: 2 })
        seen.push(...rows.map((n) => n.address))
        if (rows.length < 2) break
        since = rows[rows.length - 1]!.updatedAt
        after = rows[rows.length - 1]!.address
      }
      // by time, then by address whatever its case
      expect(seen).toEqual([A, C, MIXED, B])
    })

    it('overwrites state rows, and removing a node removes its session and state', async () => {
      const { store } = await fresh()
      await store.putNode(nodeInput(A))
      await store.putNodeStates([stateRow(A)])
      await store.putNodeStates([stateRow(A, { uptime: '0', latencyMs: null })])
      expect(await store.getNodeState(A)).toEqual(stateRow(A, { uptime: '0', latencyMs: null }))
      expect(await store.setNodeStatus(A, 'retired')).toBe(true)
      expect((await store.getNode(A))?.status).toBe('retired')
      expect(await store.removeNode(A)).toBe(true)
      expect(await store.removeNode(A)).toBe(false)
      expect(await store.getNodeState(A)).toBeUndefined()
      expect(await store.getSession(A)).toBeUndefined()
      expect(await store.countNodes()).toBe(0)
    })

    it('writes many state rows in one call', async () => {
      const { store } = await fresh()
      const addresses = Array.from({ length: 500 }, (_, i) => `0x${(i + 1).toString(16).padStart(40, '0')}`)
      for (const a of addresses) {
        await store.putNode(
          nodeInput(a, { httpUrl: `https://n${a.slice(-6)}.example/`, peerId: `p${a.slice(-8)}` }),
        )
      }
      expect(await store.putNodeStates(addresses.map((a) => stateRow(a)))).toBe(500)
      const page = await store.listNodes({ limit: 1000 })
      expect(page.nodes.filter((n) => n.state !== undefined)).toHaveLength(500)
    })

    it('stores reports once per (client, nonce), counts them and keeps client counters', async () => {
      const { store } = await fresh()
      const nonce = `0x${'ab'.repeat(32)}`
      const report = {
        client: MIXED,
        node: A,
        nonce,
        timestamp: 1_700_000_000,
        receivedAt: 1_000,
        weight: 0.25,
        body: '{"x":1}',
      }
      await store.addReport(report)
      expect(await codeOf(store.addReport({ ...report, receivedAt: 2_000 }))).toBe('SHOAL_ERR_REPLAY')
      await store.addReport({ ...report, nonce: `0x${'cd'.repeat(32)}`, receivedAt: 3_000, node: B })
      expect(await store.countReports({ client: MIXED.toLowerCase() })).toBe(2)
      expect(await store.countReports({ node: A })).toBe(1)
      expect(await store.countReports({ client: MIXED, node: B })).toBe(1)
      expect(await store.countReports({ client: MIXED, since: 2_000 })).toBe(1)
      expect(await store.countReports({})).toBe(2)
      expect(await store.getClient(MIXED)).toEqual({
        address: MIXED,
        firstSeen: 1_000,
        lastSeen: 3_000,
        reports: 2,
        tickets: 0,
        refuted: 0,
      })
      await store.addRefutation(MIXED, 4_000)
      expect((await store.getClient(MIXED))?.refuted).toBe(1)
      await store.addRefutation(C, 5_000)
      expect(await store.getClient(C)).toMatchObject({ firstSeen: 5_000, reports: 0, refuted: 1 })
      expect(await store.pruneReports(2_000)).toBe(1)
      expect(await store.countReports({})).toBe(1)
    })

    it('gives a site to its first publisher and accepts only higher sequences from it', async () => {
      const { store } = await fresh()
      const site = {
        site: 'blog',
        publisher: A,
        sequence: 5,
        timestamp: 1_700_000_000,
        entryCount: 2,
        manifest: '{"v":5}',
        updatedAt: 1,
      }
      await store.putSite(site, [
        { cid: CID1, size: 1 },
        { cid: CID2, size: 2 },
      ])
      expect(await codeOf(store.putSite({ ...site, publisher: B, sequence: 6 }, []))).toBe(
        'SHOAL_ERR_FORBIDDEN',
      )
      expect(await codeOf(store.putSite({ ...site, manifest: '{"v":"again"}' }, []))).toBe('SHOAL_ERR_STALE')
      expect(await codeOf(store.putSite({ ...site, sequence: 4 }, []))).toBe('SHOAL_ERR_STALE')
      expect(await store.getSite('blog')).toEqual(site)
      await store.putSite(
        { ...site, publisher: A.toUpperCase().replace('0X', '0x'), sequence: 6, manifest: '{"v":6}' },
        [{ cid: CID3, size: 3 }],
      )
      expect(await store.getSite('blog')).toMatchObject({ sequence: 6, manifest: '{"v":6}', publisher: A })
      expect(await store.getSite('other')).toBeUndefined()
      expect(await store.countSites()).toBe(1)
      // the old manifest's content is gone; sampling wraps around
      expect(await store.sampleContent('s')).toEqual({ cid: CID3, size: 3 })
      expect(await store.sampleContent('sz')).toEqual({ cid: CID3, size: 3 })
    })

    it('samples content ids in CID order, wrapping around, and none when there are none', async () => {
      const { store } = await fresh()
      expect(await store.sampleContent('s')).toBeUndefined()
      await store.putSite(
        { site: 'a', publisher: A, sequence: 1, timestamp: 1, entryCount: 3, manifest: '{}', updatedAt: 1 },
        [
          { cid: CID2, size: 2 },
          { cid: CID1, size: 1 },
          { cid: CID3, size: 3 },
        ],
      )
      expect((await store.sampleContent('s'))?.cid).toBe(CID1)
      expect((await store.sampleContent(CID2))?.cid).toBe(CID2)
      expect((await store.sampleContent(`${CID2}z`))?.cid).toBe(CID3)
      expect((await store.sampleContent('t'))?.cid).toBe(CID1)
    })

    it('keeps verified leaves by CID', async () => {
      const { store } = await fresh()
      const leaves = new Uint8Array(64).map((_, i) => i)
      await store.putLeaves(CID1, leaves)
      await store.putLeaves(CID1, leaves)
      expect(await store.getLeaves(CID1)).toEqual(leaves)
      expect(await store.getLeaves(CID2)).toBeUndefined()
    })

    it('stores issued tickets once and counts them per client', async () => {
      const { store } = await fresh()
      const ticket = {
        id: `0x${'01'.repeat(32)}`,
        client: B,
        budget: 1 << 30,
        expiry: 2_000_000_000,
        issuedAt: 10,
        ticket: '{}',
      }
      await store.addTicket(ticket)
      expect(await codeOf(store.addTicket(ticket))).toBe('SHOAL_ERR_CONFLICT')
      await store.addTicket({ ...ticket, id: `0x${'02'.repeat(32)}`, issuedAt: 20 })
      expect(await store.getTicket(ticket.id)).toEqual(ticket)
      expect(await store.getTicket(`0x${'03'.repeat(32)}`)).toBeUndefined()
      expect(await store.countTickets({ client: B })).toBe(2)
      expect(await store.countTickets({ client: B, since: 15 })).toBe(1)
      expect(await store.countTickets({})).toBe(2)
      expect((await store.getClient(B))?.tickets).toBe(2)
    })

    it('keeps the paying publisher of a ticket, finds the publisher of a cid, records selections of issued tickets', async () => {
      const { store } = await fresh()
      await store.putSite(
        {
          site: 'zeta',
          publisher: B,
          sequence: 1,
          timestamp: 1,
          entryCount: 1,
          manifest: '{}',
          updatedAt: 1,
        },
        [{ cid: CID1, size: 1 }],
      )
      await store.putSite(
        {
          site: 'alpha',
          publisher: A,
          sequence: 1,
          timestamp: 1,
          entryCount: 2,
          manifest: '{}',
          updatedAt: 1,
        },
        [
          { cid: CID1, size: 1 },
          { cid: CID2, size: 2 },
        ],
      )
      expect(await store.findCidPublisher(CID1)).toBe(A)
      expect(await store.findCidPublisher(CID2)).toBe(A)
      expect(await store.findCidPublisher(CID3)).toBeUndefined()
      const id = `0x${'0a'.repeat(32)}`
      const ticket = { id, client: C, budget: 10, expiry: 20, issuedAt: 30, ticket: '{}', publisher: B }
      await store.addTicket(ticket)
      expect(await store.getTicket(id)).toEqual(ticket)
      const rows = [
        { ticket: id, node: MIXED, at: 5 },
        { ticket: id, node: A, at: 6 },
        { ticket: `0x${'0b'.repeat(32)}`, node: A, at: 7 },
      ]
      expect(await store.addSelections(rows)).toBe(2)
      expect(await store.addSelections([{ ticket: id, node: MIXED.toLowerCase(), at: 9 }])).toBe(0)
      expect(await store.addSelections([])).toBe(0)
      expect(await store.listSelections(id)).toEqual([A, MIXED])
      expect(await store.listSelections(`0x${'0b'.repeat(32)}`)).toEqual([])
    })

    it("stores a receipt batch with its receipts at once, once, and lists an epoch's accepted receipts", async () => {
      const { store } = await fresh()
      const id = `0x${'b1'.repeat(32)}`
      const batch = { id, node: A, epoch: 7, count: 2, rejected: 1, receivedAt: 99, batch: '{}' }
      const receipt = (index: number, rejected?: string) => ({
        batch: id,
        index,
        node: A,
        client: B,
        session: `0x${String(index).padStart(2, '0').repeat(32)}`,
        bytes: 1000 + index,
        epoch: 7,
        ticket: `0x${'0c'.repeat(32)}`,
        kind: 0,
        signature: `0x${'55'.repeat(65)}`,
        digest: `0x${'66'.repeat(32)}`,
        rejected,
      })
      expect(await store.addReceiptBatch(batch, [receipt(0), receipt(1, 'wrong-epoch')])).toEqual({
        created: true,
      })
      expect(await store.addReceiptBatch(batch, [receipt(0), receipt(1)])).toEqual({ created: false })
      expect(await store.getReceiptBatch(id)).toEqual(batch)
      expect(await store.getReceiptBatch(`0x${'b2'.repeat(32)}`)).toBeUndefined()
      expect(await store.listBatchReceipts(id, {})).toEqual([receipt(0), receipt(1, 'wrong-epoch')])
      expect(await store.listBatchReceipts(id, { rejectedOnly: true })).toEqual([receipt(1, 'wrong-epoch')])
      expect(await store.listEpochReceipts(7)).toEqual([receipt(0)])
      expect(await store.listEpochReceipts(8)).toEqual([])
      await store.addTicket({
        id: `0x${'0c'.repeat(32)}`,
        client: B,
        budget: 1,
        expiry: 2,
        issuedAt: 3,
        ticket: '{}',
      })
      expect(
        (await store.getTickets([`0x${'0c'.repeat(32)}`, `0x${'0d'.repeat(32)}`])).map((t) => t.id),
      ).toEqual([`0x${'0c'.repeat(32)}`])
      await store.addSelections([{ ticket: `0x${'0c'.repeat(32)}`, node: A, at: 4 }])
      expect(await store.listSelectionsOf([`0x${'0c'.repeat(32)}`])).toEqual([
        { ticket: `0x${'0c'.repeat(32)}`, node: A, at: 4 },
      ])
    })

    it('writes an epoch settlement at once, once; moves its state; adds ticket usage; lists unsettled epochs', async () => {
      const { store } = await fresh()
      const id = `0x${'e1'.repeat(32)}`
      const ticket = `0x${'0e'.repeat(32)}`
      const receipt = {
        batch: id,
        index: 0,
        node: A,
        client: B,
        session: `0x${'01'.repeat(32)}`,
        bytes: 10,
        epoch: 5,
        ticket,
        kind: 0,
        signature: `0x${'55'.repeat(65)}`,
        digest: `0x${'66'.repeat(32)}`,
      }
      await store.addReceiptBatch(
        { id, node: A, epoch: 5, count: 2, rejected: 0, receivedAt: 1, batch: '{}' },
        [receipt, { ...receipt, index: 1, bytes: 20 }],
      )
      await store.addReceiptBatch(
        { id: `0x${'e2'.repeat(32)}`, node: A, epoch: 6, count: 0, rejected: 0, receivedAt: 1, batch: '{}' },
        [],
      )
      expect(await store.listUnsettledEpochs(6)).toEqual([5, 6])
      expect(await store.listUnsettledEpochs(5)).toEqual([5])
      const row = {
        epoch: 5,
        state: 'built' as const,
        root: `0x${'ab'.repeat(32)}`,
        total: '1000000000000000000000',
        debits: '{}',
        tree: '{"entries":[]}',
        report: '{}',
        builtAt: 7,
        updatedAt: 7,
      }
      await store.putEpochSettlement(
        row,
        [{ batch: id, index: 0, reason: 'superseded' }],
        [{ ticket, bytes: 20 }],
      )
      expect(
        await codeOf(
          store.putEpochSettlement(row, [{ batch: id, index: 1, reason: 'x' }], [{ ticket, bytes: 99 }]),
        ),
      ).toBe('SHOAL_ERR_CONFLICT')
      expect(await store.getEpoch(5)).toEqual(row)
      expect(await store.getEpoch(4)).toBeUndefined()
      expect((await store.listEpochReceipts(5)).map((r) => r.index)).toEqual([1])
      expect((await store.listBatchReceipts(id, { rejectedOnly: true }))[0]?.rejected).toBe('superseded')
      expect(await store.listUnsettledEpochs(6)).toEqual([6])
      await store.putEpochSettlement(
        { ...row, epoch: 6, state: 'empty', root: undefined, tree: undefined, total: '0' },
        [],
        [{ ticket, bytes: 5 }],
      )
      expect(await store.getTicketUsage([ticket, `0x${'0f'.repeat(32)}`])).toEqual(new Map([[ticket, 25]]))
      expect((await store.getLatestPaidEpoch())?.epoch).toBe(5)
      await store.setEpochState(5, 'posted', `0x${'cd'.repeat(32)}`, 8)
      await store.setEpochState(5, 'confirmed', undefined, 9)
      expect(await store.getEpoch(5)).toMatchObject({
        state: 'confirmed',
        txHash: `0x${'cd'.repeat(32)}`,
        updatedAt: 9,
      })
    })

    it('lists integrity events of a node, newest first', async () => {
      const { store } = await fresh()
      await store.addIntegrityEvent({ node: A, cid: CID1, chunk: 0, source: 'audit', at: 1, detail: 'one' })
      await store.addIntegrityEvent({ node: A, cid: CID2, chunk: 3, source: 'report', at: 2, detail: 'two' })
      await store.addIntegrityEvent({ node: B, cid: CID2, chunk: 3, source: 'audit', at: 3, detail: 'other' })
      const events = await store.listIntegrityEvents(A.toUpperCase().replace('0X', '0x'), 10)
      expect(events.map((e) => e.detail)).toEqual(['two', 'one'])
      expect(events[0]).toEqual({ node: A, cid: CID2, chunk: 3, source: 'report', at: 2, detail: 'two' })
      expect(await store.listIntegrityEvents(A, 1)).toHaveLength(1)
    })

    it('keeps settings', async () => {
      const { store } = await fresh()
      expect(await store.getMeta('seed')).toBeUndefined()
      await store.setMeta('seed', '1')
      await store.setMeta('seed', '2')
      expect(await store.getMeta('seed')).toBe('2')
    })

    it('keeps everything across a reopen (restart or second replica)', async () => {
      const f = await fresh()
      await f.store.putNode(nodeInput(A))
      await f.store.putNodeStates([stateRow(A)])
      await f.store.setMeta('k', 'v')
      await f.store.close()
      await f.store.close()
      const again = await f.open()
      await again.open()
      expect((await again.getNode(A))?.address).toBe(A)
      expect(await again.getNodeState(A)).toEqual(stateRow(A))
      expect(await again.getMeta('k')).toBe('v')
    })

    it('refuses bad addresses and honours an aborted signal', async () => {
      const { store } = await fresh()
      expect(await codeOf(store.getNode('nope'))).toBe('SHOAL_ERR_INVALID_ARGUMENT')
      const signal = AbortSignal.abort()
      expect(await codeOf(store.getNode(A, { signal }))).toBe('SHOAL_ERR_ABORTED')
      expect(await codeOf(store.putNode(nodeInput(A), { signal }))).toBe('SHOAL_ERR_ABORTED')
      expect(await store.getNode(A)).toBeUndefined()
    })
  })
}
