/**
 * Shared test fixture: one in-process chain per test file with Shoal deployed once;
 * `reset()` reverts to the deployed state before each test (EVM snapshot), so tests
 * are isolated and fast.
 */
import {
  type Abi,
  type Account,
  type Address,
  BaseError,
  type Chain,
  ContractFunctionRevertedError,
  decodeErrorResult,
  getAddress,
  getContract,
  type Hex,
  type Transport,
  type WalletClient,
} from 'viem'
import { expect } from 'vitest'
import {
  deployShoal,
  publisherEscrowAbi,
  rewardDistributorAbi,
  type ShoalChain,
  type ShoalDeployment,
  shoalTokenAbi,
  startChain,
} from '../src/index.ts'

export const NOTICE_PERIOD = 3600
export const ONE = 10n ** 18n

type Wallet = WalletClient<Transport, Chain, Account>

/** Errors any of the three contracts can revert with, so every revert decodes by name. */
const errorsOf = (abi: Abi) => abi.filter((item) => item.type === 'error')
export const allErrorsAbi = [
  ...errorsOf(shoalTokenAbi),
  ...errorsOf(publisherEscrowAbi),
  ...errorsOf(rewardDistributorAbi),
]

/** A wallet's address, checksummed (JSON-RPC accounts come back lowercase). */
export const addr = (wallet: Wallet): Address => getAddress(wallet.account.address)

export interface Fixture {
  chain: ShoalChain
  shoal: ShoalDeployment
  admin: Wallet
  settler: Wallet
  publishers: Wallet[]
  nodes: Wallet[]
  stranger: Wallet
  token: (wallet?: Wallet) => ReturnType<typeof tokenAt>
  escrow: (wallet?: Wallet) => ReturnType<typeof escrowAt>
  distributor: (wallet?: Wallet) => ReturnType<typeof distributorAt>
  /** Reverts the chain to the state right after deployment. */
  reset: () => Promise<void>
  close: () => Promise<void>
}

function tokenAt(chain: ShoalChain, address: Address, wallet: Wallet) {
  return getContract({
    address,
    abi: [...shoalTokenAbi, ...allErrorsAbi],
    client: { public: chain.publicClient, wallet },
  })
}
function escrowAt(chain: ShoalChain, address: Address, wallet: Wallet) {
  return getContract({
    address,
    abi: [...publisherEscrowAbi, ...allErrorsAbi],
    client: { public: chain.publicClient, wallet },
  })
}
function distributorAt(chain: ShoalChain, address: Address, wallet: Wallet) {
  return getContract({
    address,
    abi: [...rewardDistributorAbi, ...allErrorsAbi],
    client: { public: chain.publicClient, wallet },
  })
}

export async function createFixture(): Promise<Fixture> {
  const chain = await startChain({ accounts: 12 })
  const w = chain.walletClients
  const admin = w[0]!
  const settler = w[1]!
  const publishers = [w[2]!, w[3]!]
  const nodes = [w[4]!, w[5]!, w[6]!, w[7]!]
  const stranger = w[8]!
  const shoal = await deployShoal({
    walletClient: admin,
    publicClient: chain.publicClient,
    settler: settler.account.address,
    noticePeriodSeconds: NOTICE_PERIOD,
  })
  let snapshot = await chain.testClient.snapshot()
  return {
    chain,
    shoal,
    admin,
    settler,
    publishers,
    nodes,
    stranger,
    token: (wallet = admin) => tokenAt(chain, shoal.token, wallet),
    escrow: (wallet = admin) => escrowAt(chain, shoal.escrow, wallet),
    distributor: (wallet = admin) => distributorAt(chain, shoal.distributor, wallet),
    async reset() {
      await chain.testClient.revert({ id: snapshot })
      snapshot = await chain.testClient.snapshot()
    },
    close: () => chain.close(),
  }
}

/** Waits for a transaction and fails the test unless it succeeded; returns the receipt. */
export async function mined(f: Pick<Fixture, 'chain'>, hash: Promise<Hex> | Hex) {
  const receipt = await f.chain.publicClient.waitForTransactionReceipt({ hash: await hash })
  expect(receipt.status).toBe('success')
  return receipt
}

/**
 * Expects `call` to revert with the custom error `name`, decoded with `abi` (by default
 * the errors of all of Shoal's contracts); returns the error's arguments. Works for
 * contract calls (viem decodes them) and for deployments (the revert data is found on
 * the provider's error and decoded here).
 */
export async function expectRevert(
  call: Promise<unknown>,
  name: string,
  abi: Abi = allErrorsAbi,
): Promise<readonly unknown[]> {
  const err = await call.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err, `expected a revert with ${name}`).toBeInstanceOf(BaseError)
  const reverted = (err as BaseError).walk(
    (e) => e instanceof ContractFunctionRevertedError,
  ) as ContractFunctionRevertedError | null
  if (reverted?.data !== undefined) {
    expect(reverted.data.errorName).toBe(name)
    return (reverted.data.args ?? []) as readonly unknown[]
  }
  const data = revertData(err)
  expect(data, `expected revert data for ${name} in ${String(err)}`).toBeDefined()
  const decoded = decodeErrorResult({ abi, data: data! })
  expect(decoded.errorName).toBe(name)
  return (decoded.args ?? []) as readonly unknown[]
}

/** The revert data somewhere on an error's `cause` chain. */
function revertData(err: unknown): Hex | undefined {
  for (let e = err as { data?: unknown; cause?: unknown } | undefined; e != null; e = e.cause as typeof e) {
    if (typeof e.data === 'string' && e.data.startsWith('0x') && e.data.length >= 10) return e.data as Hex
    const nested = (e.data as { data?: unknown } | undefined)?.data
    if (typeof nested === 'string' && nested.startsWith('0x') && nested.length >= 10) return nested as Hex
  }
  return undefined
}

/** Mints to each publisher and deposits `amount` into its escrow balance. */
export async function fundPublishers(f: Fixture, amount: bigint): Promise<void> {
  for (const publisher of f.publishers) {
    await mined(f, f.token().write.mint([publisher.account.address, amount]))
    await mined(f, f.token(publisher).write.approve([f.shoal.escrow, amount]))
    await mined(f, f.escrow(publisher).write.deposit([amount]))
  }
}
