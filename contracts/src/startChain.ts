import { pbkdf2Sync } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { InvalidArgumentError, throwIfAborted } from '@shoal/protocol'
import type { Account, Address, Chain, Hex, PublicClient, TestClient, Transport, WalletClient } from 'viem'
import { HDKey, hdKeyToAccount } from 'viem/accounts'
import {
  DEFAULT_ACCOUNT_BALANCE,
  DEFAULT_ACCOUNT_COUNT,
  DEFAULT_CHAIN_ID,
  DEFAULT_HARDFORK,
  DEV_MNEMONIC,
} from './constants.ts'
import {
  type Eip1193Provider,
  type JsonRpcServer,
  type ServeJsonRpcOptions,
  serveJsonRpc,
} from './serveJsonRpc.ts'

export interface StartChainOptions {
  /** Funded accounts (default 10), derived from Hardhat's development mnemonic. */
  accounts?: number
  /** Wei each account starts with (default 10,000 ETH). */
  accountBalance?: bigint
  /** Chain id (default 31337). */
  chainId?: number
  /** EVM hardfork (default `osaka`, what the contracts are compiled for). */
  hardfork?: string
  signal?: AbortSignal
}

/** A funded development account. Its key is public: local chains only. */
export interface DevAccount {
  address: Address
  privateKey: Hex
}

/** An in-process EVM chain (Hardhat 3's EDR) with viem clients on it. */
export interface ShoalChain {
  readonly chainId: number
  /** The chain's EIP-1193 provider (what the viem clients talk to). */
  readonly provider: Eip1193Provider
  readonly publicClient: PublicClient<Transport, Chain>
  /** One wallet client per funded account, in `accounts` order (the first is the deployer). */
  readonly walletClients: ReadonlyArray<WalletClient<Transport, Chain, Account>>
  /** Hardhat test actions: `increaseTime`, `mine`, `setBalance`, `snapshot`, `revert`… */
  readonly testClient: TestClient<'hardhat', Transport, Chain>
  readonly accounts: readonly DevAccount[]
  /**
   * Serves this chain as JSON-RPC over HTTP on 127.0.0.1 (by default, any free port),
   * so wallets and other processes can connect. Closed by `close()` too.
   */
  serve(options?: ServeJsonRpcOptions): Promise<JsonRpcServer>
  /** Closes the servers started by `serve` and the chain. */
  close(): Promise<void>
}

/** The contracts package root: the Hardhat project root, whatever the cwd is. */
const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url))

/**
 * Starts an in-process EVM chain: Hardhat 3's EDR through hardhat-viem, with a
 * runtime built from a config object (no config file, no compile step, no network
 * access), automining every transaction. Deploy Shoal on it with `deployShoal`.
 *
 * @example
 * const chain = await startChain()
 * const [deployer] = chain.walletClients
 * const shoal = await deployShoal({ walletClient: deployer!, publicClient: chain.publicClient })
 * await chain.close()
 */
export async function startChain(options: StartChainOptions = {}): Promise<ShoalChain> {
  const count = options.accounts ?? DEFAULT_ACCOUNT_COUNT
  const balance = options.accountBalance ?? DEFAULT_ACCOUNT_BALANCE
  const chainId = options.chainId ?? DEFAULT_CHAIN_ID
  const hardfork = options.hardfork ?? DEFAULT_HARDFORK
  if (!Number.isInteger(count) || count < 1 || count > 1000) {
    throw new InvalidArgumentError(`accounts must be an integer in 1 … 1000, got ${count}`)
  }
  if (typeof balance !== 'bigint' || balance < 0n) {
    throw new InvalidArgumentError('accountBalance must be a non-negative bigint')
  }
  if (!Number.isSafeInteger(chainId) || chainId < 1) {
    throw new InvalidArgumentError(`chainId must be a positive integer, got ${chainId}`)
  }
  throwIfAborted(options.signal)

  const accounts = devAccounts(count)
  // Loaded here, not at import time: Hardhat and EDR are only needed by whoever starts a chain.
  const [{ createHardhatRuntimeEnvironment }, { default: hardhatViem }] = await Promise.all([
    import('hardhat/hre'),
    import('@nomicfoundation/hardhat-viem'),
  ])
  const hre = await createHardhatRuntimeEnvironment(
    {
      plugins: [hardhatViem],
      networks: {
        shoal: {
          type: 'edr-simulated',
          chainType: 'l1',
          chainId,
          hardfork,
          accounts: accounts.map((a) => ({ privateKey: a.privateKey, balance })),
          mining: { auto: true },
        },
      },
    },
    {},
    PROJECT_ROOT,
  )
  const connection = await hre.network.create('shoal')
  try {
    throwIfAborted(options.signal)
    const [publicClient, walletClients, testClient] = await Promise.all([
      connection.viem.getPublicClient(),
      connection.viem.getWalletClients(),
      connection.viem.getTestClient(),
    ])
    const servers = new Set<JsonRpcServer>()
    let closed = false
    return {
      chainId,
      provider: connection.provider,
      publicClient,
      walletClients,
      testClient: testClient as TestClient<'hardhat', Transport, Chain>,
      accounts,
      async serve(serveOptions) {
        const server = await serveJsonRpc(connection.provider, serveOptions)
        servers.add(server)
        return server
      },
      async close() {
        if (closed) return
        closed = true
        await Promise.all([...servers].map((s) => s.close()))
        await connection.close()
      },
    }
  } catch (err) {
    await connection.close()
    throw err
  }
}

/** The first `count` accounts of Hardhat's development mnemonic (BIP-44, m/44'/60'/0'/0/i). */
function devAccounts(count: number): DevAccount[] {
  // BIP-39 seed: PBKDF2-HMAC-SHA512, 2048 rounds, salt "mnemonic" (no passphrase).
  const seed = pbkdf2Sync(DEV_MNEMONIC.normalize('NFKD'), 'mnemonic', 2048, 64, 'sha512')
  const root = HDKey.fromMasterSeed(seed)
  const out: DevAccount[] = []
  for (let i = 0; i < count; i++) {
    const account = hdKeyToAccount(root, { addressIndex: i })
    const key = account.getHdKey().privateKey
    if (key === null) throw new Error('HD derivation produced no private key')
    out.push({ address: account.address, privateKey: `0x${Buffer.from(key).toString('hex')}` })
  }
  return out
}
