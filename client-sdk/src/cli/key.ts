/** `shoal key create` and `shoal key show`: the publisher's keystore file. */
import { existsSync } from 'node:fs'
import { InvalidArgumentError } from '@shoal/protocol'
import { createKeystoreFile, keystoreAddress } from '../node/keystore.ts'
import type { Command } from './args.ts'
import { readPassphrase } from './passphrase.ts'

export async function runKeyCreate(
  cmd: Extract<Command, { kind: 'key-create' }>,
  env: NodeJS.ProcessEnv,
): Promise<number> {
  // before asking for a passphrase: createKeystoreFile refuses too, but only after the work
  if (existsSync(cmd.out))
    throw new InvalidArgumentError(`a key file already exists at ${cmd.out}; refusing to overwrite it`)
  const passphrase = await readPassphrase({
    passphraseFile: cmd.passphraseFile,
    env,
    confirm: true,
    interactive: process.stdin.isTTY === true && process.stderr.isTTY === true,
  })
  const account = await createKeystoreFile(
    cmd.out,
    passphrase,
    cmd.scryptN === undefined ? {} : { n: cmd.scryptN },
  )
  process.stdout.write(`created ${cmd.out}\naddress ${account.address}\n`)
  return 0
}

export async function runKeyShow(cmd: Extract<Command, { kind: 'key-show' }>): Promise<number> {
  process.stdout.write(`${await keystoreAddress(cmd.keyFile)}\n`)
  return 0
}
