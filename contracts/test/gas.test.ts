/**
 * Claim gas on the real EVM, with a realistic tree: 10,000 leaves (proofs of 13–14
 * hashes). Gas is deterministic, so this is a test, not a benchmark; the figures are
 * printed for the record.
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

describe('claim gas', () => {
  let f: Fixture
  let tree: PayoutTree
  let deepest: Array<{ account: Address; amount: bigint }>
  beforeAll(async () => {
    f = await createFixture()
    const entries = Array.from({ length: LEAVES }, (_, i) => ({
      account: getAddress(`0x${keccak256(toHex(i)).slice(26)}`),
      amount: BigInt(i + 1) * 10n ** 15n,
    }))
    tree = buildPayoutTree(entries)
    // Accounts whose proof is the longest (14 hashes for 10,000 leaves): in the tree's
    // array layout a node at index i sits at depth floor(log2(i + 1)).
    deepest = tree
      .dump()
      .values.filter((v) => Math.floor(Math.log2(v.treeIndex + 1)) === 14)
      .slice(0, 2)
      .map((v) => ({ account: v.value[0] as Address, amount: BigInt(v.value[1]) }))
    await fundPublishers(f, tree.total)
    const half = tree.total / 2n
    await mined(
      f,
      f
        .distributor(f.settler)
        .write.postRoot([1n, tree.root, tree.total, f.publishers.map(addr), [half, tree.total - half]]),
    )
  })
  afterAll(() => f.close())

  async function claimGas(account: Address, amount: bigint, proof: Hex[]) {
    const receipt = await mined(f, f.distributor(f.stranger).write.claim([account, amount, proof]))
    const tx = await f.chain.publicClient.getTransaction({ hash: receipt.transactionHash })
    const calldata = calldataGas(tx.input)
    return { total: receipt.gasUsed, calldata, execution: receipt.gasUsed - 21_000n - calldata }
  }

  it('a first claim to an account holding no tokens, proof depth 14', async () => {
    const { account, amount } = deepest[0]!
    expect(await f.token().read.balanceOf([account])).toBe(0n)
    const proof = tree.proofFor(account)
    expect(proof.length).toBe(14)
    const gas = await claimGas(account, amount, proof)
    console.log(
      `first claim, empty account, depth 14: ${gas.total} gas = 21000 base + ${gas.calldata} calldata + ${gas.execution} execution`,
    )
    expect(await f.token().read.balanceOf([account])).toBe(amount)
    // Execution (what the contracts spend) is within the 80k target; the transaction
    // total adds the fixed 21,000 and ~7,800 of calldata for a 14-hash proof.
    expect(gas.execution).toBeLessThanOrEqual(80_000n)
    expect(gas.total).toBeLessThanOrEqual(100_000n)
  })

  it('a later-epoch claim by an account that already claimed and holds tokens', async () => {
    const { account, amount } = deepest[1]!
    await mined(f, f.distributor(f.stranger).write.claim([account, amount, tree.proofFor(account)]))
    // Epoch 2: the same account earns one more token.
    const tree2 = buildPayoutTree(
      tree.entries.map((e) => (e.account === account ? { account, amount: amount + ONE } : e)),
    )
    await fundPublishers(f, ONE)
    await mined(
      f,
      f.distributor(f.settler).write.postRoot([2n, tree2.root, ONE, [addr(f.publishers[0]!)], [ONE]]),
    )
    const proof = tree2.proofFor(account)
    expect(proof.length).toBe(14)
    const gas = await claimGas(account, amount + ONE, proof)
    console.log(
      `repeat claim, depth ${proof.length}: ${gas.total} gas = 21000 base + ${gas.calldata} calldata + ${gas.execution} execution`,
    )
    expect(gas.total).toBeLessThanOrEqual(80_000n)
  })
})
