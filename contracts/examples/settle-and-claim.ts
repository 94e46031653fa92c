/**
 * One epoch end to end on an in-process chain: deploy, a publisher deposits, the
 * settler posts the epoch's payout root (funded from the publisher's escrow), and a
 * node claims. Run from the repository root:
 *
 *   npx node contracts/examples/settle-and-claim.ts
 */
import {
  buildPayoutTree,
  deployShoal,
  publisherEscrowAbi,
  rewardDistributorAbi,
  shoalTokenAbi,
  startChain,
} from '@shoal/contracts'
import { formatEther, getAddress, parseEther } from 'viem'

const chain = await startChain()
try {
  const [admin, settler, publisher, node] = chain.walletClients
  if (!admin || !settler || !publisher || !node) throw new Error('need four accounts')
  const { publicClient } = chain
  const wait = (hash: `0x${string}`) => publicClient.waitForTransactionReceipt({ hash })

  // 1. Deploy; the settler key posts roots.
  const shoal = await deployShoal({
    walletClient: admin,
    publicClient,
    settler: settler.account.address,
    noticePeriodSeconds: 7 * 24 * 3600,
  })

  // 2. The publisher gets tokens and deposits 100 into escrow.
  await wait(
    await admin.writeContract({
      address: shoal.token,
      abi: shoalTokenAbi,
      functionName: 'mint',
      args: [publisher.account.address, parseEther('100')],
    }),
  )
  await wait(
    await publisher.writeContract({
      address: shoal.token,
      abi: shoalTokenAbi,
      functionName: 'approve',
      args: [shoal.escrow, parseEther('100')],
    }),
  )
  await wait(
    await publisher.writeContract({
      address: shoal.escrow,
      abi: publisherEscrowAbi,
      functionName: 'deposit',
      args: [parseEther('100')],
    }),
  )

  // 3. Epoch 1: the tracker measured 2.5 tokens of delivery by `node`, for this publisher.
  const nodeAddress = getAddress(node.account.address)
  const tree = buildPayoutTree([{ account: nodeAddress, amount: parseEther('2.5') }])
  const totalFunded = await publicClient.readContract({
    address: shoal.distributor,
    abi: rewardDistributorAbi,
    functionName: 'totalFunded',
  })
  const newMoney = tree.total - totalFunded // cumulative tree total minus what earlier epochs funded
  await wait(
    await settler.writeContract({
      address: shoal.distributor,
      abi: rewardDistributorAbi,
      functionName: 'postRoot',
      args: [1n, tree.root, newMoney, BigInt(tree.accounts), [publisher.account.address], [newMoney]],
    }),
  )

  // 4. The node (or anyone for it) claims with its proof.
  const receipt = await wait(
    await node.writeContract({
      address: shoal.distributor,
      abi: rewardDistributorAbi,
      functionName: 'claim',
      args: [BigInt(tree.indexOf(nodeAddress)!), nodeAddress, parseEther('2.5'), tree.proofFor(nodeAddress)],
    }),
  )
  const balance = await publicClient.readContract({
    address: shoal.token,
    abi: shoalTokenAbi,
    functionName: 'balanceOf',
    args: [nodeAddress],
  })
  const left = await publicClient.readContract({
    address: shoal.escrow,
    abi: publisherEscrowAbi,
    functionName: 'balanceOf',
    args: [publisher.account.address],
  })
  console.log(`node claimed ${formatEther(balance)} SHOAL (claim gas ${receipt.gasUsed})`)
  console.log(`publisher escrow left: ${formatEther(left)} SHOAL`)
} finally {
  await chain.close()
}
