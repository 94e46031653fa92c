/**
 * A malicious token calls back into the escrow and the distributor in the middle of
 * their transfers. Every reentrant call must be refused (ReentrancyGuardReentrantCall)
 * while the outer call completes, and balances must stay right.
 */
import { type Address, decodeErrorResult, encodeFunctionData, type Hex } from 'viem'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import {
  buildPayoutTree,
  publisherEscrowAbi,
  publisherEscrowBytecode,
  ROLES,
  rewardDistributorAbi,
  rewardDistributorBytecode,
  type ShoalChain,
  startChain,
} from '../src/index.ts'
import { allErrorsAbi } from './fixture.ts'
import { reentrantTokenAbi, reentrantTokenBytecode } from './generated/ReentrantToken.ts'

const NOTICE = 60
const ONE = 10n ** 18n

describe('reentrancy through a malicious token', () => {
  let chain: ShoalChain
  let snapshot: Hex
  let token: Address
  let escrow: Address
  let distributor: Address
  const wallet = (i: number) => chain.walletClients[i]!
  const address = (i: number) => chain.accounts[i]!.address
  // 0 admin, 1 settler, 2 publisher, 3 node, 4 someone relaying claims
  const [ADMIN, SETTLER, PUBLISHER, NODE, RELAYER] = [0, 1, 2, 3, 4]

  const mined = async (hash: Promise<Hex>) => {
    const receipt = await chain.publicClient.waitForTransactionReceipt({ hash: await hash })
    expect(receipt.status).toBe('success')
    return receipt
  }
  const deploy = async (
    abi: typeof reentrantTokenAbi | typeof publisherEscrowAbi | typeof rewardDistributorAbi,
    bytecode: Hex,
    args: readonly unknown[],
  ) => (await mined(wallet(ADMIN).deployContract({ abi, bytecode, args } as never))).contractAddress!
  const tokenWrite = (i: number, functionName: string, args: readonly unknown[]) =>
    mined(wallet(i).writeContract({ address: token, abi: reentrantTokenAbi, functionName, args } as never))
  const escrowWrite = (i: number, functionName: string, args: readonly unknown[] = []) =>
    mined(wallet(i).writeContract({ address: escrow, abi: publisherEscrowAbi, functionName, args } as never))
  const distributorWrite = (i: number, functionName: string, args: readonly unknown[]) =>
    mined(
      wallet(i).writeContract({
        address: distributor,
        abi: rewardDistributorAbi,
        functionName,
        args,
      } as never),
    )
  const read = <T>(
    address: Address,
    abi: readonly unknown[],
    functionName: string,
    args: readonly unknown[] = [],
  ) => chain.publicClient.readContract({ address, abi, functionName, args } as never) as Promise<T>
  const balanceOf = (who: Address) => read<bigint>(token, reentrantTokenAbi, 'balanceOf', [who])
  const escrowBalance = (who: Address) => read<bigint>(escrow, publisherEscrowAbi, 'balanceOf', [who])

  /** Arms the token to call `target` with `data` inside its next transfer. */
  const arm = (target: Address, data: Hex) => tokenWrite(ADMIN, 'arm', [target, data])
  /** The recorded outcome of the token's last reentrant call, decoded. */
  async function lastReentry(): Promise<{ succeeded: boolean; error: string }> {
    const succeeded = await read<boolean>(token, reentrantTokenAbi, 'lastReentrySucceeded')
    const result = await read<Hex>(token, reentrantTokenAbi, 'lastReentryResult')
    const error = succeeded ? '' : decodeErrorResult({ abi: allErrorsAbi, data: result }).errorName
    return { succeeded, error }
  }
  /** Makes the token contract itself a publisher with `amount` deposited. */
  async function tokenAsPublisher(amount: bigint) {
    await tokenWrite(ADMIN, 'mint', [token, amount])
    const approve = encodeFunctionData({
      abi: reentrantTokenAbi,
      functionName: 'approve',
      args: [escrow, amount],
    })
    await tokenWrite(ADMIN, 'execute', [token, approve])
    await tokenWrite(ADMIN, 'execute', [
      escrow,
      encodeFunctionData({ abi: publisherEscrowAbi, functionName: 'deposit', args: [amount] }),
    ])
  }

  beforeAll(async () => {
    chain = await startChain({ accounts: 5 })
    token = await deploy(reentrantTokenAbi, reentrantTokenBytecode, [])
    escrow = await deploy(publisherEscrowAbi, publisherEscrowBytecode, [
      address(ADMIN),
      token,
      BigInt(NOTICE),
    ])
    distributor = await deploy(rewardDistributorAbi, rewardDistributorBytecode, [
      address(ADMIN),
      token,
      escrow,
    ])
    await escrowWrite(ADMIN, 'grantRole', [ROLES.DEBITER, distributor])
    await distributorWrite(ADMIN, 'grantRole', [ROLES.SETTLER, address(SETTLER)])
    // An honest publisher with 100 deposited.
    await tokenWrite(ADMIN, 'mint', [address(PUBLISHER), 100n * ONE])
    await tokenWrite(PUBLISHER, 'approve', [escrow, 100n * ONE])
    await escrowWrite(PUBLISHER, 'deposit', [100n * ONE])
    snapshot = await chain.testClient.snapshot()
  })
  afterAll(() => chain.close())
  beforeEach(async () => {
    await chain.testClient.revert({ id: snapshot })
    snapshot = await chain.testClient.snapshot()
  })

  it('escrow: a withdrawal cannot reenter withdraw to be paid twice', async () => {
    await tokenAsPublisher(10n * ONE)
    const request = encodeFunctionData({
      abi: publisherEscrowAbi,
      functionName: 'requestWithdrawal',
      args: [10n * ONE],
    })
    await tokenWrite(ADMIN, 'execute', [escrow, request])
    await chain.testClient.increaseTime({ seconds: NOTICE })
    const withdraw = encodeFunctionData({ abi: publisherEscrowAbi, functionName: 'withdraw' })
    await arm(escrow, withdraw)
    await tokenWrite(ADMIN, 'execute', [escrow, withdraw])

    expect(await read<bigint>(token, reentrantTokenAbi, 'reentryAttempts')).toBe(1n)
    expect(await lastReentry()).toEqual({ succeeded: false, error: 'ReentrancyGuardReentrantCall' })
    expect(await balanceOf(token)).toBe(10n * ONE)
    expect(await escrowBalance(token)).toBe(0n)
    // The honest publisher's money is untouched.
    expect(await balanceOf(escrow)).toBe(100n * ONE)
    expect(await escrowBalance(address(PUBLISHER))).toBe(100n * ONE)
  })

  it('escrow: a deposit cannot reenter deposit', async () => {
    await tokenWrite(ADMIN, 'mint', [address(PUBLISHER), 5n * ONE])
    await tokenWrite(PUBLISHER, 'approve', [escrow, 5n * ONE])
    await arm(escrow, encodeFunctionData({ abi: publisherEscrowAbi, functionName: 'deposit', args: [ONE] }))
    await escrowWrite(PUBLISHER, 'deposit', [5n * ONE])
    expect(await lastReentry()).toEqual({ succeeded: false, error: 'ReentrancyGuardReentrantCall' })
    expect(await escrowBalance(address(PUBLISHER))).toBe(105n * ONE)
    expect(await balanceOf(escrow)).toBe(105n * ONE)
  })

  it('distributor: a claim cannot reenter claim to be paid twice', async () => {
    const tree = buildPayoutTree([{ account: address(NODE), amount: 7n * ONE }])
    await distributorWrite(SETTLER, 'postRoot', [
      1n,
      tree.root,
      7n * ONE,
      1n,
      [address(PUBLISHER)],
      [7n * ONE],
    ])
    const proof = tree.proofFor(address(NODE))
    await arm(
      distributor,
      encodeFunctionData({
        abi: rewardDistributorAbi,
        functionName: 'claim',
        args: [0n, address(NODE), 7n * ONE, proof],
      }),
    )
    await distributorWrite(RELAYER, 'claim', [0n, address(NODE), 7n * ONE, proof])

    expect(await lastReentry()).toEqual({ succeeded: false, error: 'ReentrancyGuardReentrantCall' })
    expect(await balanceOf(address(NODE))).toBe(7n * ONE)
    expect(await balanceOf(distributor)).toBe(0n)
    expect(await read<bigint>(distributor, rewardDistributorAbi, 'claimedOf', [0n])).toBe(7n * ONE)
    expect(await read<bigint>(distributor, rewardDistributorAbi, 'totalClaimed')).toBe(7n * ONE)
  })

  it('distributor: claimMultiple cannot reenter claimMultiple', async () => {
    const tree = buildPayoutTree([{ account: address(NODE), amount: 3n * ONE }])
    await distributorWrite(SETTLER, 'postRoot', [
      1n,
      tree.root,
      3n * ONE,
      1n,
      [address(PUBLISHER)],
      [3n * ONE],
    ])
    const args = [[0n], [address(NODE)], [3n * ONE], [tree.proofFor(address(NODE))]] as const
    await arm(
      distributor,
      encodeFunctionData({ abi: rewardDistributorAbi, functionName: 'claimMultiple', args }),
    )
    await distributorWrite(RELAYER, 'claimMultiple', args)
    expect(await lastReentry()).toEqual({ succeeded: false, error: 'ReentrancyGuardReentrantCall' })
    expect(await balanceOf(address(NODE))).toBe(3n * ONE)
  })

  it('postRoot: funding transfers cannot reenter a claim', async () => {
    const tree1 = buildPayoutTree([{ account: address(NODE), amount: 2n * ONE }])
    await distributorWrite(SETTLER, 'postRoot', [
      1n,
      tree1.root,
      2n * ONE,
      1n,
      [address(PUBLISHER)],
      [2n * ONE],
    ])
    await arm(
      distributor,
      encodeFunctionData({
        abi: rewardDistributorAbi,
        functionName: 'claim',
        args: [0n, address(NODE), 2n * ONE, tree1.proofFor(address(NODE))],
      }),
    )
    const tree2 = buildPayoutTree([{ account: address(NODE), amount: 5n * ONE }])
    await distributorWrite(SETTLER, 'postRoot', [
      2n,
      tree2.root,
      3n * ONE,
      1n,
      [address(PUBLISHER)],
      [3n * ONE],
    ])
    expect(await lastReentry()).toEqual({ succeeded: false, error: 'ReentrancyGuardReentrantCall' })
    expect(await balanceOf(address(NODE))).toBe(0n)
    expect(await balanceOf(distributor)).toBe(5n * ONE)
    expect(await read<bigint>(distributor, rewardDistributorAbi, 'totalFunded')).toBe(5n * ONE)
    expect(await escrowBalance(address(PUBLISHER))).toBe(95n * ONE)
  })

  it('escrow: a debit cannot be reentered by a publisher withdrawing', async () => {
    await tokenAsPublisher(10n * ONE)
    const request = encodeFunctionData({
      abi: publisherEscrowAbi,
      functionName: 'requestWithdrawal',
      args: [10n * ONE],
    })
    await tokenWrite(ADMIN, 'execute', [escrow, request])
    await chain.testClient.increaseTime({ seconds: NOTICE })
    await arm(escrow, encodeFunctionData({ abi: publisherEscrowAbi, functionName: 'withdraw' }))
    const tree = buildPayoutTree([{ account: address(NODE), amount: 4n * ONE }])
    // The token-publisher is debited 4 while it tries to withdraw its 10 from inside the debit.
    await distributorWrite(SETTLER, 'postRoot', [1n, tree.root, 4n * ONE, 1n, [token], [4n * ONE]])
    expect(await lastReentry()).toEqual({ succeeded: false, error: 'ReentrancyGuardReentrantCall' })
    expect(await escrowBalance(token)).toBe(6n * ONE)
    expect(await balanceOf(token)).toBe(0n)
    expect(await balanceOf(distributor)).toBe(4n * ONE)
    // Its withdrawal afterwards pays what is left, once.
    await tokenWrite(ADMIN, 'execute', [
      escrow,
      encodeFunctionData({ abi: publisherEscrowAbi, functionName: 'withdraw' }),
    ])
    expect(await balanceOf(token)).toBe(6n * ONE)
    expect(await balanceOf(escrow)).toBe(100n * ONE)
  })
})
