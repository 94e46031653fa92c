import { type Address, getAddress, keccak256, toHex } from 'viem'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildPayoutTree } from '../src/index.ts'
import { createFixture, type Fixture, fundPublishers, mined, ONE } from './fixture.ts'

/** Intrinsic gas of a transaction's calldata (EIP-2028: 4 per zero byte, 16 per other). */
function calldataGas(input: `0x${string}`): bigint {
  let gas = 0n
  for (let i = 2; i < input.length; i += 2) gas += input.slice(i, i + 2) === '00' ? 4n : 16n
  return gas
}

describe('claim gas', () => {
  let f: Fixture
  beforeAll(async () => {
    f = await createFixture()
  })
  afterAll(() => f.close())

  it('a first claim to an account holding no tokens, 10,000 leaves (proof depth 14)', async () => {
    const node = f.nodes[0]!.account.address
    const entries: Array<{ account: Address; amount: bigint }> = [{ account: node, amount: 3n * ONE }]
    for (let i = 1; i < 10_000; i++) {
      entries.push({
        account: getAddress(`0x${keccak256(toHex(i)).slice(26)}`),
        amount: BigInt(i) * 10n ** 12n,
      })
    }
    const tree = buildPayoutTree(entries)
    await fundPublishers(f, tree.total)
    const perPublisher = tree.total / 2n
    await mined(
      f,
      f
        .distributor(f.settler)
        .write.postRoot([
          1n,
          tree.root,
          tree.total,
          f.publishers.map((p) => p.account.address),
          [perPublisher, tree.total - perPublisher],
        ]),
    )
    const proof = tree.proofFor(node)
    expect(proof.length).toBeGreaterThanOrEqual(13)
    expect(await f.token().read.balanceOf([node])).toBe(0n)

    // Submitted by someone else, as a relayer would; paid to the leaf's account.
    const receipt = await mined(f, f.distributor(f.stranger).write.claim([node, 3n * ONE, proof]))
    const tx = await f.chain.publicClient.getTransaction({ hash: receipt.transactionHash })
    const intrinsic = 21_000n + calldataGas(tx.input)
    const execution = receipt.gasUsed - intrinsic
    console.log(
      `claim gas: ${receipt.gasUsed} total = 21000 base + ${intrinsic - 21_000n} calldata + ${execution} execution (proof depth ${proof.length})`,
    )
    expect(await f.token().read.balanceOf([node])).toBe(3n * ONE)
    expect(receipt.gasUsed).toBeLessThan(100_000n)
  })
})
