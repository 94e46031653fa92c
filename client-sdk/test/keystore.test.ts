import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  createKeystoreFile,
  decryptKeystore,
  encryptKeystore,
  keystoreAddress,
  loadKeystoreFile,
} from '../src/node/keystore.ts'

// Low work factor keeps the suite fast; the format and code path are the same.
const FAST = { n: 2 ** 10 }
const KEY = '0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318' as const

describe('keystore (Web3 Secret Storage v3)', () => {
  let dir: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-keystore-'))
  })
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('round-trips a key and refuses a wrong passphrase', async () => {
    const doc = await encryptKeystore(KEY, 'pass', FAST)
    expect(doc.address).toBe('2c7536e3605d9c16a7a3d7b1898e529396a65c23')
    expect(await decryptKeystore(doc, 'pass')).toBe(KEY)
    await expect(decryptKeystore(doc, 'other')).rejects.toMatchObject({ code: 'SHOAL_ERR_INVALID_SIGNATURE' })
  })

  it('refuses scrypt parameters outside RFC 7914 with a typed error, not a RangeError', async () => {
    // The scrypt example of the Web3 Secret Storage definition uses r=1 with n=2^18,
    // which RFC 7914 (and so OpenSSL) does not allow: N must be below 2^(16·r).
    const doc = {
      crypto: {
        cipher: 'aes-128-ctr',
        cipherparams: { iv: '83dbcc02d8ccb40e466191a123791e0e' },
        ciphertext: 'd172bf743a674da9cdad04534d56926ef8358534d458fffccd4e6ad2fbde479c',
        kdf: 'scrypt',
        kdfparams: {
          dklen: 32,
          n: 262144,
          p: 8,
          r: 1,
          salt: 'ab0c7876052600dd703518d6fc3fe8984592145b591fc8fb5c6d43190334ba19',
        },
        mac: '2103ac29920d71da29f15d75b4a16dbe95cfd7ff8faea1056c33131d846e3097',
      },
      id: '3198bc9c-6672-5ab3-d995-4942343ae5b6',
      version: 3,
    }
    await expect(decryptKeystore(doc, 'testpassword')).rejects.toMatchObject({
      code: 'SHOAL_ERR_INVALID_FORMAT',
    })
  })

  it('writes the file with mode 0600 and never overwrites an existing key', async () => {
    const path = join(dir, 'keys', 'node.json')
    const account = await createKeystoreFile(path, 'pass', { ...FAST, privateKey: KEY })
    expect((await stat(path)).mode & 0o777).toBe(0o600)
    expect(await keystoreAddress(path)).toBe(account.address)
    expect((await loadKeystoreFile(path, 'pass')).address).toBe(account.address)
    await expect(createKeystoreFile(path, 'pass', FAST)).rejects.toMatchObject({
      code: 'SHOAL_ERR_INVALID_ARGUMENT',
    })
    expect(JSON.parse(await readFile(path, 'utf8')).address).toBe(account.address.slice(2).toLowerCase())
  })

  it('gives typed errors for missing, non-JSON and malformed files', async () => {
    await expect(loadKeystoreFile(join(dir, 'none.json'), 'x')).rejects.toMatchObject({
      code: 'SHOAL_ERR_NOT_FOUND',
    })
    const bad = join(dir, 'bad.json')
    await writeFile(bad, 'not json')
    await expect(loadKeystoreFile(bad, 'x')).rejects.toMatchObject({ code: 'SHOAL_ERR_INVALID_FORMAT' })
    const doc = await encryptKeystore(KEY, 'pass', FAST)
    await expect(decryptKeystore({ ...doc, version: 4 }, 'pass')).rejects.toMatchObject({
      code: 'SHOAL_ERR_INVALID_FORMAT',
    })
    await expect(
      decryptKeystore({ ...doc, crypto: { ...doc.crypto, ciphertext: 'zz' } }, 'pass'),
    ).rejects.toMatchObject({ code: 'SHOAL_ERR_INVALID_FORMAT' })
    await expect(encryptKeystore(KEY, '', FAST)).rejects.toMatchObject({ code: 'SHOAL_ERR_INVALID_ARGUMENT' })
  })
})
