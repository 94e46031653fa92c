import { StandardMerkleTree } from '@openzeppelin/merkle-tree'
import { InvalidArgumentError, NotFoundError } from '@shoal/protocol'
import { type Address, getAddress, type Hex, isAddress, zeroAddress } from 'viem'

/** One payout: a node's payout address and its cumulative amount (in token wei). */
export interface PayoutEntry {
  account: string
  amount: bigint
}

/** The leaf encoding the RewardDistributor verifies. */
export const PAYOUT_LEAF_ENCODING = ['address', 'uint256'] as const

/** A StandardMerkleTree dump of a payout tree, JSON-safe (amounts as decimal strings). */
export type PayoutTreeDump = ReturnType<StandardMerkleTree<[string, string]>['dump']>

/** A built payout tree: post `root`, hand each node `proofFor(account)`. */
export interface PayoutTree {
  /** The Merkle root to post on-chain. */
  readonly root: Hex
  /** Sum of the cumulative amounts: what the distributor must have been funded with in all. */
  readonly total: bigint
  /** The entries, with checksummed addresses, in input order. */
  readonly entries: ReadonlyArray<{ account: Address; amount: bigint }>
  /** The cumulative amount of `account`, or `undefined` when it has no leaf. */
  amountOf(account: string): bigint | undefined
  /** The proof for `account`'s leaf; throws a `NotFoundError` when it has none. */
  proofFor(account: string): Hex[]
  /** The OpenZeppelin StandardMerkleTree dump (JSON-safe), to store or publish. */
  dump(): PayoutTreeDump
}

const MAX_UINT256 = 2n ** 256n - 1n

/**
 * Builds the payout Merkle tree of an epoch: OpenZeppelin StandardMerkleTree leaves of
 * `(address, uint256)`, the node's payout address and its **cumulative** amount (all
 * it has earned so far, not this epoch's delta), exactly what `RewardDistributor.claim`
 * verifies.
 *
 * Throws an `InvalidArgumentError` (code `SHOAL_ERR_INVALID_ARGUMENT`) for an empty
 * list, a malformed or zero address, a duplicate account (compared case-insensitively),
 * or an amount that is not a bigint in `1 … 2^256-1`.
 *
 * @example
 * const tree = buildPayoutTree([
 *   { account: '0x70997970C51812dc3A010C7d01b50e0d17dc79C8', amount: 5n * 10n ** 18n },
 *   { account: '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC', amount: 2n * 10n ** 18n },
 * ])
 * tree.root   // post with RewardDistributor.postRoot
 * tree.proofFor('0x70997970C51812dc3A010C7d01b50e0d17dc79C8') // hand to the node
 */
export function buildPayoutTree(entries: Iterable<PayoutEntry>): PayoutTree {
  if (entries == null || typeof (entries as Iterable<PayoutEntry>)[Symbol.iterator] !== 'function') {
    throw new InvalidArgumentError('payout entries must be an iterable of { account, amount }')
  }
  const normalized: Array<{ account: Address; amount: bigint }> = []
  const indexOf = new Map<string, number>()
  let total = 0n
  let i = 0
  for (const entry of entries) {
    const where = `payout entry ${i}`
    if (entry == null || typeof entry !== 'object') {
      throw new InvalidArgumentError(`${where} must be an object { account, amount }`)
    }
    const { account, amount } = entry
    if (typeof account !== 'string' || !isAddress(account, { strict: false })) {
      throw new InvalidArgumentError(`${where}: account must be a 20-byte hex address`)
    }
    if (account.toLowerCase() === zeroAddress) {
      throw new InvalidArgumentError(`${where}: account must not be the zero address`)
    }
    if (typeof amount !== 'bigint') {
      throw new InvalidArgumentError(`${where}: amount must be a bigint`)
    }
    if (amount <= 0n || amount > MAX_UINT256) {
      throw new InvalidArgumentError(`${where}: amount must be in 1 … 2^256-1, got ${amount}`)
    }
    const key = account.toLowerCase()
    const seen = indexOf.get(key)
    if (seen !== undefined) {
      throw new InvalidArgumentError(`${where}: account ${account} already appears in entry ${seen}`)
    }
    indexOf.set(key, i)
    normalized.push({ account: getAddress(account), amount })
    total += amount
    i += 1
  }
  if (normalized.length === 0) throw new InvalidArgumentError('a payout tree needs at least one entry')

  const tree = StandardMerkleTree.of<[string, string]>(
    normalized.map((e) => [e.account, e.amount.toString()]),
    [...PAYOUT_LEAF_ENCODING],
  )
  // The tree sorts its leaves; remember where each account's value went.
  const treeIndexOf = new Map<string, number>()
  for (const [index, [account]] of tree.entries()) treeIndexOf.set(account.toLowerCase(), index)

  return {
    root: tree.root as Hex,
    total,
    entries: normalized,
    amountOf(account) {
      if (typeof account !== 'string') return undefined
      const index = indexOf.get(account.toLowerCase())
      return index === undefined ? undefined : normalized[index]?.amount
    },
    proofFor(account) {
      const index = typeof account === 'string' ? treeIndexOf.get(account.toLowerCase()) : undefined
      if (index === undefined) throw new NotFoundError(`no payout leaf for account ${String(account)}`)
      return tree.getProof(index) as Hex[]
    },
    dump() {
      return tree.dump()
    },
  }
}
