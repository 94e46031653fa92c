/** Minting tokens into a publisher's escrow: what devnets, tests and benchmarks set up. */
import type { Account, Address, Chain, PublicClient, Transport, WalletClient } from 'viem'
import type { ShoalDeployment } from './deployShoal.ts'
import { publisherEscrowAbi, shoalTokenAbi } from './generated/index.ts'

/**
 * Mints `amount` to the minter (`walletClient`, holding MINTER_ROLE), approves the escrow
 * and deposits it for `publisher`; resolves once all three transactions are mined.
 *
 * @example
 * await fundEscrow({ walletClient: admin, publicClient, deployment, publisher, amount: parseEther('1000') })
 */
export async function fundEscrow(init: {
  walletClient: WalletClient<Transport, Chain | undefined, Account>
  publicClient: PublicClient
  deployment: Pick<ShoalDeployment, 'token' | 'escrow'>
  publisher: Address
  amount: bigint
}): Promise<void> {
  const { walletClient, publicClient, deployment, publisher, amount } = init
  const send = async (hash: Promise<`0x${string}`>) => {
    const receipt = await publicClient.waitForTransactionReceipt({ hash: await hash })
    if (receipt.status !== 'success') throw new Error(`transaction ${receipt.transactionHash} reverted`)
  }
  const chain = walletClient.chain ?? null
  await send(
    walletClient.writeContract({
      chain,
      address: deployment.token,
      abi: shoalTokenAbi,
      functionName: 'mint',
      args: [walletClient.account.address, amount],
    }),
  )
  await send(
    walletClient.writeContract({
      chain,
      address: deployment.token,
      abi: shoalTokenAbi,
      functionName: 'approve',
      args: [deployment.escrow, amount],
    }),
  )
  await send(
    walletClient.writeContract({
      chain,
      address: deployment.escrow,
      abi: publisherEscrowAbi,
      functionName: 'depositFor',
      args: [publisher, amount],
    }),
  )
}
