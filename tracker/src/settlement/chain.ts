/**
 * The settlement's view of the contracts, through viem: the distributor's posted epoch,
 * root and covered accounts, escrow balances, `cover` and `postRoot`. Optional: a
 * tracker without a chain builds and serves payout trees but posts nothing.
 */
import { publisherEscrowAbi, rewardDistributorAbi } from '@shoal/contracts'
import type { Account, Address, Chain, Hex, PublicClient, Transport, WalletClient } from 'viem'

export interface PostRootArgs {
  epoch: number
  root: Hex
  total: bigint
  /** The tree's leaf count (indexes `0 … accounts - 1`). */
  accounts: number
  publishers: Address[]
  amounts: bigint[]
}

export interface SettlementChain {
  /**
   * The distributor's latest posted epoch and root (`0x00…` root before any) and how
   * many leaf indexes its claimed words cover.
   */
  posted(): Promise<{ epoch: number; root: Hex; accounts: number }>
  escrowBalance(publisher: Address): Promise<bigint>
  /** Sends `cover(accounts)` (writes the claimed words of new indexes); returns the transaction hash. */
  cover(accounts: number): Promise<Hex>
  /** Sends `postRoot`; returns the transaction hash. */
  postRoot(args: PostRootArgs): Promise<Hex>
  /** Waits for a transaction: `success`, `reverted`, or `missing` when the chain does not know it. */
  outcome(hash: Hex): Promise<'success' | 'reverted' | 'missing'>
}

export interface ViemSettlementChainInit {
  publicClient: PublicClient
  /** A wallet client whose account holds the distributor's SETTLER_ROLE. */
  walletClient: WalletClient<Transport, Chain | undefined, Account>
  distributor: Address
  escrow: Address
}

/**
 * @example
 * const chain = createViemSettlementChain({ publicClient, walletClient: settler, distributor, escrow })
 */
export function createViemSettlementChain(init: ViemSettlementChainInit): SettlementChain {
  const { publicClient, walletClient, distributor, escrow } = init
  return {
    async posted() {
      const read = <F extends 'epoch' | 'merkleRoot' | 'accounts'>(functionName: F) =>
        publicClient.readContract({ address: distributor, abi: rewardDistributorAbi, functionName })
      const [epoch, root, accounts] = await Promise.all([read('epoch'), read('merkleRoot'), read('accounts')])
      return { epoch: Number(epoch), root, accounts: Number(accounts) }
    },
    escrowBalance(publisher) {
      return publicClient.readContract({
        address: escrow,
        abi: publisherEscrowAbi,
        functionName: 'balanceOf',
        args: [publisher],
      })
    },
    cover(accounts) {
      return walletClient.writeContract({
        address: distributor,
        abi: rewardDistributorAbi,
        functionName: 'cover',
        args: [BigInt(accounts)],
        chain: walletClient.chain,
        account: walletClient.account,
      })
    },
    postRoot(a) {
      return walletClient.writeContract({
        address: distributor,
        abi: rewardDistributorAbi,
        functionName: 'postRoot',
        args: [BigInt(a.epoch), a.root, a.total, BigInt(a.accounts), a.publishers, a.amounts],
        chain: walletClient.chain,
        account: walletClient.account,
      })
    },
    async outcome(hash) {
      try {
        const receipt = await publicClient.waitForTransactionReceipt({ hash, timeout: 60_000 })
        return receipt.status
      } catch {
        return 'missing'
      }
    },
  }
}
