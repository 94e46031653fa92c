import { StandardMerkleTree } from '@openzeppelin/merkle-tree'
import { encodeAbiParameters, keccak256 } from 'viem'
import { describe, expect, it } from 'vitest'
import { buildPayoutTree, MAX_PAYOUT_AMOUNT, PAYOUT_LEAF_ENCODING } from '../src/index.ts'

const A = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8'
const B = '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC'
const C = '0x90F79bf6EB2c4f870365E785982E1f101E93b906'

describe('buildPayoutTree', () => {
  it('builds an OpenZeppelin StandardMerkleTree of (index, address, uint256) with verifiable proofs', () => {
    const tree = buildPayoutTree([
      { account: A, amount: 5n },
      { account: B.toLowerCase(), amount: 2n },
      { account: C, amount: 10n ** 30n },
    ])
    const reference = StandardMerkleTree.of(
      [
        ['0', A, '5'],
        ['1', B, '2'],
        ['2', C, (10n ** 30n).toString()],
      ],
      ['uint256', 'address', 'uint256'],
    )
    expect(tree.root).toBe(reference.root)
    expect(tree.total).toBe(7n + 10n ** 30n)
    expect(tree.entries.map((e) => e.account)).toEqual([A, B, C])
    expect(tree.accounts).toBe(3)
    for (const [index, { account, amount }] of tree.entries.entries()) {
      expect(tree.indexOf(account)).toBe(index)
      expect(
        StandardMerkleTree.verify(
          tree.root,
          [...PAYOUT_LEAF_ENCODING],
          [index, account, amount],
          tree.proofFor(account),
        ),
      ).toBe(true)
    }
    expect(tree.amountOf(B)).toBe(2n)
    expect(tree.amountOf(B.toLowerCase())).toBe(2n)
    expect(tree.amountOf('0x0000000000000000000000000000000000000001')).toBeUndefined()
    expect(tree.indexOf(C.toLowerCase())).toBe(2)
    expect(tree.indexOf('0x0000000000000000000000000000000000000001')).toBeUndefined()
    expect(tree.proofFor(A.toLowerCase())).toEqual(tree.proofFor(A))
  })

  it('uses the double-hashed leaf the contract computes', () => {
    const tree = buildPayoutTree([{ account: A, amount: 42n }])
    // A one-leaf tree's root is the leaf itself.
    const leaf = keccak256(
      keccak256(
        encodeAbiParameters([{ type: 'uint256' }, { type: 'address' }, { type: 'uint256' }], [0n, A, 42n]),
      ),
    )
    expect(tree.root).toBe(leaf)
    expect(tree.proofFor(A)).toEqual([])
  })

  it('dumps JSON-safe data that loads back to the same root', () => {
    const tree = buildPayoutTree([
      { account: A, amount: 1n },
      { account: B, amount: 2n },
    ])
    const json = JSON.stringify(tree.dump())
    expect(StandardMerkleTree.load(JSON.parse(json)).root).toBe(tree.root)
  })

  it('throws typed errors on bad input', () => {
    const invalid = { code: 'SHOAL_ERR_INVALID_ARGUMENT', name: 'InvalidArgumentError' }
    const cases: unknown[] = [
      [],
      [{ account: A, amount: 0n }],
      [{ account: A, amount: -1n }],
      [{ account: A, amount: 2n ** 256n }],
      [{ account: A, amount: MAX_PAYOUT_AMOUNT + 1n }],
      [{ account: A, amount: 5 }],
      [{ account: A, amount: '5' }],
      [{ account: '0x1234', amount: 1n }],
      [{ account: 'not an address', amount: 1n }],
      [{ account: '0x0000000000000000000000000000000000000000', amount: 1n }],
      [null],
      [
        { account: A, amount: 1n },
        { account: A.toLowerCase(), amount: 2n },
      ],
      null,
      42,
    ]
    for (const input of cases) {
      expect(
        () => buildPayoutTree(input as never),
        JSON.stringify(input, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v)),
      ).toThrow(expect.objectContaining(invalid))
    }
    expect(() =>
      buildPayoutTree([
        { account: A, amount: 1n },
        { account: A, amount: 1n },
      ]),
    ).toThrow(/already appears in entry 0/)
  })

  it('accepts amounts up to MAX_PAYOUT_AMOUNT (2^128 - 2, what the distributor stores)', () => {
    expect(MAX_PAYOUT_AMOUNT).toBe(2n ** 128n - 2n)
    expect(buildPayoutTree([{ account: A, amount: MAX_PAYOUT_AMOUNT }]).total).toBe(MAX_PAYOUT_AMOUNT)
  })

  it('proofFor an account without a leaf throws NotFoundError', () => {
    const tree = buildPayoutTree([{ account: A, amount: 1n }])
    expect(() => tree.proofFor(B)).toThrow(expect.objectContaining({ code: 'SHOAL_ERR_NOT_FOUND' }))
  })
})
