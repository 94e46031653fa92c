/**
 * The attack simulation of issue #6 on the in-process chain, with real signatures:
 * 20 honest nodes and 5 attackers over 3 epochs. Honest nodes get what their delivery
 * earns; fabricated bytes earn nothing; every claim succeeds once and only once; token
 * balances add up to the escrow debits. Plus: a crash mid-settlement never pays twice.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  buildPayoutTree,
  deployShoal,
  fundEscrow,
  publisherEscrowAbi,
  rewardDistributorAbi,
  type ShoalChain,
  type ShoalDeployment,
  shoalTokenAbi,
  startChain,
} from '@shoal/contracts'
import {
  type BandwidthReceipt,
  encodeBandwidthReceipt,
  encodeNodeRecord,
  encodeReceiptBatch,
  hashBandwidthReceipt,
  RECEIPT_KIND,
  receiptsHash,
  type Signed,
  signBandwidthReceipt,
  signNodeRecord,
  signReceiptBatch,
} from '@shoal/protocol'
import { type Address, getAddress, type Hex } from 'viem'
import { generatePrivateKey, type PrivateKeyAccount, privateKeyToAccount } from 'viem/accounts'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import {
  createReceiptVerifier,
  createSettler,
  createSqliteStore,
  createTracker,
  fetchPayoutProof,
  type Tracker,
  type TrackerStore,
} from '../src/index.ts'
import { createViemSettlementChain, type SettlementChain } from '../src/settlement/chain.ts'
import { randomPeerId } from './helpers/test-node.ts'

const EPOCH_SECONDS = 3600
const GIB = 2n ** 30n
const PRICE = 10n ** 16n
const MiB = 1 << 20

let chain: ShoalChain
let shoal: ShoalDeployment
let dir: string
const wait = (hash: Hex) => chain.publicClient.waitForTransactionReceipt({ hash })

beforeAll(async () => {
  chain = await startChain()
  const [admin, settler] = chain.walletClients
  shoal = await deployShoal({
    walletClient: admin!,
    publicClient: chain.publicClient,
    settler: settler!.account.address,
  })
  dir = await mkdtemp(join(tmpdir(), 'shoal-settle-'))
}, 120_000)

afterAll(async () => {
  await chain?.close()
  if (dir !== undefined) await rm(dir, { recursive: true, force: true })
})

async function fund(publisher: PrivateKeyAccount, amount: bigint) {
  const [admin] = chain.walletClients
  await fundEscrow({
    walletClient: admin!,
    publicClient: chain.publicClient,
    deployment: shoal,
    publisher: publisher.address,
    amount,
  })
}

/** The contracts as the settlement sees them, through the settler's wallet. */
const settlementChain = () =>
  createViemSettlementChain({
    publicClient: chain.publicClient,
    walletClient: chain.walletClients[1]!,
    distributor: shoal.distributor,
    escrow: shoal.escrow,
  })

const balanceOf = (a: Address) =>
  chain.publicClient.readContract({
    address: shoal.token,
    abi: shoalTokenAbi,
    functionName: 'balanceOf',
    args: [a],
  })
const escrowOf = (a: Address) =>
  chain.publicClient.readContract({
    address: shoal.escrow,
    abi: publisherEscrowAbi,
    functionName: 'balanceOf',
    args: [a],
  })

interface SimNode {
  key: PrivateKeyAccount
  payout: Address
}

async function addNode(tracker: Tracker, key: PrivateKeyAccount, payout: Address, capacity = 12_500_000) {
  const record = await signNodeRecord(key, {
    node: key.address,
    peerId: randomPeerId(),
    multiaddrs: [],
    httpUrl: `https://${key.address.slice(2, 14).toLowerCase()}.example/`,
    region: 'eu-west',
    capacity,
    payout,
    timestamp: 1_700_000_000,
  })
  await tracker.store.putNode({
    node: {
      address: key.address,
      peerId: record.message.peerId,
      httpUrl: record.message.httpUrl,
      region: 'eu-west',
      capacity,
      recordTimestamp: record.message.timestamp,
      record: encodeNodeRecord(record),
      updatedAt: 1,
    },
    session: { id: '0'.repeat(32), key: new Uint8Array(32), createdAt: 1 },
  })
}

