/**
 * The key of a long-running service (an edge node, a tracker) in its data dir: loaded at
 * start, or created on first start. Shared by the `shoal-node` and `shoal-tracker`
 * command lines so both treat passphrases the same way.
 */
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { InvalidArgumentError, isShoalError } from '@shoal/protocol'
import type { PrivateKeyAccount } from 'viem/accounts'
import { createKeystoreFile, type KeystoreKdfOptions, loadKeystoreFile } from './keystore.ts'

export interface ServiceKeyInit {
  dataDir: string
  /** `node` or `tracker`: the files are `<name>-key.json` and `<name>-key.pass`. */
  name: string
  /** The environment to read `SHOAL_KEY_PASSPHRASE` from. */
  env: NodeJS.ProcessEnv
  kdf?: KeystoreKdfOptions
  log?: { info(fields: object, message: string): void; warn(fields: object, message: string): void }
}

/** Where a service's key and (when generated) passphrase live. */
export function serviceKeyFiles(dataDir: string, name: string): { keyFile: string; passFile: string } {
  return { keyFile: join(dataDir, `${name}-key.json`), passFile: join(dataDir, `${name}-key.pass`) }
}

/**
 * Asks a question on the terminal without echoing the answer (a passphrase). The question
 * goes to `output` (stderr for commands whose stdout is data).
 *
 * @example
 * const passphrase = await promptHidden('Key passphrase: ', process.stderr)
 */
export async function promptHidden(
  question: string,
  output: NodeJS.WritableStream = process.stdout,
): Promise<string> {
  const rl = createInterface({ input: process.stdin, output, terminal: true })
  const muted = rl as unknown as { _writeToOutput: (s: string) => void }
  output.write(question)
  muted._writeToOutput = () => {}
  const answer = await new Promise<string>((resolve) => rl.question('', resolve))
  rl.close()
  output.write('\n')
  return answer
}

/**
 * The passphrase: `SHOAL_KEY_PASSPHRASE`, else the generated one beside the key, else
 * asked on a terminal (twice when creating), else a clear error.
 */
export async function servicePassphrase(init: ServiceKeyInit, creating: boolean): Promise<string> {
  const fromEnv = init.env.SHOAL_KEY_PASSPHRASE
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv
  const { passFile } = serviceKeyFiles(init.dataDir, init.name)
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

/** Creates the service key (`key create`), refusing to overwrite one. */
export async function createServiceKey(init: ServiceKeyInit): Promise<PrivateKeyAccount> {
  const { keyFile } = serviceKeyFiles(init.dataDir, init.name)
  return createKeystoreFile(keyFile, await servicePassphrase(init, true), init.kdf)
}

/**
 * Loads the service key, or creates it on first start. Unattended services (no
 * passphrase in the environment, no terminal) get a random passphrase kept beside the
 * key with mode 0600: as safe as the data dir's permissions, and the log says so.
 *
 * @example
 * const account = await loadOrCreateServiceKey({ dataDir, name: 'node', env: process.env, log })
 */
export async function loadOrCreateServiceKey(init: ServiceKeyInit): Promise<PrivateKeyAccount> {
  const { keyFile, passFile } = serviceKeyFiles(init.dataDir, init.name)
  if (existsSync(keyFile)) {
    try {
      return await loadKeystoreFile(keyFile, await servicePassphrase(init, false))
    } catch (err) {
      if (isShoalError(err) && err.code === 'SHOAL_ERR_INVALID_SIGNATURE') {
        throw new InvalidArgumentError(`cannot open ${keyFile}: wrong passphrase (SHOAL_KEY_PASSPHRASE)`)
      }
      throw err
    }
  }
  let passphrase = init.env.SHOAL_KEY_PASSPHRASE
  if (passphrase === undefined || passphrase === '') {
    passphrase = randomBytes(32).toString('base64url')
    await writeFile(passFile, `${passphrase}\n`, { mode: 0o600, flag: 'wx' })
    init.log?.warn(
      { keyFile, passFile },
      `created a ${init.name} key protected by a random passphrase stored beside it; set SHOAL_KEY_PASSPHRASE to choose your own`,
    )
  }
  const account = await createKeystoreFile(keyFile, passphrase, init.kdf)
  init.log?.info({ address: account.address }, `created ${init.name} key`)
  return account
}
