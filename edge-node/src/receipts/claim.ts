/**
 * `shoal-node claim`: collects what the node has earned. The distributor pays against
 * its latest posted root, whose leaves `(index, payout, cumulative amount)` are
 * cumulative, so one claim with the latest proof collects every settled epoch at once. The node key sends the transaction (it
 * needs a little gas); the tokens go to the payout address the node record names.
 */
import { rewardDistributorAbi, shoalTokenAbi } from '@shoal/contracts/abi'
import { NotFoundError } from '@shoal/protocol'
import { fetchPayoutProof } from '@shoal/tracker/client'
import { type Address, createPublicClient, createWalletClient, getAddress, type Hex, http } from 'viem'
import type { LocalAccount } from 'viem/accounts'

export interface ClaimInit {
  trackerUrl: string
  rpcUrl: string
  distributor: Address
  /** Where the tokens go (the node record's payout; default the node key). */
  payout?: Address
}

export interface ClaimResult {
  /** The distributor's latest posted epoch. */
  epoch: number
  /** What the proof says the payout address has earned in all (token base units). */
  cumulative: bigint
  /** Paid by this claim (0 when there was nothing left to claim). */
  claimed: bigint
  transaction?: Hex
  gasUsed?: bigint
  /** The payout address's token balance after the claim. */
  balance: bigint
  token: Address
}

/**
 * @example
 * const r = await claimEarnings({ trackerUrl, rpcUrl, distributor }, account)
 * console.log(`claimed ${formatEther(r.claimed)}, balance ${formatEther(r.balance)}`)
 */
export async function claimEarnings(init: ClaimInit, account: LocalAccount): Promise<ClaimResult> {
  const transport = http(init.rpcUrl)
  const publicClient = createPublicClient({ transport })
  const chainId = await publicClient.getChainId()
  const chain = {
    id: chainId,
    name: `chain ${chainId}`,
    nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
    rpcUrls: { default: { http: [init.rpcUrl] } },
  } as const
  const payout = getAddress(init.payout ?? account.address)
  const distributor = { address: init.distributor, abi: rewardDistributorAbi } as const
  const [epoch, token] = await Promise.all([
    publicClient.readContract({ ...distributor, functionName: 'epoch' }),
    publicClient.readContract({ ...distributor, functionName: 'token' }),
  ])
  const root = await publicClient.readContract({ ...distributor, functionName: 'merkleRoot' })
  if (/^0x0+$/.test(root)) throw new NotFoundError('no epoch has been settled on chain yet')
  const balanceOf = () =>
    publicClient.readContract({
      address: token,
      abi: shoalTokenAbi,
      functionName: 'balanceOf',
      args: [payout],
    })
  let proof: Awaited<ReturnType<typeof fetchPayoutProof>>
  try {
    proof = await fetchPayoutProof({ trackerUrl: init.trackerUrl, epoch: Number(epoch), address: payout })
  } catch (err) {
    if ((err as { code?: string }).code === 'SHOAL_ERR_NOT_FOUND') {
      return { epoch: Number(epoch), cumulative: 0n, claimed: 0n, balance: await balanceOf(), token }
    }
    throw err
  }
  const cumulative = BigInt(proof.amount)
  const index = BigInt(proof.index)
  const claimable = await publicClient.readContract({
    ...distributor,
    functionName: 'claimable',
    args: [index, payout, cumulative, proof.proof],
  })
  if (claimable === 0n) {
    return { epoch: Number(epoch), cumulative, claimed: 0n, balance: await balanceOf(), token }
  }
  const wallet = createWalletClient({ account, chain, transport })
  const transaction = await wallet.writeContract({
    ...distributor,
    functionName: 'claim',
    args: [index, payout, cumulative, proof.proof],
  })
  const receipt = await publicClient.waitForTransactionReceipt({ hash: transaction })
  if (receipt.status !== 'success') throw new Error(`the claim transaction ${transaction} reverted`)
  return {
    epoch: Number(epoch),
    cumulative,
    claimed: claimable,
    transaction,
    gasUsed: receipt.gasUsed,
    balance: await balanceOf(),
    token,
  }
}
