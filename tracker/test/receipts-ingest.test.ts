/**
 * `POST /v1/receipts`: node-signed batches, stored whole, per-receipt reasons, idempotent.
 */
import {
  type BandwidthReceipt,
  encodeBandwidthReceipt,
  encodeReceiptBatch,
  hashBandwidthReceipt,
  RECEIPT_KIND,
  receiptsHash,
  signBandwidthReceipt,
  signReceiptBatch,
} from '@shoal/protocol'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { afterEach, describe, expect, it } from 'vitest'
import { submitReceiptBatch } from '../src/client/receipts.ts'
import {
  makeContent,
  postJson,
  publishSite,
  registerNode,
  startTestNode,
  type TestNode,
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

const EPOCH_SECONDS = 60

async function setup() {
  const t = await startTracker({
    epochSeconds: EPOCH_SECONDS,
    rateLimits: { tickets: { rate: 100, burst: 100 }, receipts: { rate: 100, burst: 100 } },
  })
  fixtures.push(t)
  const publisher = privateKeyToAccount(generatePrivateKey())
  await publishSite(t.url, publisher, 'blog', 1, [{ path: '/a', content: await makeContent(100) }])
  const node = await startTestNode()
  nodes.push(node)
  expect((await registerNode(t.url, node)).status).toBe(201)
  const client = privateKeyToAccount(generatePrivateKey())
  const issued = await postJson(`${t.url}/v1/tickets`, { client: client.address, site: 'blog' })
  const epoch = Math.floor(Date.now() / 1000 / EPOCH_SECONDS) - 1
  const receipt = (over: Partial<BandwidthReceipt> = {}): BandwidthReceipt => ({
    node: node.address,
    client: client.address,
    session: `0x${'11'.repeat(32)}`,
    bytes: 1_048_576,
    epoch,
    ticket: issued.body.id as `0x${string}`,
    kind: RECEIPT_KIND.content,
    ...over,
  })
  return { t, node, client, epoch, receipt }
}

const code = (r: { body: Record<string, unknown> }) => (r.body.error as { code: string } | undefined)?.code

describe('POST /v1/receipts', () => {
  it('stores a signed batch whole, records per-receipt reasons, and is idempotent', async () => {
    const { t, node, client, epoch, receipt } = await setup()
    const stranger = privateKeyToAccount(generatePrivateKey())
    const receipts = [
      await signBandwidthReceipt(client, receipt()),
      await signBandwidthReceipt(client, receipt({ session: `0x${'22'.repeat(32)}`, bytes: 5 })),
      await signBandwidthReceipt(client, receipt({ epoch: epoch - 1 })), // wrong epoch
      await signBandwidthReceipt(client, receipt({ ticket: `0x${'99'.repeat(32)}` })), // not issued here
      await signBandwidthReceipt(stranger, receipt({ client: stranger.address })), // another client's ticket
      await signBandwidthReceipt(client, receipt({ node: stranger.address })), // another node
    ]
    const first = await submitReceiptBatch({ trackerUrl: t.url, account: node.account, epoch, receipts })
    expect(first).toMatchObject({
      node: node.address,
      epoch,
      count: 6,
      accepted: 2,
      rejected: 4,
      created: true,
    })
    const report = (await (await fetch(`${t.url}/v1/receipts/${first.batch}`)).json()) as Record<
      string,
      unknown
    >
    expect(report.rejections).toEqual([
      { index: 2, session: `0x${'11'.repeat(32)}`, reason: 'wrong-epoch' },
      { index: 3, session: `0x${'11'.repeat(32)}`, reason: 'unknown-ticket' },
      { index: 4, session: `0x${'11'.repeat(32)}`, reason: 'ticket-client' },
      { index: 5, session: `0x${'11'.repeat(32)}`, reason: 'wrong-node' },
    ])
    expect(
      (await t.tracker.store.listEpochReceipts(epoch)).map((r) => r.bytes).sort((a, b) => a - b),
    ).toEqual([5, 1_048_576])

    // the same signed batch again: the stored answer, nothing counted twice
    const signedBatch = JSON.parse((await t.tracker.store.getReceiptBatch(first.batch))!.batch)
    const again = await postJson(`${t.url}/v1/receipts`, {
      batch: signedBatch,
      receipts: receipts.map((r) => JSON.parse(encodeBandwidthReceipt(r))),
    })
    expect([again.status, again.body.created, again.body.batch]).toEqual([200, false, first.batch])
    expect(await t.tracker.store.listEpochReceipts(epoch)).toHaveLength(2)
    expect((await fetch(`${t.url}/v1/receipts/0x${'00'.repeat(32)}`)).status).toBe(404)
  })

  it('takes relay receipts (kind 1) in the same batch as content ones', async () => {
    const { t, node, client, epoch, receipt } = await setup()
    const receipts = [
      await signBandwidthReceipt(client, receipt()),
      await signBandwidthReceipt(
        client,
        receipt({ session: `0x${'33'.repeat(32)}`, bytes: 4096, kind: RECEIPT_KIND.relay }),
      ),
    ]
    const answer = await submitReceiptBatch({ trackerUrl: t.url, account: node.account, epoch, receipts })
    expect(answer).toMatchObject({ count: 2, accepted: 2, rejected: 0 })
    const stored = await t.tracker.store.listEpochReceipts(epoch)
    expect(stored.map((r) => [r.kind, r.bytes]).sort((a, b) => a[0]! - b[0]!)).toEqual([
      [0, 1_048_576],
      [1, 4096],
    ])
  })

  it('refuses a batch that does not cover its receipts, a foreign signer, an unregistered node, an open or closed epoch', async () => {
    const { t, node, client, epoch, receipt } = await setup()
    const r1 = await signBandwidthReceipt(client, receipt())
    const r2 = await signBandwidthReceipt(client, receipt({ bytes: 7 }))
    const post = async (
      signer: typeof node.account,
      over: Record<string, unknown>,
      receipts = [r1],
      covered = receipts,
    ) => {
      const batch = await signReceiptBatch(signer, {
        node: signer.address,
        epoch,
        count: covered.length,
        receiptsHash: receiptsHash(covered.map((r) => hashBandwidthReceipt(r.message))),
        timestamp: Math.floor(Date.now() / 1000),
        ...over,
      } as never)
      return postJson(`${t.url}/v1/receipts`, {
        batch: JSON.parse(encodeReceiptBatch(batch)),
        receipts: receipts.map((r) => JSON.parse(encodeBandwidthReceipt(r))),
      })
    }
    // covers other receipts than those sent (a receipt swapped): nothing stored
    let r = await post(node.account, {}, [r1, r2], [r1, r1])
    expect([r.status, code(r)]).toEqual([401, 'SHOAL_ERR_INVALID_SIGNATURE'])
    // count disagrees
    r = await post(node.account, { count: 2 }, [r1])
    expect([r.status, code(r)]).toEqual([400, 'SHOAL_ERR_INVALID_FORMAT'])
    // a key that is not a registered node
    r = await post(privateKeyToAccount(generatePrivateKey()), {})
    expect([r.status, code(r)]).toEqual([403, 'SHOAL_ERR_FORBIDDEN'])
    // the current epoch has not ended; an epoch far in the past is closed
    r = await post(node.account, { epoch: epoch + 1 })
    expect([r.status, code(r)]).toEqual([409, 'SHOAL_ERR_CONFLICT'])
    r = await post(node.account, { epoch: epoch - 100 })
    expect([r.status, code(r)]).toEqual([409, 'SHOAL_ERR_STALE'])
    // a malformed receipt: the whole batch is refused
    const bad = await postJson(`${t.url}/v1/receipts`, { batch: {}, receipts: [] })
    expect([bad.status, code(bad)]).toEqual([400, 'SHOAL_ERR_INVALID_FORMAT'])
    expect(await t.tracker.store.listEpochReceipts(epoch)).toEqual([])
  })
})
