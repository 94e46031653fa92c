#!/usr/bin/env node
/**
 * `shoal-node`: the edge node's command line. The only place that reads argv, the
 * environment and files; everything else takes plain options.
 */
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { createKeystoreFile, keystoreAddress, loadKeystoreFile } from '@shoal/client-sdk/node'
import { InvalidArgumentError, isShoalError } from '@shoal/protocol'
import pino from 'pino'
import type { LocalAccount } from 'viem/accounts'
import { configPathOf, parseCommand, USAGE } from '../src/cli/args.ts'
import { createEdgeNode } from '../src/node.ts'

const KEY_FILE = 'node-key.json'
/**
 * scrypt cost for node keys: 2^15 needs 32 MiB and a fraction of a second, where geth's
 * wallet default (2^18) needs 256 MiB at every start, too much for a home router.
 */
const NODE_KEY_SCRYPT_N = 2 ** 15
const PASS_FILE = 'node-key.pass'

async function promptHidden(question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: true })
  const output = rl as unknown as { _writeToOutput: (s: string) => void }
  process.stdout.write(question)
  output._writeToOutput = () => {}
  const answer = await new Promise<string>((resolve) => rl.question('', resolve))
  rl.close()
  process.stdout.write('\n')
  return answer
}

async function passphraseFor(dataDir: string, creating: boolean): Promise<string> {
  const fromEnv = process.env.SHOAL_KEY_PASSPHRASE
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv
  const passFile = join(dataDir, PASS_FILE)
  if (existsSync(passFile)) return (await readFile(passFile, 'utf8')).trim()
  if (process.stdin.isTTY === true) {
    const first = await promptHidden('Key passphrase: ')
    if (creating && (await promptHidden('Repeat passphrase: ')) !== first) {
      throw new InvalidArgumentError('the passphrases do not match')
    }
    if (first === '') throw new InvalidArgumentError('an empty passphrase is not allowed')
    return first
  }
  throw new InvalidArgumentError('set SHOAL_KEY_PASSPHRASE (no terminal to ask for the key passphrase)')
}

/**
 * The node's key: loaded from the data dir, or created on first start. Unattended
 * nodes (no passphrase in the environment, no terminal) get a random passphrase kept
 * beside the key with mode 0600: as safe as the data dir's permissions, and said so.
 */
async function nodeAccount(dataDir: string, log: pino.Logger): Promise<LocalAccount> {
  const keyFile = join(dataDir, KEY_FILE)
  if (existsSync(keyFile)) return loadKeystoreFile(keyFile, await passphraseFor(dataDir, false))
  let passphrase = process.env.SHOAL_KEY_PASSPHRASE
  if (passphrase === undefined || passphrase === '') {
    passphrase = randomBytes(32).toString('base64url')
    await writeFile(join(dataDir, PASS_FILE), `${passphrase}\n`, { mode: 0o600, flag: 'wx' })
    log.warn(
      { keyFile, passFile: join(dataDir, PASS_FILE) },
      'created a node key protected by a random passphrase stored beside it; set SHOAL_KEY_PASSPHRASE to choose your own',
    )
  }
  const account = await createKeystoreFile(keyFile, passphrase, { n: NODE_KEY_SCRYPT_N })
  log.info({ address: account.address }, 'created node key')
  return account
}

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
      const keyFile = join(command.dataDir, KEY_FILE)
      const account = await createKeystoreFile(keyFile, await passphraseFor(command.dataDir, true), {
        n: NODE_KEY_SCRYPT_N,
      })
      process.stdout.write(`created ${keyFile}\naddress ${account.address}\n`)
      return 0
    }
    case 'key-show':
      process.stdout.write(`${await keystoreAddress(join(command.dataDir, KEY_FILE))}\n`)
      return 0
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
      const account = await nodeAccount(options.dataDir, log)
      const node = createEdgeNode(options, { logger: log, account })
      await node.start()
      process.stdout.write(`shoal-node ${account.address} serving at ${node.url}\n`)
      await new Promise<void>((resolve) => {
        let stopping = false
        const stop = (signal: string) => {
          if (stopping) {
            log.warn({ signal }, 'second signal: exiting now')
            process.exit(1)
          }
          stopping = true
          log.info({ signal }, 'stopping: finishing in-flight responses')
          node.stop().then(resolve, (err: unknown) => {
            log.error({ err: (err as Error).message }, 'stop failed')
            resolve()
          })
        }
        process.on('SIGTERM', () => stop('SIGTERM'))
        process.on('SIGINT', () => stop('SIGINT'))
      })
      return 0
    }
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (isShoalError(err)) {
      process.stderr.write(`shoal-node: ${err.message}\n`)
      process.exit(
        err.code === 'SHOAL_ERR_INVALID_ARGUMENT' || err.code === 'SHOAL_ERR_INVALID_FORMAT' ? 2 : 1,
      )
    }
    process.stderr.write(`shoal-node: ${(err as Error).stack ?? String(err)}\n`)
    process.exit(1)
  },
)
