/**
 * Claim gas on the real EVM, with a large tree: 10,000 leaves (proofs of 13–14
 * hashes). Gas is deterministic, so this is a test, not a benchmark; the figures are
 * printed for the record (benchmarks/settlement records them with the benchmark's tree).
 */
import { type Address, getAddress, type Hex, keccak256, toHex } from 'viem'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildPayoutTree, type PayoutTree } from '../src/index.ts'
import { addr, createFixture, type Fixture, fundPublishers, mined, ONE } from './fixture.ts'

/** Intrinsic gas of calldata (EIP-2028: 4 per zero byte, 16 per other byte). */
function calldataGas(input: Hex): bigint {
  let gas = 0n
  for (let i = 2; i < input.length; i += 2) gas += input.slice(i, i + 2) === '00' ? 4n : 16n
  return gas
}

const LEAVES = 10_000
const COVER_CHUNK = 1_000

describe('claim gas', () => {
  let f: Fixture
  let tree: PayoutTree
  /** Accounts whose proofs are 13 and 14 hashes long (10,000 leaves have both). */
  let atDepth: Record<13 | 14, Array<{ account: Address; amount: bigint }>>
  const coverGas: bigint[] = []
  const firstClaimGas: Partial<Record<13 | 14, bigint>> = {}
  beforeAll(async () => {
    f = await createFixture()
    const entries = Array.from({ length: LEAVES }, (_, i) => ({
      account: getAddress(`0x${keccak256(toHex(i)).slice(26)}`),
      amount: BigInt(i + 1) * 10n ** 15n,
    }))
    tree = buildPayoutTree(entries)
    // In the tree's array layout a node at index i sits at depth floor(log2(i + 1)).
    const leavesAt = (depth: number) =>
      tree
        .dump()
        .values.filter((v) => Math.floor(Math.log2(v.treeIndex + 1)) === depth)
        .slice(0, 2)
        .map((v) => ({ account: v.value[1] as Address, amount: BigInt(v.value[2]) }))
    atDepth = { 13: leavesAt(13), 14: leavesAt(14) }
    await fundPublishers(f, tree.total)
    // 10,000 new accounts are 5,000 claimed words: more than one block, so the settler
    // covers them in chunks before posting the root.
    for (let n = COVER_CHUNK; n <= LEAVES; n += COVER_CHUNK) {
      const receipt = await mined(f, f.distributor(f.settler).write.cover([BigInt(n)]))
      coverGas.push(receipt.gasUsed)
    }
    const half = tree.total / 2n
    await mined(
      f,
      f
        .distributor(f.settler)
        .write.postRoot([
          1n,
          tree.root,
          tree.total,
          BigInt(tree.accounts),
          f.publishers.map(addr),
          [half, tree.total - half],
        ]),
    )
  })
  afterAll(() => f.close())

  async function claimGas(account: Address, amount: bigint, proof: Hex[]) {
    const index = BigInt(tree.indexOf(account)!)
    const receipt = await mined(f, f.distributor(f.stranger).write.claim([index, account, amount, proof]))
    const tx = await f.chain.publicClient.getTransaction({ hash: receipt.transactionHash })
    const calldata = calldataGas(tx.input)
    return {
      total: receipt.gasUsed,
      calldata,
      execution: receipt.gasUsed - 21_000n - calldata,
      hash: receipt.transactionHash,
    }
  }

  /**
   * The storage writes of a transaction, from EDR's `debug_traceTransaction`: each
   * SSTORE's cost and the call depth it ran at (1: the distributor, 2: the token).
   */
  async function storageWrites(hash: Hex): Promise<Array<{ depth: number; gasCost: number }>> {
    const trace = (await f.chain.provider.request({ method: 'debug_traceTransaction', params: [hash] })) as {
      structLogs: Array<{ op: string; depth: number; gasCost: number }>
    }
    return trace.structLogs.filter((s) => s.op === 'SSTORE').map(({ depth, gasCost }) => ({ depth, gasCost }))
  }

  it('the settler pays for the claimed words: 22,100 gas and a little per word of two accounts', () => {
    const words = BigInt(COVER_CHUNK / 2)
    for (const gas of coverGas) {
      const perWord = (gas - 21_000n) / words
      expect(perWord).toBeGreaterThanOrEqual(22_100n)
      expect(perWord).toBeLessThanOrEqual(22_400n)
    }
    console.log(`cover ${COVER_CHUNK} accounts (${words} words): ${coverGas[1]} gas`)
  })

  // The first claim an operator ever makes: its claimed word was written by the settler
  // (non-zero to non-zero, 2,900), but its token balance goes from zero (20,000).
  it.each([13, 14] as const)(
    'a first claim to an account holding no tokens, proof depth %i',
    async (depth) => {
      const { account, amount } = atDepth[depth][0]!
      expect(await f.token().read.balanceOf([account])).toBe(0n)
      expect(await f.distributor().read.claimedOf([BigInt(tree.indexOf(account)!)])).toBe(0n)
      const proof = tree.proofFor(account)
      expect(proof.length).toBe(depth)
      const gas = await claimGas(account, amount, proof)
      firstClaimGas[depth] = gas.total
      console.log(
        `first claim, empty account, depth ${depth}: ${gas.total} gas = 21000 base + ${gas.calldata} calldata + ${gas.execution} execution`,
      )
      expect(await f.token().read.balanceOf([account])).toBe(amount)
      // The distributor rewrites two non-zero slots (its claimed word, the packed totals);
      // the only slot created from zero is the node's token balance.
      expect(await storageWrites(gas.hash)).toEqual([
        { depth: 1, gasCost: 2_900 },
        { depth: 1, gasCost: 2_900 },
        { depth: 2, gasCost: 2_900 },
        { depth: 2, gasCost: 20_000 },
      ])
      // ≤ 80,000 up to 2^13 leaves; each level of proof adds a 32-byte hash (~512 gas of
      // calldata) and a keccak: 10,000 leaves' deepest proofs go just past it.
      expect(gas.total).toBeLessThanOrEqual(depth <= 13 ? 80_000n : 81_000n)
    },
  )

  it('each level of proof costs under 800 gas', () => {
    const perLevel = firstClaimGas[14]! - firstClaimGas[13]!
    expect(perLevel).toBeGreaterThan(500n)
    expect(perLevel).toBeLessThan(800n)
  })

  it('a later-epoch claim by an account that already claimed and holds tokens', async () => {
    const { account, amount } = atDepth[14][1]!
    const index = BigInt(tree.indexOf(account)!)
    await mined(f, f.distributor(f.stranger).write.claim([index, account, amount, tree.proofFor(account)]))
    // Epoch 2: the same account earns one more token.
    const tree2 = buildPayoutTree(
      tree.entries.map((e) => (e.account === account ? { account, amount: amount + ONE } : e)),
    )
    await fundPublishers(f, ONE)
    await mined(
      f,
      f
        .distributor(f.settler)
        .write.postRoot([2n, tree2.root, ONE, BigInt(tree2.accounts), [addr(f.publishers[0]!)], [ONE]]),
    )
    const proof = tree2.proofFor(account)
    expect(proof.length).toBeGreaterThanOrEqual(13)
    const gas = await claimGas(account, amount + ONE, proof)
    console.log(
      `repeat claim, depth ${proof.length}: ${gas.total} gas = 21000 base + ${gas.calldata} calldata + ${gas.execution} execution`,
    )
    expect(gas.total).toBeLessThanOrEqual(65_000n)
  })
})