async function batchBody(
  node: PrivateKeyAccount,
  epoch: number,
  receipts: Signed<BandwidthReceipt>[],
  now: number,
) {
  const batch = await signReceiptBatch(node, {
    node: node.address,
    epoch,
    count: receipts.length,
    receiptsHash: receiptsHash(receipts.map((r) => hashBandwidthReceipt(r.message))),
    timestamp: Math.floor(now / 1000),
  })
  return {
    batch: JSON.parse(encodeReceiptBatch(batch)),
    receipts: receipts.map((r) => JSON.parse(encodeBandwidthReceipt(r))),
  }
}

/** A store holding epoch `epoch` as the settler leaves it after building: `n` payout addresses, one funded publisher. */
async function builtEpoch(file: string, epoch: number, n: number) {
  const publisher = privateKeyToAccount(generatePrivateKey())
  await fund(publisher, 10n ** 18n)
  const payouts = Array.from({ length: n }, () => privateKeyToAccount(generatePrivateKey()).address)
  const tree = buildPayoutTree(payouts.map((account, i) => ({ account, amount: BigInt(i + 1) * 1000n })))
  const store = createSqliteStore({ path: join(dir, file) })
  await store.open()
  await store.putEpochSettlement(
    {
      epoch,
      state: 'built',
      root: tree.root,
      total: tree.total.toString(),
      debits: JSON.stringify({ publishers: [publisher.address], amounts: [tree.total.toString()] }),
      tree: JSON.stringify({ entries: tree.entries.map((e) => [e.account, e.amount.toString()]) }),
      report: '{}',
      builtAt: 1,
      updatedAt: 1,
    },
    [],
    [],
  )
  return { store, tree, payouts }
}

function settlerOver(store: TrackerStore, c: SettlementChain, coverChunk?: number) {
  return createSettler(
    {
      epochSeconds: EPOCH_SECONDS,
      submitWindowSeconds: 60,
      defaultPricePerGiB: PRICE,
      maxClientFanout: 32,
      intervalMs: 0,
      ...(coverChunk !== undefined ? { coverChunk } : {}),
    },
    { store, verifier: createReceiptVerifier({ threads: 1 }), clock: () => Date.now(), chain: c },
  )
}

