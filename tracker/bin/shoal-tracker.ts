#!/usr/bin/env node
/**
 * `shoal-tracker`: the tracker's command line. The only place that reads argv, the
 * environment and files; everything else takes plain options. Bad configuration exits
 * with status 2 and a message; other failures with 1.
 */
import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import {
  createServiceKey,
  exitOnFatal,
  keystoreAddress,
  loadOrCreateServiceKey,
  serviceKeyFiles,
  untilStopped,
} from '@shoal/client-sdk/node'
import pino from 'pino'
import { Registry } from 'prom-client'
import { createPublicClient, createWalletClient, defineChain, getAddress, http } from 'viem'
import { parseCommand, USAGE } from '../src/cli/args.ts'
import { resolveTrackerOptions } from '../src/options.ts'
import { createViemSettlementChain, type SettlementChain } from '../src/settlement/chain.ts'
import { createPostgresStore } from '../src/store/postgres.ts'
import { createSqliteStore } from '../src/store/sqlite.ts'
import { createTracker } from '../src/tracker.ts'

const DB_FILE = 'tracker.db'

async function main(argv: string[]): Promise<number> {
  const command = parseCommand(argv, process.env)
  switch (command.kind) {
    case 'help':
      process.stdout.write(USAGE)
      return 0
    case 'version': {
      const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as {
        version: string
      }
      process.stdout.write(`${pkg.version}\n`)
      return 0
    }
    case 'key-create': {
      await mkdir(command.dataDir, { recursive: true, mode: 0o700 })
      const { keyFile } = serviceKeyFiles(command.dataDir, 'tracker')
      const account = await createServiceKey({ dataDir: command.dataDir, name: 'tracker', env: process.env })
      process.stdout.write(`created ${keyFile}\naddress ${account.address}\n`)
      return 0
    }
    case 'key-show':
      process.stdout.write(`${await keystoreAddress(serviceKeyFiles(command.dataDir, 'tracker').keyFile)}\n`)
      return 0
    case 'start': {
      // Validate every option before touching the disk or the network.
      resolveTrackerOptions(command.options)
      const log = pino({ level: command.logLevel, base: { service: 'shoal-tracker' } })
      await mkdir(command.dataDir, { recursive: true, mode: 0o700 })
      const account = await loadOrCreateServiceKey({
        dataDir: command.dataDir,
        name: 'tracker',
        env: process.env,
        log,
      })
      const store =
        command.postgres !== undefined
          ? createPostgresStore({ connectionString: command.postgres })
          : createSqliteStore({ path: join(command.dataDir, DB_FILE) })
      let chain: SettlementChain | undefined
      if (command.chain !== undefined) {
        const transport = http(command.chain.rpcUrl)
        const publicClient = createPublicClient({ transport })
        const id = await publicClient.getChainId()
        const onChain = defineChain({
          id,
          name: `chain ${id}`,
          nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
          rpcUrls: { default: { http: [command.chain.rpcUrl] } },
        })
        chain = createViemSettlementChain({
          publicClient: createPublicClient({ chain: onChain, transport }),
          walletClient: createWalletClient({ account, chain: onChain, transport }),
          distributor: getAddress(command.chain.distributor),
          escrow: getAddress(command.chain.escrow),
        })
      }
      const tracker = createTracker(command.options, {
        store,
        account,
        logger: log,
        register: new Registry(),
        ...(chain !== undefined ? { chain } : {}),
      })
      await tracker.start()
      process.stdout.write(`shoal-tracker ${account.address} serving at ${tracker.url}\n`)
      await untilStopped(() => tracker.stop(), log, 'finishing in-flight requests and writing state')
      return 0
    }
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => exitOnFatal('shoal-tracker', err),
)
