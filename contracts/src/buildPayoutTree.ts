import { StandardMerkleTree } from '@openzeppelin/merkle-tree'
import { InvalidArgumentError, NotFoundError } from '@shoal/protocol'
import { type Address, getAddress, type Hex, isAddress, zeroAddress } from 'viem'

/**
 * One payout: a node's payout address and its cumulative amount (in token wei). Its
 * position in the list is its leaf index, which the account keeps for ever.
 */
export interface PayoutEntry {
  account: string
  amount: bigint
}

/** The leaf encoding the RewardDistributor verifies: `(index, account, cumulativeAmount)`. */
export const PAYOUT_LEAF_ENCODING = ['uint256', 'address', 'uint256'] as const

/**
 * The largest cumulative amount a leaf may carry: the distributor keeps `claimed + 1` in
 * 128 bits (`RewardDistributor.MAX_CUMULATIVE`).
 */
export const MAX_PAYOUT_AMOUNT = 2n ** 128n - 2n

/** A StandardMerkleTree dump of a payout tree, JSON-safe (amounts as decimal strings). */
export type PayoutTreeDump = ReturnType<StandardMerkleTree<[string, string, string]>['dump']>

/** A built payout tree: post `root`, hand each node `proofFor(account)`. */
export interface PayoutTree {
  /** The Merkle root to post on-chain. */
  readonly root: Hex
  /** Sum of the cumulative amounts: what the distributor must have been funded with in all. */
  readonly total: bigint
  /** The entries, with checksummed addresses, in input order (entry `i` is leaf index `i`). */
  readonly entries: ReadonlyArray<{ account: Address; amount: bigint }>
  /** The number of leaves: `postRoot`'s `accounts` (indexes `0 … accounts - 1`). */
  readonly accounts: number
  /** The cumulative amount of `account`, or `undefined` when it has no leaf. */
  amountOf(account: string): bigint | undefined
  /** The leaf index of `account` (its position in the entries), or `undefined` when it has no leaf. */
  indexOf(account: string): number | undefined
  /** The proof for `account`'s leaf; throws a `NotFoundError` when it has none. */
  proofFor(account: string): Hex[]
  /** The OpenZeppelin StandardMerkleTree dump (JSON-safe), to store or publish. */
  dump(): PayoutTreeDump
}

/**
 * Builds the payout Merkle tree of an epoch: OpenZeppelin StandardMerkleTree leaves of
 * `(uint256, address, uint256)`, the leaf's index (the entry's position in the list), the
 * node's payout address and its **cumulative** amount (all it has earned so far, not
 * this epoch's delta), exactly what `RewardDistributor.claim` verifies.
 *
 * The distributor remembers what each **index** has claimed, so an account must keep
 * its index in every later epoch: list the previous epoch's accounts first, in the same
 * order, then the new ones.
 *
 * Throws an `InvalidArgumentError` (code `SHOAL_ERR_INVALID_ARGUMENT`) for an empty
 * list, a malformed or zero address, a duplicate account (compared case-insensitively),
 * or an amount that is not a bigint in `1 … 2^128-2` (`MAX_PAYOUT_AMOUNT`).
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
    if (amount <= 0n || amount > MAX_PAYOUT_AMOUNT) {
      throw new InvalidArgumentError(`${where}: amount must be in 1 … 2^128-2, got ${amount}`)
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

  const tree = StandardMerkleTree.of<[string, string, string]>(
    normalized.map((e, index) => [String(index), e.account, e.amount.toString()]),
    [...PAYOUT_LEAF_ENCODING],
  )
  // The tree sorts its leaves; remember where each account's value went.
  const treeIndexOf = new Map<string, number>()
  for (const [index, [, account]] of tree.entries()) treeIndexOf.set(account.toLowerCase(), index)

  return {
    root: tree.root as Hex,
    total,
    entries: normalized,
    accounts: normalized.length,
    amountOf(account) {
      if (typeof account !== 'string') return undefined
      const index = indexOf.get(account.toLowerCase())
      return index === undefined ? undefined : normalized[index]?.amount
    },
    indexOf(account) {
      return typeof account === 'string' ? indexOf.get(account.toLowerCase()) : undefined
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