describe('settlement on a real chain', () => {
  // Each test's tracker has its own store, and a distributor serves one settlement store
  // (it remembers what each leaf index claimed): every test starts from the freshly
  // deployed contracts.
  let deployed: Hex
  beforeAll(async () => {
    deployed = await chain.testClient.snapshot()
  })
  beforeEach(async () => {
    await chain.testClient.revert({ id: deployed })
    deployed = await chain.testClient.snapshot()
  })

  it('20 honest nodes, 5 attackers, 3 epochs: honest paid in full, fabricated bytes paid nothing, claims once', async () => {
    const epoch0 = 500_000
    let now = epoch0 * EPOCH_SECONDS * 1000
    const tracker = createTracker(
      {
        port: 0,
        submitWindowSeconds: 600,
        epochSeconds: EPOCH_SECONDS,
        settleIntervalMs: 0,
        auditIntervalMs: 0,
        verifyThreads: 2,
      },
      {
        store: createSqliteStore({ path: join(dir, 'sim.db') }),
        account: privateKeyToAccount(generatePrivateKey()),
        clock: () => now,
        chain: settlementChain(),
      },
    )
    await tracker.start()
    try {
      const publishers = [
        privateKeyToAccount(generatePrivateKey()),
        privateKeyToAccount(generatePrivateKey()),
      ]
      for (const p of publishers) await fund(p, 1000n * 10n ** 18n)
      const escrowBefore = (await escrowOf(publishers[0]!.address)) + (await escrowOf(publishers[1]!.address))

      const honest: SimNode[] = []
      for (let i = 0; i < 20; i++) {
        const key = privateKeyToAccount(generatePrivateKey())
        const payout = privateKeyToAccount(generatePrivateKey()).address
        honest.push({ key, payout })
        await addNode(tracker, key, payout)
      }
      // attackers: a self-dealing pair, an inflater, a replayer, a Sybil farmer, a garbage server
      const attackers: SimNode[] = []
      for (let i = 0; i < 5; i++) {
        const key = privateKeyToAccount(generatePrivateKey())
        attackers.push({ key, payout: privateKeyToAccount(generatePrivateKey()).address })
        await addNode(tracker, key, attackers[i]!.payout)
      }
      const [selfDealer, inflater, replayer, sybil, garbage] = attackers as [
        SimNode,
        SimNode,
        SimNode,
        SimNode,
        SimNode,
      ]
      const partner = privateKeyToAccount(generatePrivateKey()) // the self-dealer's other node
      await addNode(tracker, partner, selfDealer.payout)

      const clients = Array.from({ length: 30 }, () => privateKeyToAccount(generatePrivateKey()))
      const expectedHonest = new Map<string, bigint>() // payout → amount
      const books = new Map<string, Signed<BandwidthReceipt>[]>() // node → receipts of the epoch
      const push = (node: string, r: Signed<BandwidthReceipt>) => {
        const list = books.get(node) ?? []
        list.push(r)
        books.set(node, list)
      }
      const replayStash: Signed<BandwidthReceipt>[] = []
      let replayerEarned = 0n

      const firstIndex = new Map<string, number>()
      for (let e = 0; e < 3; e++) {
        const epoch = epoch0 + e
        now = (epoch * EPOCH_SECONDS + 10) * 1000
        books.clear()
        for (const [ci, client] of clients.entries()) {
          const publisher = publishers[ci % 2]!
          const issued = await tracker.tickets.issue({ client: client.address, publisher: publisher.address })
          // three honest nodes, plus (for some clients) the inflater and the replayer
          const served = [honest[(ci + e) % 20]!, honest[(ci + 7) % 20]!, honest[(ci + 13) % 20]!]
          if (ci % 5 === 0) served.push(inflater, replayer)
          await tracker.store.addSelections(
            served.map((n) => ({ ticket: issued.id, node: n.key.address, at: now })),
          )
          for (const [k, n] of served.entries()) {
            const session = `0x${Buffer.from(generatePrivateKey().slice(2), 'hex').toString('hex')}` as Hex
            const bytes = (1 + ((ci + k + e) % 4)) * 3 * MiB
            const base = {
              node: n.key.address,
              client: client.address,
              session,
              epoch,
              ticket: issued.id,
              kind: RECEIPT_KIND.content,
            } satisfies Omit<BandwidthReceipt, 'bytes'>
            // cumulative receipts: the node keeps the latest, but submits the earlier one too
            const early = await signBandwidthReceipt(client, { ...base, bytes: MiB })
            const last = await signBandwidthReceipt(client, { ...base, bytes })
            if (n === inflater) {
              push(n.key.address, { ...last, message: { ...last.message, bytes: bytes * 50 } }) // forged count
            } else if (n === replayer) {
              // delivers real bytes this epoch (paid), and replays them next epoch (not paid)
              push(n.key.address, last)
              replayStash.push(last)
              replayerEarned += (BigInt(bytes) * PRICE) / GIB
            } else {
              push(n.key.address, early)
              push(n.key.address, last)
              expectedHonest.set(
                n.payout,
                (expectedHonest.get(n.payout) ?? 0n) + (BigInt(bytes) * PRICE) / GIB,
              )
            }
          }
        }
        // self-dealing: the partner node acts as the client of the self-dealer, with a real ticket
        const selfTicket = await tracker.tickets.issue({
          client: partner.address,
          publisher: publishers[0]!.address,
        })
        await tracker.store.addSelections([{ ticket: selfTicket.id, node: selfDealer.key.address, at: now }])
        push(
          selfDealer.key.address,
          await signBandwidthReceipt(partner, {
            node: selfDealer.key.address,
            client: partner.address,
            session: `0x${'5e'.repeat(32)}`,
            bytes: 500 * MiB,
            epoch,
            ticket: selfTicket.id,
            kind: 0,
          }),
        )
        // Sybil clients: real tickets, but the tracker never selected the sybil node for them
        for (let s = 0; s < 10; s++) {
          const c = privateKeyToAccount(generatePrivateKey())
          const t = await tracker.tickets.issue({ client: c.address, publisher: publishers[1]!.address })
          push(
            sybil.key.address,
            await signBandwidthReceipt(c, {
              node: sybil.key.address,
              client: c.address,
              session: `0x${String(s).padStart(2, '0').repeat(32)}`,
              bytes: 100 * MiB,
              epoch,
              ticket: t.id,
              kind: 0,
            }),
          )
        }
        // the garbage server: clients verified nothing, so it signs "receipts" itself with a fabricated ticket
        push(
          garbage.key.address,
          await signBandwidthReceipt(garbage.key, {
            node: garbage.key.address,
            client: garbage.key.address,
            session: `0x${'9a'.repeat(32)}`,
            bytes: 900 * MiB,
            epoch,
            ticket: `0x${'77'.repeat(32)}`,
            kind: 0,
          }),
        )
        // the replayer also resubmits last epoch's receipts
        if (e > 0)
          for (const r of replayStash.filter((r) => r.message.epoch === epoch - 1))
            push(replayer.key.address, r)

        // epoch over: each node submits its book
        now = ((epoch + 1) * EPOCH_SECONDS + 30) * 1000
        for (const n of [...honest, ...attackers]) {
          const receipts = books.get(n.key.address) ?? []
          if (receipts.length === 0) continue
          const body = await batchBody(n.key, epoch, receipts, now)
          const first = await tracker.receipts.submit(body)
          expect(first.created).toBe(true)
          expect((await tracker.receipts.submit(body)).created).toBe(false) // idempotent
        }
        // a submission to the open epoch is refused
        await expect(
          tracker.receipts.submit(await batchBody(honest[0]!.key, epoch + 1, [], now)),
        ).rejects.toMatchObject({ code: 'SHOAL_ERR_CONFLICT' })
        now = ((epoch + 1) * EPOCH_SECONDS + 601) * 1000
        const settled = await tracker.settler.settleDue()
        expect(settled.map((s) => [s.epoch, s.state])).toEqual([[epoch, 'confirmed']])
        // settling again changes nothing
        expect((await tracker.settler.settle(epoch)).state).toBe('confirmed')

        // a few honest nodes claim after each epoch (cumulative claims)
        const view = await tracker.settler.view(epoch)
        expect((view.report as { byReason: Record<string, number> }).byReason).toMatchObject({
          'bad-signature': 6,
          'self-dealing': 1,
          'not-selected': 10,
          superseded: 90,
        })
        for (const n of honest.slice(0, 5)) {
          const p = (await tracker.settler.proof(epoch, n.payout)) as {
            index: number
            amount: string
            proof: Hex[]
          }
          // an account keeps its leaf index from epoch to epoch (the contract keys claims by it)
          expect(p.index).toBe(firstIndex.get(n.payout) ?? p.index)
          firstIndex.set(n.payout, p.index)
          await wait(
            await chain.walletClients[0]!.writeContract({
              address: shoal.distributor,
              abi: rewardDistributorAbi,
              functionName: 'claim',
              args: [BigInt(p.index), n.payout, BigInt(p.amount), p.proof],
            }),
          )
        }
      }

      // after 3 epochs: every payout address claims its final cumulative amount, once
      const last = epoch0 + 2
      expect(firstIndex.size).toBe(5)
      let honestPaid = 0n
      let expectedTotal = 0n
      for (const n of honest) {
        const p = (await tracker.settler.proof(last, n.payout)) as {
          index: number
          amount: string
          proof: Hex[]
        }
        const before = await balanceOf(n.payout)
        if (before < BigInt(p.amount)) {
          await wait(
            await chain.walletClients[0]!.writeContract({
              address: shoal.distributor,
              abi: rewardDistributorAbi,
              functionName: 'claim',
              args: [BigInt(p.index), n.payout, BigInt(p.amount), p.proof],
            }),
          )
        }
        await expect(
          chain.walletClients[0]!.writeContract({
            address: shoal.distributor,
            abi: rewardDistributorAbi,
            functionName: 'claim',
            args: [BigInt(p.index), n.payout, BigInt(p.amount), p.proof],
          }),
        ).rejects.toThrow()
        const got = await balanceOf(n.payout)
        expect(got).toBe(BigInt(p.amount))
        honestPaid += got
        expectedTotal += expectedHonest.get(n.payout) ?? 0n
      }
      expect(honestPaid * 100n).toBeGreaterThanOrEqual(expectedTotal * 99n)
      expect(honestPaid).toBeLessThanOrEqual(expectedTotal)
      // fabricated bytes: no attacker (or the self-dealer's shared payout) has a leaf
      const replayed = (await tracker.settler.proof(last, replayer.payout)) as { amount: string }
      expect(BigInt(replayed.amount)).toBe(replayerEarned)
      for (const a of [selfDealer, inflater, sybil, garbage].map((a) => a.payout)) {
        await expect(tracker.settler.proof(last, a)).rejects.toMatchObject({ code: 'SHOAL_ERR_NOT_FOUND' })
        expect(await balanceOf(a)).toBe(0n)
      }
      // money adds up: the escrow debits are exactly what the nodes received
      const escrowAfter = (await escrowOf(publishers[0]!.address)) + (await escrowOf(publishers[1]!.address))
      expect(escrowBefore - escrowAfter).toBe(honestPaid + replayerEarned)
      // the HTTP view serves the same proof
      const served = await fetchPayoutProof({
        trackerUrl: tracker.url,
        epoch: last,
        address: honest[3]!.payout,
      })
      expect(served).toEqual(await tracker.settler.proof(last, honest[3]!.payout))
      expect(served.account).toBe(getAddress(honest[3]!.payout))
      await expect(
        fetchPayoutProof({ trackerUrl: tracker.url, epoch: last, address: garbage.payout }),
      ).rejects.toMatchObject({ code: 'SHOAL_ERR_NOT_FOUND' })
      expect((await fetch(`${tracker.url}/v1/epochs/${last}`)).status).toBe(200)
      expect((await fetch(`${tracker.url}/v1/epochs/1`)).status).toBe(404)
    } finally {
      await tracker.stop()
    }
  }, 300_000)

  it('a crash after postRoot was sent never pays twice: the restarted settler finds the root on chain', async () => {
    const epoch = 600_000
    let now = (epoch * EPOCH_SECONDS + 10) * 1000
    const real = settlementChain()
    let posts = 0
    const crashing: SettlementChain = {
      ...real,
      async postRoot(args) {
        posts++
        await wait(await real.postRoot(args))
        throw new Error('crash: the process died before recording the transaction')
      },
    }
    const counting: SettlementChain = {
      ...real,
      postRoot(args) {
        posts++
        return real.postRoot(args)
      },
    }
    const path = join(dir, 'crash.db')
    const account = privateKeyToAccount(generatePrivateKey())
    const make = (c: SettlementChain) =>
      createTracker(
        {
          port: 0,
          epochSeconds: EPOCH_SECONDS,
          submitWindowSeconds: 60,
          settleIntervalMs: 0,
          auditIntervalMs: 0,
          verifyThreads: 1,
        },
        { store: createSqliteStore({ path }), account, clock: () => now, chain: c },
      )
    const publisher = privateKeyToAccount(generatePrivateKey())
    await fund(publisher, 10n ** 18n)
    const escrowBefore = await escrowOf(publisher.address)
    const first = make(crashing)
    await first.start()
    const n = privateKeyToAccount(generatePrivateKey())
    const nodePayout = privateKeyToAccount(generatePrivateKey()).address
    await addNode(first, n, nodePayout)
    const c = privateKeyToAccount(generatePrivateKey())
    const t = await first.tickets.issue({ client: c.address, publisher: publisher.address })
    await first.store.addSelections([{ ticket: t.id, node: n.address, at: now }])
    const r = await signBandwidthReceipt(c, {
      node: n.address,
      client: c.address,
      session: `0x${'ab'.repeat(32)}`,
      bytes: 2 ** 29, // half the default ticket budget (1 GiB)
      epoch,
      ticket: t.id,
      kind: 0,
    })
    now = ((epoch + 1) * EPOCH_SECONDS + 5) * 1000
    await first.receipts.submit(await batchBody(n, epoch, [r], now))
    now = ((epoch + 1) * EPOCH_SECONDS + 61) * 1000
    await expect(first.settler.settle(epoch)).rejects.toThrow(/crash/)
    expect((await first.store.getEpoch(epoch))?.state).toBe('built')
    await first.stop()

    const second = make(counting)
    await second.start()
    try {
      const row = await second.settler.settle(epoch)
      expect(row.state).toBe('confirmed')
      expect(posts).toBe(1)
      expect(escrowBefore - (await escrowOf(publisher.address))).toBe(PRICE / 2n)
      // a later restart, and the settlement loop, leave it alone
      expect(await second.settler.settleDue()).toEqual([])
      expect(posts).toBe(1)
      // a receipt batch for the settled epoch is refused
      await expect(second.receipts.submit(await batchBody(n, epoch, [], now))).rejects.toMatchObject({
        code: 'SHOAL_ERR_STALE',
      })
    } finally {
      await second.stop()
    }
  }, 120_000)
  it('a root with more new accounts than one transaction covers: cover in chunks, resume after a crash, then claim', async () => {
    const epoch = 700_000
    const real = settlementChain()
    const covers: number[] = []
    const crashing: SettlementChain = {
      ...real,
      async cover(accounts) {
        covers.push(accounts)
        const hash = await real.cover(accounts)
        if (covers.length === 2) {
          await wait(hash)
          throw new Error('crash: the process died after its second cover')
        }
        return hash
      },
    }
    const counting: SettlementChain = {
      ...real,
      cover(accounts) {
        covers.push(accounts)
        return real.cover(accounts)
      },
    }
    // 7 payout addresses, built as the settler builds them (stored `built`), covered 2 at a time
    const { store, tree, payouts } = await builtEpoch('cover.db', epoch, 7)
    const make = (c: SettlementChain) => settlerOver(store, c, 2)
    const distributorRead = <F extends 'accounts' | 'merkleRoot'>(functionName: F) =>
      chain.publicClient.readContract({ address: shoal.distributor, abi: rewardDistributorAbi, functionName })
    try {
      const first = make(crashing)
      await expect(first.settle(epoch)).rejects.toThrow(/crash/)
      await first.stop()
      expect(await distributorRead('accounts')).toBe(4n)
      expect(await distributorRead('merkleRoot')).toBe(`0x${'00'.repeat(32)}`)

      const second = make(counting)
      expect((await second.settle(epoch)).state).toBe('confirmed')
      await second.stop()
      // 2, 4 (crash), then the restart goes on from 4: 6; postRoot covers the 7th
      expect(covers).toEqual([2, 4, 6])
      expect(await distributorRead('accounts')).toBe(7n)
      expect(await distributorRead('merkleRoot')).toBe(tree.root)
      // the last index (alone in its word) and its word-mate's neighbours all claim once
      for (const i of [6, 5, 0]) {
        const account = payouts[i]!
        const args = [BigInt(i), account, tree.amountOf(account)!, tree.proofFor(account)] as const
        await wait(
          await chain.walletClients[0]!.writeContract({
            address: shoal.distributor,
            abi: rewardDistributorAbi,
            functionName: 'claim',
            args,
          }),
        )
        expect(await balanceOf(account)).toBe(BigInt(i + 1) * 1000n)
        await expect(
          chain.walletClients[0]!.writeContract({
            address: shoal.distributor,
            abi: rewardDistributorAbi,
            functionName: 'claim',
            args,
          }),
        ).rejects.toThrow(/NothingToClaim/)
      }
    } finally {
      await store.close()
    }
  }, 120_000)
  it('refuses to post a tree with fewer leaf indexes than the distributor covers (another store settled there)', async () => {
    await wait(await settlementChain().cover(5))
    const { store } = await builtEpoch('fewer.db', 800_000, 3)
    const settler = settlerOver(store, settlementChain())
    try {
      await expect(settler.settle(800_000)).rejects.toMatchObject({
        code: 'SHOAL_ERR_CONFLICT',
        message: expect.stringMatching(/covers 5 leaf indexes .* has 3/),
      })
      expect((await store.getEpoch(800_000))?.state).toBe('built')
    } finally {
      await settler.stop()
      await store.close()
    }
  })
})
