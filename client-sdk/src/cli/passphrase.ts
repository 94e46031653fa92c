/**
 * The publisher key's passphrase for the `shoal` CLI: `--passphrase-file FILE`, else
 * `SHOAL_PASSPHRASE`, else asked on the terminal (twice when creating a key), else a
 * clear error. Then the key itself, with a wrong passphrase said plainly.
 */
import { readFile } from 'node:fs/promises'
import { InvalidArgumentError, isShoalError } from '@shoal/protocol'
import type { PrivateKeyAccount } from 'viem/accounts'
import { loadKeystoreFile } from '../node/keystore.ts'
import { promptHidden } from '../node/service-key.ts'
import type { KeyOptions } from './args.ts'

export interface PassphraseInit {
  passphraseFile: string | undefined
  env: NodeJS.ProcessEnv
  /** Ask twice (creating a key). */
  confirm: boolean
  /** Whether a terminal is there to ask on (stdin and stderr are TTYs). */
  interactive: boolean
}

export async function readPassphrase(init: PassphraseInit): Promise<string> {
  if (init.passphraseFile !== undefined) {
    let text: string
    try {
      text = await readFile(init.passphraseFile, 'utf8')
    } catch (err) {
      throw new InvalidArgumentError(
        `cannot read --passphrase-file ${init.passphraseFile}: ${(err as Error).message}`,
      )
    }
    const passphrase = text.replace(/\r?\n$/, '')
    if (passphrase === '') throw new InvalidArgumentError(`--passphrase-file ${init.passphraseFile} is empty`)
    return passphrase
  }
  const fromEnv = init.env.SHOAL_PASSPHRASE
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv
  if (!init.interactive) {
    throw new InvalidArgumentError(
      'no key passphrase: set SHOAL_PASSPHRASE or pass --passphrase-file FILE (no terminal to ask on)',
    )
  }
  const first = await promptHidden('Key passphrase: ', process.stderr)
  if (first === '') throw new InvalidArgumentError('an empty passphrase is not allowed')
  if (init.confirm && (await promptHidden('Repeat passphrase: ', process.stderr)) !== first) {
    throw new InvalidArgumentError('the passphrases do not match')
  }
  return first
}

/** Opens the publisher key; a wrong passphrase is an `InvalidArgumentError` naming the file. */
export async function openKey(
  key: KeyOptions,
  env: NodeJS.ProcessEnv,
  interactive: boolean,
): Promise<PrivateKeyAccount> {
  const passphrase = await readPassphrase({
    passphraseFile: key.passphraseFile,
    env,
    confirm: false,
    interactive,
  })
  try {
    return await loadKeystoreFile(key.keyFile, passphrase)
  } catch (err) {
    if (isShoalError(err) && err.code === 'SHOAL_ERR_INVALID_SIGNATURE') {
      throw new InvalidArgumentError(`cannot open key file ${key.keyFile}: wrong passphrase`)
    }
    if (isShoalError(err) && err.code === 'SHOAL_ERR_NOT_FOUND') {
      throw new InvalidArgumentError(
        `no key file at ${key.keyFile}: create one with shoal key create, or pass --key FILE`,
      )
    }
    throw err
  }
}
