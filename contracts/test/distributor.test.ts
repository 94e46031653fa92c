import { StandardMerkleTree } from '@openzeppelin/merkle-tree'
import { type Address, type Hex, parseEventLogs } from 'viem'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import {
  buildPayoutTree,
  deployShoal,
  MAX_PAYOUT_AMOUNT,
  PAYOUT_LEAF_ENCODING,
  type PayoutTree,
  ROLES,
  rewardDistributorAbi,
  rewardDistributorBytecode,
} from '../src/index.ts'
import { addr, createFixture, expectRevert, type Fixture, fundPublishers, mined, ONE } from './fixture.ts'
import { lyingEscrowAbi, lyingEscrowBytecode } from './generated/LyingEscrow.ts'

/** The leaf index of `account` in `tree` (0 for an account without a leaf, to send a bad claim). */
const ix = (tree: PayoutTree, account: Address): bigint => BigInt(tree.indexOf(account) ?? 0)

describe('RewardDistributor', () => {
  let f: Fixture
  let pubs: Address[]
  let nodes: Address[]
  beforeAll(async () => {
    f = await createFixture()
    pubs = f.publishers.map(addr)
    nodes = f.nodes.map(addr)
  })
  afterAll(() => f.close())
  beforeEach(async () => {
    await f.reset()
    await fundPublishers(f, 100n * ONE)
  })

  /** Epoch 1: node0 earned 3, node1 earned 2; publisher0 pays 4, publisher1 pays 1. */
  async function postEpoch1(): Promise<PayoutTree> {
    const tree = buildPayoutTree([
      { account: nodes[0]!, amount: 3n * ONE },
      { account: nodes[1]!, amount: 2n * ONE },
    ])
    await mined(
      f,
      f
        .distributor(f.settler)
        .write.postRoot([1n, tree.root, 5n * ONE, BigInt(tree.accounts), pubs, [4n * ONE, 1n * ONE]]),
    )
    return tree
  }

  describe('roles', () => {
    it('deployShoal wires every role and the ROLES constants match the contracts', async () => {
      const d = f.distributor()
      expect(await d.read.SETTLER_ROLE()).toBe(ROLES.SETTLER)
      expect(await d.read.PAUSER_ROLE()).toBe(ROLES.PAUSER)
      expect(await f.escrow().read.DEBITER_ROLE()).toBe(ROLES.DEBITER)
      expect(await f.token().read.MINTER_ROLE()).toBe(ROLES.MINTER)
      expect(await d.read.DEFAULT_ADMIN_ROLE()).toBe(ROLES.DEFAULT_ADMIN)
      const admin = addr(f.admin)
      expect(await f.escrow().read.hasRole([ROLES.DEBITER, f.shoal.distributor])).toBe(true)
      expect(await d.read.hasRole([ROLES.SETTLER, addr(f.settler)])).toBe(true)
      expect(await d.read.hasRole([ROLES.SETTLER, admin])).toBe(false)
      expect(await d.read.hasRole([ROLES.PAUSER, admin])).toBe(true)
      expect(await f.token().read.hasRole([ROLES.MINTER, admin])).toBe(true)
      for (const c of [f.token(), f.escrow(), d])
        expect(await c.read.hasRole([ROLES.DEFAULT_ADMIN, admin])).toBe(true)
      expect(await d.read.token()).toBe(f.shoal.token)
      expect(await d.read.escrow()).toBe(f.shoal.escrow)
    })

    it('deployShoal hands admin over when admin is not the deployer', async () => {
      const newAdmin = addr(f.stranger)
      const deployer = addr(f.admin)
      const shoal = await deployShoal({
        walletClient: f.admin,
        publicClient: f.chain.publicClient,
        admin: newAdmin,
      })
      const read = (address: Address, role: `0x${string}`, who: Address) =>
        f.chain.publicClient.readContract({
          address,
          abi: rewardDistributorAbi,
          functionName: 'hasRole',
          args: [role, who],
        })
      for (const address of [shoal.token, shoal.escrow, shoal.distributor]) {
        expect(await read(address, ROLES.DEFAULT_ADMIN, newAdmin)).toBe(true)
        expect(await read(address, ROLES.DEFAULT_ADMIN, deployer)).toBe(false)
      }
      expect(await read(shoal.distributor, ROLES.SETTLER, newAdmin)).toBe(true)
      expect(await read(shoal.distributor, ROLES.PAUSER, newAdmin)).toBe(true)
      expect(await read(shoal.token, ROLES.MINTER, newAdmin)).toBe(true)
      expect(await read(shoal.escrow, ROLES.DEBITER, shoal.distributor)).toBe(true)
    })

    it('deployShoal validates its options with typed errors', async () => {
      const base = { walletClient: f.admin, publicClient: f.chain.publicClient }
      await expect(deployShoal({ ...base, admin: '0x123' as Address })).rejects.toMatchObject({
        code: 'SHOAL_ERR_INVALID_ARGUMENT',
      })
      await expect(deployShoal({ ...base, noticePeriodSeconds: 0 })).rejects.toMatchObject({
        code: 'SHOAL_ERR_INVALID_ARGUMENT',
      })
      await expect(deployShoal({ ...base, signal: AbortSignal.abort() })).rejects.toMatchObject({
        code: 'SHOAL_ERR_ABORTED',
      })
    })

    it('refuses an escrow whose token is not the payout token', async () => {
      const other = await deployShoal({ walletClient: f.admin, publicClient: f.chain.publicClient })
      await expectRevert(
        f.admin.deployContract({
          abi: rewardDistributorAbi,
          bytecode: rewardDistributorBytecode,
          args: [addr(f.admin), f.shoal.token, other.escrow],
        }),
        'TokenMismatch',
      )
    })
  })

  describe('postRoot', () => {
    it('debits the publishers, funds the distributor and records the root', async () => {
      const tree = buildPayoutTree([
        { account: nodes[0]!, amount: 3n * ONE },
        { account: nodes[1]!, amount: 2n * ONE },
      ])
      const receipt = await mined(
        f,
        f
          .distributor(f.settler)
          .write.postRoot([1n, tree.root, 5n * ONE, BigInt(tree.accounts), pubs, [4n * ONE, 1n * ONE]]),
      )
      const d = f.distributor()
      expect(await d.read.merkleRoot()).toBe(tree.root)
      expect(await d.read.epoch()).toBe(1n)
      expect(await d.read.totalFunded()).toBe(5n * ONE)
      expect(await d.read.totalClaimed()).toBe(0n)
      expect(await f.token().read.balanceOf([f.shoal.distributor])).toBe(5n * ONE)
      expect(await f.escrow().read.balanceOf([pubs[0]!])).toBe(96n * ONE)
      expect(await f.escrow().read.balanceOf([pubs[1]!])).toBe(99n * ONE)
      const [posted] = parseEventLogs({
        abi: rewardDistributorAbi,
        logs: receipt.logs,
        eventName: 'RootPosted',
      })
      expect(posted?.args).toEqual({
        epoch: 1n,
        root: tree.root,
        total: 5n * ONE,
        totalFunded: 5n * ONE,
        accounts: 2n,
      })
      expect(await d.read.accounts()).toBe(2n)
    })

    it('refuses a caller without SETTLER_ROLE', async () => {
      const tree = buildPayoutTree([{ account: nodes[0]!, amount: ONE }])
      const args = await expectRevert(
        f
          .distributor(f.stranger)
          .write.postRoot([1n, tree.root, ONE, BigInt(tree.accounts), [pubs[0]!], [ONE]]),
        'AccessControlUnauthorizedAccount',
      )
      expect(args).toEqual([addr(f.stranger), ROLES.SETTLER])
    })

    it('requires strictly increasing epochs', async () => {
      await postEpoch1()
      const tree = buildPayoutTree([{ account: nodes[0]!, amount: 4n * ONE }])
      const d = f.distributor(f.settler)
      expect(
        await expectRevert(
          d.write.postRoot([1n, tree.root, ONE, BigInt(tree.accounts), [pubs[0]!], [ONE]]),
          'EpochNotIncreasing',
        ),
      ).toEqual([1n, 1n])
      await expectRevert(
        d.write.postRoot([0n, tree.root, ONE, BigInt(tree.accounts), [pubs[0]!], [ONE]]),
        'EpochNotIncreasing',
      )
      await mined(f, d.write.postRoot([7n, tree.root, ONE, 2n, [pubs[0]!], [ONE]]))
      expect(await f.distributor().read.epoch()).toBe(7n)
    })

    it('accepts epoch 0 as the first epoch', async () => {
      const tree = buildPayoutTree([{ account: nodes[0]!, amount: ONE }])
      await mined(
        f,
        f
          .distributor(f.settler)
          .write.postRoot([0n, tree.root, ONE, BigInt(tree.accounts), [pubs[0]!], [ONE]]),
      )
      await expectRevert(
        f
          .distributor(f.settler)
          .write.postRoot([0n, tree.root, ONE, BigInt(tree.accounts), [pubs[0]!], [ONE]]),
        'EpochNotIncreasing',
      )
    })

    it('refuses a zero root', async () => {
      await expectRevert(
        f.distributor(f.settler).write.postRoot([1n, `0x${'00'.repeat(32)}`, ONE, 1n, [pubs[0]!], [ONE]]),
        'ZeroRoot',
      )
    })

    it('checks that total is the sum of the amounts and the arrays match', async () => {
      const tree = buildPayoutTree([{ account: nodes[0]!, amount: 3n * ONE }])
      const d = f.distributor(f.settler)
      expect(
        await expectRevert(
          d.write.postRoot([1n, tree.root, 3n * ONE, BigInt(tree.accounts), pubs, [2n * ONE, 2n * ONE]]),
          'TotalMismatch',
        ),
      ).toEqual([3n * ONE, 4n * ONE])
      await expectRevert(
        d.write.postRoot([1n, tree.root, 3n * ONE, BigInt(tree.accounts), pubs, [3n * ONE]]),
        'LengthMismatch',
      )
    })

    it('no root without funds: a publisher short of escrow balance stops the post', async () => {
      const tree = buildPayoutTree([{ account: nodes[0]!, amount: 101n * ONE }])
      const args = await expectRevert(
        f
          .distributor(f.settler)
          .write.postRoot([1n, tree.root, 101n * ONE, BigInt(tree.accounts), [pubs[0]!], [101n * ONE]]),
        'InsufficientBalance',
      )
      expect(args).toEqual([pubs[0]!, 100n * ONE, 101n * ONE])
      expect(await f.distributor().read.merkleRoot()).toBe(`0x${'00'.repeat(32)}`)
      expect(await f.escrow().read.balanceOf([pubs[0]!])).toBe(100n * ONE)
    })

    it('no root without funds: refuses a root when the escrow sends less than it claims', async () => {
      const lying = await mined(
        f,
        f.admin.deployContract({ abi: lyingEscrowAbi, bytecode: lyingEscrowBytecode, args: [f.shoal.token] }),
      )
      const deployed = await mined(
        f,
        f.admin.deployContract({
          abi: rewardDistributorAbi,
          bytecode: rewardDistributorBytecode,
          args: [addr(f.admin), f.shoal.token, lying.contractAddress!],
        }),
      )
      const address = deployed.contractAddress!
      const write = (functionName: 'grantRole', args: readonly [`0x${string}`, Address]) =>
        f.admin.writeContract({ address, abi: rewardDistributorAbi, functionName, args })
      await mined(f, write('grantRole', [ROLES.SETTLER, addr(f.admin)]))
      const tree = buildPayoutTree([{ account: nodes[0]!, amount: ONE }])
      const args = await expectRevert(
        f.admin.writeContract({
          address,
          abi: rewardDistributorAbi,
          functionName: 'postRoot',
          args: [1n, tree.root, ONE, 1n, [pubs[0]!], [ONE]],
        }),
        'Underfunded',
      )
      expect(args).toEqual([ONE, 0n])
    })

    it('an epoch with no new money may post a root over what is already funded', async () => {
      await postEpoch1()
      // Same money, redistributed (e.g. a corrected epoch): total 0, nobody debited.
      const tree = buildPayoutTree([
        { account: nodes[0]!, amount: 1n * ONE },
        { account: nodes[1]!, amount: 4n * ONE },
      ])
      await mined(
        f,
        f.distributor(f.settler).write.postRoot([2n, tree.root, 0n, BigInt(tree.accounts), [], []]),
      )
      expect(await f.distributor().read.totalFunded()).toBe(5n * ONE)
    })
  })

  describe('claim', () => {
    it('pays the leaf to its account, whoever submits', async () => {
      const tree = await postEpoch1()
      const node = nodes[0]!
      const receipt = await mined(
        f,
        f.distributor(f.stranger).write.claim([ix(tree, node), node, 3n * ONE, tree.proofFor(node)]),
      )
      expect(await f.token().read.balanceOf([node])).toBe(3n * ONE)
      expect(await f.token().read.balanceOf([addr(f.stranger)])).toBe(0n)
      expect(await f.distributor().read.claimedOf([0n])).toBe(3n * ONE)
      expect(await f.distributor().read.totalClaimed()).toBe(3n * ONE)
      expect(await f.token().read.balanceOf([f.shoal.distributor])).toBe(2n * ONE)
      const [claimed] = parseEventLogs({
        abi: rewardDistributorAbi,
        logs: receipt.logs,
        eventName: 'Claimed',
      })
      expect(claimed?.args).toEqual({ account: node, amount: 3n * ONE, cumulativeAmount: 3n * ONE })
    })

    it('refuses a second claim of the same leaf (no double claim)', async () => {
      const tree = await postEpoch1()
      const node = nodes[0]!
      await mined(
        f,
        f.distributor(f.nodes[0]).write.claim([ix(tree, node), node, 3n * ONE, tree.proofFor(node)]),
      )
      const args = await expectRevert(
        f.distributor(f.nodes[0]).write.claim([ix(tree, node), node, 3n * ONE, tree.proofFor(node)]),
        'NothingToClaim',
      )
      expect(args).toEqual([node, 3n * ONE, 3n * ONE])
      expect(await f.token().read.balanceOf([node])).toBe(3n * ONE)
    })

    it('refuses a wrong proof', async () => {
      const tree = await postEpoch1()
      const d = f.distributor(f.nodes[0])
      // Someone else's proof, a tampered proof, an empty proof, and another account.
      await expectRevert(
        d.write.claim([ix(tree, nodes[0]!), nodes[0]!, 3n * ONE, tree.proofFor(nodes[1]!)]),
        'InvalidProof',
      )
      const tampered = tree.proofFor(nodes[0]!).map((h) => `0x${h.slice(2, -1)}0` as `0x${string}`)
      await expectRevert(d.write.claim([0n, nodes[0]!, 3n * ONE, tampered]), 'InvalidProof')
      await expectRevert(d.write.claim([0n, nodes[0]!, 3n * ONE, []]), 'InvalidProof')
      await expectRevert(
        d.write.claim([ix(tree, nodes[2]!), nodes[2]!, 3n * ONE, tree.proofFor(nodes[0]!)]),
        'InvalidProof',
      )
    })

    it('refuses a claim above the leaf', async () => {
      const tree = await postEpoch1()
      await expectRevert(
        f
          .distributor(f.nodes[0])
          .write.claim([ix(tree, nodes[0]!), nodes[0]!, 3n * ONE + 1n, tree.proofFor(nodes[0]!)]),
        'InvalidProof',
      )
    })

    it('refuses claims before any root', async () => {
      await expectRevert(f.distributor(f.nodes[0]).write.claim([0n, nodes[0]!, ONE, []]), 'InvalidProof')
    })

    it('pays only the new part of a cumulative amount in a later epoch', async () => {
      const tree1 = await postEpoch1()
      const node = nodes[0]!
      await mined(
        f,
        f.distributor(f.nodes[0]).write.claim([ix(tree1, node), node, 3n * ONE, tree1.proofFor(node)]),
      )
      const tree2 = buildPayoutTree([
        { account: node, amount: 10n * ONE },
        { account: nodes[1]!, amount: 2n * ONE },
      ])
      await mined(
        f,
        f
          .distributor(f.settler)
          .write.postRoot([2n, tree2.root, 7n * ONE, BigInt(tree2.accounts), [pubs[1]!], [7n * ONE]]),
      )
      // The epoch-1 leaf is gone with its root.
      await expectRevert(
        f.distributor(f.nodes[0]).write.claim([ix(tree1, node), node, 3n * ONE, tree1.proofFor(node)]),
        'InvalidProof',
      )
      await mined(
        f,
        f.distributor(f.nodes[0]).write.claim([ix(tree2, node), node, 10n * ONE, tree2.proofFor(node)]),
      )
      expect(await f.token().read.balanceOf([node])).toBe(10n * ONE)
      // node1 never claimed epoch 1: its cumulative leaf pays everything at once.
      await mined(
        f,
        f
          .distributor(f.stranger)
          .write.claim([ix(tree2, nodes[1]!), nodes[1]!, 2n * ONE, tree2.proofFor(nodes[1]!)]),
      )
      expect(await f.token().read.balanceOf([nodes[1]!])).toBe(2n * ONE)
      expect(await f.distributor().read.totalClaimed()).toBe(12n * ONE)
      expect(await f.token().read.balanceOf([f.shoal.distributor])).toBe(0n)
    })

    it('never overspends: a root whose leaves exceed the funding pays out no more than was funded', async () => {
      // The settler declares 5 but its leaves sum to 9 (a buggy or malicious settlement).
      const tree = buildPayoutTree([
        { account: nodes[0]!, amount: 4n * ONE },
        { account: nodes[1]!, amount: 4n * ONE },
        { account: nodes[2]!, amount: 1n * ONE },
      ])
      await mined(
        f,
        f
          .distributor(f.settler)
          .write.postRoot([1n, tree.root, 5n * ONE, BigInt(tree.accounts), pubs, [4n * ONE, 1n * ONE]]),
      )
      const d = f.distributor(f.stranger)
      await mined(f, d.write.claim([ix(tree, nodes[0]!), nodes[0]!, 4n * ONE, tree.proofFor(nodes[0]!)]))
      const args = await expectRevert(
        d.write.claim([ix(tree, nodes[1]!), nodes[1]!, 4n * ONE, tree.proofFor(nodes[1]!)]),
        'ExceedsFunded',
      )
      expect(args).toEqual([8n * ONE, 5n * ONE])
      await mined(f, d.write.claim([ix(tree, nodes[2]!), nodes[2]!, ONE, tree.proofFor(nodes[2]!)]))
      expect(await f.distributor().read.totalClaimed()).toBe(5n * ONE)
      expect(await f.token().read.balanceOf([f.shoal.distributor])).toBe(0n)
    })

    it('claimMultiple pays several accounts, and nothing if one claim fails', async () => {
      const tree = await postEpoch1()
      const d = f.distributor(f.stranger)
      await expectRevert(
        d.write.claimMultiple([
          [0n, 1n],
          [nodes[0]!, nodes[1]!],
          [3n * ONE, 2n * ONE],
          [tree.proofFor(nodes[0]!), tree.proofFor(nodes[0]!)],
        ]),
        'InvalidProof',
      )
      expect(await f.token().read.balanceOf([nodes[0]!])).toBe(0n)
      await expectRevert(
        d.write.claimMultiple([[0n], [nodes[0]!], [3n * ONE, 2n * ONE], []]),
        'LengthMismatch',
      )
      await mined(
        f,
        d.write.claimMultiple([
          [0n, 1n],
          [nodes[0]!, nodes[1]!],
          [3n * ONE, 2n * ONE],
          [tree.proofFor(nodes[0]!), tree.proofFor(nodes[1]!)],
        ]),
      )
      expect(await f.token().read.balanceOf([nodes[0]!])).toBe(3n * ONE)
      expect(await f.token().read.balanceOf([nodes[1]!])).toBe(2n * ONE)
      expect(await f.distributor().read.totalClaimed()).toBe(5n * ONE)
    })

    it('claimable tells what a claim would pay', async () => {
      const tree = await postEpoch1()
      const d = f.distributor()
      const proof = tree.proofFor(nodes[0]!)
      expect(await d.read.claimable([0n, nodes[0]!, 3n * ONE, proof])).toBe(3n * ONE)
      expect(await d.read.claimable([0n, nodes[0]!, 4n * ONE, proof])).toBe(0n)
      await mined(f, f.distributor(f.stranger).write.claim([0n, nodes[0]!, 3n * ONE, proof]))
      expect(await d.read.claimable([0n, nodes[0]!, 3n * ONE, proof])).toBe(0n)
    })
  })

  describe('claimed words (two indexes per word, written by the settler)', () => {
    const U = ONE / 4n
    /** 258 accounts (indexes 0 … 257), a quarter token each, posted as epoch 1. */
    async function postWide(): Promise<{ tree: PayoutTree; accounts: Address[] }> {
      const accounts = Array.from(
        { length: 258 },
        (_, i) => `0x${(i + 1).toString(16).padStart(40, '0')}` as Address,
      )
      const tree = buildPayoutTree(accounts.map((account) => ({ account, amount: U })))
      await mined(
        f,
        f.distributor(f.settler).write.postRoot([1n, tree.root, 258n * U, 258n, [pubs[0]!], [258n * U]]),
      )
      return { tree, accounts }
    }
    const claimLeaf = (tree: PayoutTree, account: Address, amount = U) =>
      f.distributor(f.stranger).write.claim([ix(tree, account), account, amount, tree.proofFor(account)])

    it('pays leaves on both sides of word boundaries, each once, without disturbing its neighbour', async () => {
      const { tree, accounts } = await postWide()
      const d = f.distributor()
      for (const i of [255, 256, 254, 257, 0, 1]) {
        await mined(f, claimLeaf(tree, accounts[i]!))
        expect(await f.token().read.balanceOf([accounts[i]!])).toBe(U)
        // Its word-mate (index ^ 1) is untouched until claimed itself.
        if (![254, 0].includes(i)) continue
        expect(await d.read.claimedOf([BigInt(i)])).toBe(U)
      }
      for (const i of [253, 252, 2, 3]) expect(await d.read.claimedOf([BigInt(i)])).toBe(0n)
      for (const i of [255, 256, 254, 257, 0, 1]) {
        expect(await d.read.claimedOf([BigInt(i)])).toBe(U)
        await expectRevert(claimLeaf(tree, accounts[i]!), 'NothingToClaim')
      }
      await mined(f, claimLeaf(tree, accounts[253]!))
      expect(await d.read.totalClaimed()).toBe(7n * U)
      expect(await f.token().read.balanceOf([f.shoal.distributor])).toBe(251n * U)
    })

    it('refuses a leaf under another index (the index is part of the leaf)', async () => {
      const { tree, accounts } = await postWide()
      const d = f.distributor(f.stranger)
      for (const wrong of [0n, 254n, 256n, 257n, 258n, 2n ** 64n]) {
        await expectRevert(
          d.write.claim([wrong, accounts[255]!, U, tree.proofFor(accounts[255]!)]),
          'InvalidProof',
        )
      }
      expect(await f.distributor().read.claimedOf([0n])).toBe(0n)
      expect(
        await f.distributor().read.claimable([255n, accounts[255]!, U, tree.proofFor(accounts[255]!)]),
      ).toBe(U)
    })

    it('refuses a leaf whose index no posted root covers', async () => {
      // The tree has 3 leaves but the settler covers only 2: word 1 (indexes 2, 3) is never written.
      const tree = buildPayoutTree(nodes.slice(0, 3).map((account) => ({ account, amount: ONE })))
      await mined(
        f,
        f.distributor(f.settler).write.postRoot([1n, tree.root, 3n * ONE, 2n, [pubs[0]!], [3n * ONE]]),
      )
      const args = await expectRevert(claimLeaf(tree, nodes[2]!, ONE), 'UnknownIndex')
      expect(args).toEqual([2n])
      expect(await f.distributor().read.claimable([2n, nodes[2]!, ONE, tree.proofFor(nodes[2]!)])).toBe(0n)
      await mined(f, claimLeaf(tree, nodes[1]!, ONE))
    })

    it('never uncovers indexes, and writes only new words', async () => {
      await postEpoch1() // indexes 0, 1: word 0
      const d = f.distributor(f.settler)
      const tree = buildPayoutTree([{ account: nodes[0]!, amount: 4n * ONE }])
      expect(
        await expectRevert(d.write.postRoot([2n, tree.root, 0n, 1n, [], []]), 'AccountsDecreasing'),
      ).toEqual([1n, 2n])
      await expectRevert(d.write.cover([1n]), 'AccountsDecreasing')
      expect(await f.distributor().read.accounts()).toBe(2n)
      // Covering 5 writes words 1 and 2 only, in one transaction; the settler pays.
      const first = await mined(f, d.write.cover([5n]))
      const again = await mined(f, d.write.cover([5n]))
      expect(first.gasUsed - again.gasUsed).toBeGreaterThanOrEqual(2n * 22_100n)
      expect(first.gasUsed - again.gasUsed).toBeLessThan(3n * 22_100n)
      expect(await f.distributor().read.accounts()).toBe(5n)
      await expectRevert(f.distributor(f.stranger).write.cover([9n]), 'AccessControlUnauthorizedAccount')
    })

    it('refuses a cumulative amount that does not fit its 128-bit half', async () => {
      // buildPayoutTree refuses such amounts; a hand-built tree shows the contract does too.
      const big = 2n ** 128n - 1n
      const tree = StandardMerkleTree.of(
        [
          ['0', nodes[0]!, big.toString()],
          ['1', nodes[1]!, '1'],
        ],
        [...PAYOUT_LEAF_ENCODING],
      )
      await mined(
        f,
        f.distributor(f.settler).write.postRoot([1n, tree.root as Hex, ONE, 2n, [pubs[0]!], [ONE]]),
      )
      const args = await expectRevert(
        f.distributor(f.stranger).write.claim([0n, nodes[0]!, big, tree.getProof(0) as Hex[]]),
        'AmountTooLarge',
      )
      expect(args).toEqual([big])
      expect(await f.distributor().read.MAX_CUMULATIVE()).toBe(MAX_PAYOUT_AMOUNT)
    })
  })

  describe('pause', () => {
    it('stops claims and posting until unpaused', async () => {
      const tree = await postEpoch1()
      await mined(f, f.distributor(f.admin).write.pause())
      expect(await f.distributor().read.paused()).toBe(true)
      await expectRevert(
        f
          .distributor(f.stranger)
          .write.claim([ix(tree, nodes[0]!), nodes[0]!, 3n * ONE, tree.proofFor(nodes[0]!)]),
        'EnforcedPause',
      )
      await expectRevert(
        f
          .distributor(f.stranger)
          .write.claimMultiple([[0n], [nodes[0]!], [3n * ONE], [tree.proofFor(nodes[0]!)]]),
        'EnforcedPause',
      )
      await expectRevert(
        f.distributor(f.settler).write.postRoot([2n, tree.root, 0n, BigInt(tree.accounts), [], []]),
        'EnforcedPause',
      )
      await mined(f, f.distributor(f.admin).write.unpause())
      await mined(
        f,
        f
          .distributor(f.stranger)
          .write.claim([ix(tree, nodes[0]!), nodes[0]!, 3n * ONE, tree.proofFor(nodes[0]!)]),
      )
      expect(await f.token().read.balanceOf([nodes[0]!])).toBe(3n * ONE)
      // Pausing keeps the packed totals intact.
      expect(await f.distributor().read.totalFunded()).toBe(5n * ONE)
      expect(await f.distributor().read.totalClaimed()).toBe(3n * ONE)
    })

    it('refuses pause and unpause without PAUSER_ROLE', async () => {
      expect(
        await expectRevert(f.distributor(f.settler).write.pause(), 'AccessControlUnauthorizedAccount'),
      ).toEqual([addr(f.settler), ROLES.PAUSER])
      await mined(f, f.distributor(f.admin).write.pause())
      await expectRevert(f.distributor(f.stranger).write.unpause(), 'AccessControlUnauthorizedAccount')
    })
  })
})
