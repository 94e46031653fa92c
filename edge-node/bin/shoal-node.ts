#!/usr/bin/env node
/**
 * `shoal-node`: the edge node's command line. The only place that reads argv, the
 * environment and files; everything else takes plain options.
 */
import { mkdir, readFile } from 'node:fs/promises'
import {
  createServiceKey,
  exitOnFatal,
  keystoreAddress,
  loadOrCreateServiceKey,
  type ServiceKeyInit,
  serviceKeyFiles,
  untilStopped,
} from '@shoal/client-sdk/node'
import { InvalidArgumentError } from '@shoal/protocol'
import pino from 'pino'
import { formatUnits } from 'viem'
import { configPathOf, parseCommand, USAGE } from '../src/cli/args.ts'
import { createEdgeNode } from '../src/node.ts'
import { claimEarnings } from '../src/receipts/claim.ts'
import { createReceiptSubmitter } from '../src/receipts/submitter.ts'
import { announceNode } from '../src/tracker/index.ts'

/**
 * scrypt cost for node keys: 2^15 needs 32 MiB and a fraction of a second, where geth's
 * wallet default (2^18) needs 256 MiB at every start, too much for a home router.
 */
const NODE_KEY_SCRYPT_N = 2 ** 15

const keyInit = (dataDir: string): ServiceKeyInit => ({
  dataDir,
  name: 'node',
  env: process.env,
  kdf: { n: NODE_KEY_SCRYPT_N },
})

async function main(argv: string[]): Promise<number> {
  const configPath = configPathOf(argv, process.env)
  let config: Record<string, unknown> | undefined
  if (configPath !== undefined) {
    let text: string
    try {
      text = await readFile(configPath, 'utf8')
    } catch (err) {
      throw new InvalidArgumentError(`cannot read config file ${configPath}: ${(err as Error).message}`)
    }
    try {
      config = JSON.parse(text) as Record<string, unknown>
    } catch (err) {
      throw new InvalidArgumentError(`config file ${configPath} is not valid JSON: ${(err as Error).message}`)
    }
    if (typeof config !== 'object' || config === null || Array.isArray(config)) {
      throw new InvalidArgumentError(`config file ${configPath} must hold a JSON object`)
    }
  }
  const command = parseCommand(argv, process.env, config)

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
      const { keyFile } = serviceKeyFiles(command.dataDir, 'node')
      const account = await createServiceKey({ ...keyInit(command.dataDir) })
      process.stdout.write(`created ${keyFile}\naddress ${account.address}\n`)
      return 0
    }
    case 'key-show':
      process.stdout.write(`${await keystoreAddress(serviceKeyFiles(command.dataDir, 'node').keyFile)}\n`)
      return 0
    case 'claim': {
      const account = await loadOrCreateServiceKey({ ...keyInit(command.dataDir) })
      const r = await claimEarnings(
        {
          trackerUrl: command.trackerUrl,
          rpcUrl: command.rpcUrl,
          distributor: command.distributor,
          ...(command.payout === undefined ? {} : { payout: command.payout }),
        },
        account,
      )
      const tokens = (v: bigint) => formatUnits(v, 18)
      process.stdout.write(
        r.claimed === 0n
          ? `nothing to claim (epoch ${r.epoch}: earned ${tokens(r.cumulative)} SHOAL in all)\nbalance ${tokens(r.balance)} SHOAL\n`
          : `claimed ${tokens(r.claimed)} SHOAL (epoch ${r.epoch}, tx ${r.transaction}, gas ${r.gasUsed})\nbalance ${tokens(r.balance)} SHOAL\n`,
      )
      return 0
    }
    case 'start': {
      const log = pino({ level: command.logLevel, base: { service: 'shoal-node' } })
      const options = { ...command.options }
      if (command.tlsFiles !== undefined) {
        options.tls = {
          cert: await readFile(command.tlsFiles.cert),
          key: await readFile(command.tlsFiles.key),
        }
      }
      await mkdir(options.dataDir, { recursive: true, mode: 0o700 })
      const account = await loadOrCreateServiceKey({ ...keyInit(options.dataDir), log })
      const node = createEdgeNode(options, { logger: log, account })
      await node.start()
      process.stdout.write(`shoal-node ${account.address} serving at ${node.url}\n`)
      const announcer =
        options.trackerUrl === undefined
          ? undefined
          : await announceNode(node, account, command.announce, { logger: log })
      // ended epochs' receipts go to the tracker for settlement
      const submitter =
        options.trackerUrl === undefined
          ? undefined
          : createReceiptSubmitter(
              { trackerUrl: options.trackerUrl, epochSeconds: node.options.epochSeconds },
              { book: node.receipts, account, logger: log },
            )
      submitter?.start()
      await untilStopped(
        async () => {
          await submitter?.stop()
          await announcer?.stop()
          await node.stop()
        },
        log,
        'finishing in-flight responses',
      )
      return 0
    }
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => exitOnFatal('shoal-node', err),
)
