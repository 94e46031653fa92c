import { InvalidArgumentError, throwIfAborted, UpstreamError } from '@shoal/protocol'
import {
  type Abi,
  type Account,
  type Address,
  type Chain,
  getAddress,
  type Hash,
  isAddress,
  isAddressEqual,
  type PublicClient,
  type Transport,
  type WalletClient,
} from 'viem'
import { DEFAULT_NOTICE_PERIOD_SECONDS } from './constants.ts'
import {
  publisherEscrowAbi,
  publisherEscrowBytecode,
  rewardDistributorAbi,
  rewardDistributorBytecode,
  shoalTokenAbi,
  shoalTokenBytecode,
} from './generated/index.ts'
import { ROLES } from './roles.ts'

/** Longest notice period PublisherEscrow accepts: 365 days. */
const MAX_NOTICE_PERIOD_SECONDS = 365 * 24 * 60 * 60

export interface DeployShoalOptions {
  /** Sends the transactions; its account deploys. */
  walletClient: WalletClient<Transport, Chain | undefined, Account>
  /** Waits for receipts. */
  publicClient: PublicClient
  /** Admin of all three contracts, minter and pauser; default the deployer. */
  admin?: Address
  /** Holder of RewardDistributor's SETTLER_ROLE (the tracker's settlement key); default `admin`. */
  settler?: Address
  /** PublisherEscrow's withdrawal notice period in seconds; default 7 days. */
  noticePeriodSeconds?: number
  signal?: AbortSignal
}

/** Where Shoal's contracts live. */
export interface ShoalDeployment {
  token: Address
  escrow: Address
  distributor: Address
  /** Block of the first deployment, where log scans can start. */
  fromBlock: bigint
}

/**
 * Deploys ShoalToken, PublisherEscrow and RewardDistributor and wires their roles: the
 * distributor holds the escrow's DEBITER_ROLE, `settler` holds SETTLER_ROLE, `admin`
 * holds every contract's DEFAULT_ADMIN_ROLE plus MINTER_ROLE and PAUSER_ROLE. When
 * `admin` is not the deployer, the deployer hands admin over and renounces it.
 *
 * @example
 * const chain = await startChain()
 * const [deployer, settler] = chain.walletClients
 * const { token, escrow, distributor } = await deployShoal({
 *   walletClient: deployer!,
 *   publicClient: chain.publicClient,
 *   settler: settler!.account.address,
 *   noticePeriodSeconds: 3600,
 * })
 */
export async function deployShoal(options: DeployShoalOptions): Promise<ShoalDeployment> {
  const { walletClient, publicClient, signal } = options
  if (walletClient?.account === undefined) throw new InvalidArgumentError('walletClient needs an account')
  if (publicClient === undefined) throw new InvalidArgumentError('publicClient is required')
  const deployer = walletClient.account.address
  const admin = checkAddress('admin', options.admin ?? deployer)
  const settler = checkAddress('settler', options.settler ?? admin)
  const noticePeriod = options.noticePeriodSeconds ?? DEFAULT_NOTICE_PERIOD_SECONDS
  if (!Number.isInteger(noticePeriod) || noticePeriod < 1 || noticePeriod > MAX_NOTICE_PERIOD_SECONDS) {
    throw new InvalidArgumentError(
      `noticePeriodSeconds must be an integer in 1 … ${MAX_NOTICE_PERIOD_SECONDS}, got ${noticePeriod}`,
    )
  }
  const account = walletClient.account
  const chain = walletClient.chain

  const mined = async (hash: Hash, what: string) => {
    const receipt = await publicClient.waitForTransactionReceipt({ hash })
    if (receipt.status !== 'success') throw new UpstreamError(`${what} reverted (transaction ${hash})`)
    return receipt
  }
  const deploy = async (what: string, abi: Abi, bytecode: Hash, args: readonly unknown[]) => {
    throwIfAborted(signal)
    const hash = await walletClient.deployContract({ abi, bytecode, args, account, chain })
    const receipt = await mined(hash, `deploying ${what}`)
    if (receipt.contractAddress == null) throw new UpstreamError(`deploying ${what} created no contract`)
    return { address: getAddress(receipt.contractAddress), blockNumber: receipt.blockNumber }
  }
  const grant = async (
    abi: Abi,
    address: Address,
    fn: 'grantRole' | 'renounceRole',
    role: Hash,
    who: Address,
  ) => {
    throwIfAborted(signal)
    const hash = await walletClient.writeContract({
      abi,
      address,
      functionName: fn,
      args: [role, who],
      account,
      chain,
    })
    await mined(hash, `${fn} on ${address}`)
  }

  const tokenReceipt = await deploy('ShoalToken', shoalTokenAbi, shoalTokenBytecode, [deployer])
  const token = tokenReceipt.address
  const escrow = (
    await deploy('PublisherEscrow', publisherEscrowAbi, publisherEscrowBytecode, [
      deployer,
      token,
      BigInt(noticePeriod),
    ])
  ).address
  const distributor = (
    await deploy('RewardDistributor', rewardDistributorAbi, rewardDistributorBytecode, [
      deployer,
      token,
      escrow,
    ])
  ).address

  await grant(shoalTokenAbi, token, 'grantRole', ROLES.MINTER, admin)
  await grant(publisherEscrowAbi, escrow, 'grantRole', ROLES.DEBITER, distributor)
  await grant(rewardDistributorAbi, distributor, 'grantRole', ROLES.SETTLER, settler)
  await grant(rewardDistributorAbi, distributor, 'grantRole', ROLES.PAUSER, admin)
  if (!isAddressEqual(admin, deployer)) {
    const contracts: Array<[Abi, Address]> = [
      [shoalTokenAbi, token],
      [publisherEscrowAbi, escrow],
      [rewardDistributorAbi, distributor],
    ]
    for (const [abi, address] of contracts) {
      await grant(abi, address, 'grantRole', ROLES.DEFAULT_ADMIN, admin)
      await grant(abi, address, 'renounceRole', ROLES.DEFAULT_ADMIN, deployer)
    }
  }
  return { token, escrow, distributor, fromBlock: tokenReceipt.blockNumber }
}

function checkAddress(name: string, value: unknown): Address {
  if (typeof value !== 'string' || !isAddress(value, { strict: false })) {
    throw new InvalidArgumentError(`${name} must be a 20-byte hex address`)
  }
  return getAddress(value)
}
