#!/usr/bin/env node
/**
 * `shoal-tracker`: the tracker's command line. The only place that reads argv, the
 * environment and files; everything else takes plain options. Bad configuration exits
 * with status 2 and a message; other failures with 1.
 */
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { createKeystoreFile, keystoreAddress, loadKeystoreFile } from '@shoal/client-sdk/node'
import { InvalidArgumentError, isShoalError } from '@shoal/protocol'
import pino from 'pino'
import { Registry } from 'prom-client'
import type { LocalAccount } from 'viem/accounts'
import { parseCommand, USAGE } from '../src/cli/args.ts'
import { resolveTrackerOptions } from '../src/options.ts'
import { createPostgresStore } from '../src/store/postgres.ts'
import { createSqliteStore } from '../src/store/sqlite.ts'
import { createTracker } from '../src/tracker.ts'

const KEY_FILE = 'tracker-key.json'
const PASS_FILE = 'tracker-key.pass'
const DB_FILE = 'tracker.db'

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

/** The tracker key: loaded from the data dir, or created on first start. */
async function trackerAccount(dataDir: string, log: pino.Logger): Promise<LocalAccount> {
  const keyFile = join(dataDir, KEY_FILE)
  if (existsSync(keyFile)) {
    try {
      return await loadKeystoreFile(keyFile, await passphraseFor(dataDir, false))
    } catch (err) {
      if (isShoalError(err) && err.code === 'SHOAL_ERR_INVALID_SIGNATURE') {
        throw new InvalidArgumentError(`cannot open ${keyFile}: wrong passphrase (SHOAL_KEY_PASSPHRASE)`)
      }
      throw err
    }
  }
  let passphrase = process.env.SHOAL_KEY_PASSPHRASE
  if (passphrase === undefined || passphrase === '') {
    passphrase = randomBytes(32).toString('base64url')
    await writeFile(join(dataDir, PASS_FILE), `${passphrase}\n`, { mode: 0o600, flag: 'wx' })
    log.warn(
      { keyFile, passFile: join(dataDir, PASS_FILE) },
      'created a tracker key protected by a random passphrase stored beside it; set SHOAL_KEY_PASSPHRASE to choose your own',
    )
  }
  const account = await createKeystoreFile(keyFile, passphrase)
  log.info({ address: account.address }, 'created tracker key')
  return account
}

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
      const keyFile = join(command.dataDir, KEY_FILE)
      const account = await createKeystoreFile(keyFile, await passphraseFor(command.dataDir, true))
      process.stdout.write(`created ${keyFile}\naddress ${account.address}\n`)
      return 0
    }
    case 'key-show':
      process.stdout.write(`${await keystoreAddress(join(command.dataDir, KEY_FILE))}\n`)
      return 0
    case 'start': {
      // Validate every option before touching the disk or the network.
      resolveTrackerOptions(command.options)
      const log = pino({ level: command.logLevel, base: { service: 'shoal-tracker' } })
      await mkdir(command.dataDir, { recursive: true, mode: 0o700 })
      const account = await trackerAccount(command.dataDir, log)
      const store =
        command.postgres !== undefined
          ? createPostgresStore({ connectionString: command.postgres })
          : createSqliteStore({ path: join(command.dataDir, DB_FILE) })
      const tracker = createTracker(command.options, {
        store,
        account,
        logger: log,
        register: new Registry(),
      })
      await tracker.start()
      process.stdout.write(`shoal-tracker ${account.address} serving at ${tracker.url}\n`)
      await new Promise<void>((resolve) => {
        let stopping = false
        const stop = (signal: string) => {
          if (stopping) {
            log.warn({ signal }, 'second signal: exiting now')
            process.exit(1)
          }
          stopping = true
          log.info({ signal }, 'stopping: finishing in-flight requests and writing state')
          tracker.stop().then(resolve, (err: unknown) => {
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
      process.stderr.write(`shoal-tracker: ${err.message}\n`)
      process.exit(
        err.code === 'SHOAL_ERR_INVALID_ARGUMENT' || err.code === 'SHOAL_ERR_INVALID_FORMAT' ? 2 : 1,
      )
    }
    const e = err as NodeJS.ErrnoException
    if (e.code === 'EADDRINUSE' || e.code === 'EACCES' || e.code === 'EADDRNOTAVAIL') {
      process.stderr.write(`shoal-tracker: cannot listen: ${e.message}\n`)
      process.exit(2)
    }
    process.stderr.write(`shoal-tracker: ${e.stack ?? String(err)}\n`)
    process.exit(1)
  },
)
