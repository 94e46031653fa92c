/**
 * Encrypted key files in the Web3 Secret Storage format (version 3, as geth, ethers
 * and MetaMask read and write): scrypt key derivation, AES-128-CTR, a keccak-256 MAC.
 *
 * Written on Node's native scrypt and AES rather than a pure-JS wallet library:
 * decrypting with the standard work factor takes well under a second natively, and the
 * format is small and fixed. Files are written with mode 0600 through a temp file and a
 * rename, so a crash never leaves a half-written key.
 */
import {
  createCipheriv,
  createDecipheriv,
  randomBytes,
  randomUUID,
  scrypt,
  timingSafeEqual,
} from 'node:crypto'
import { link, mkdir, open, readFile, unlink } from 'node:fs/promises'
import { dirname } from 'node:path'
import {
  InvalidArgumentError,
  InvalidFormatError,
  InvalidSignatureError,
  NotFoundError,
} from '@shoal/protocol'
import { type Address, bytesToHex, getAddress, type Hex, hexToBytes, keccak256 } from 'viem'
import { generatePrivateKey, type PrivateKeyAccount, privateKeyToAccount } from 'viem/accounts'

/** scrypt parameters; the defaults are geth's "standard" ones. */
export interface KeystoreKdfOptions {
  /** CPU/memory cost, a power of two. Default 2^18 (geth standard). */
  n?: number
  r?: number
  p?: number
}

export const DEFAULT_SCRYPT_N = 2 ** 18
const SCRYPT_R = 8
const SCRYPT_P = 1
const DKLEN = 32

/** The JSON document of a version-3 keystore. */
export interface KeystoreV3 {
  version: 3
  id: string
  address: string
  crypto: {
    cipher: 'aes-128-ctr'
    cipherparams: { iv: string }
    ciphertext: string
    kdf: 'scrypt'
    kdfparams: { dklen: number; n: number; r: number; p: number; salt: string }
    mac: string
  }
}

function deriveKey(passphrase: string, salt: Buffer, n: number, r: number, p: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // maxmem must cover 128·n·r bytes, scrypt's working set
    try {
      scrypt(
        passphrase.normalize('NFKC'),
        salt,
        DKLEN,
        { N: n, r, p, maxmem: 256 * n * r + 2 ** 20 },
        (err, key) => (err === null ? resolve(key) : reject(err)),
      )
    } catch (err) {
      // OpenSSL enforces RFC 7914's bounds (e.g. N < 2^(16·r)); say so instead of a RangeError
      reject(new InvalidFormatError(`unsupported scrypt parameters n=${n} r=${r} p=${p}`, { cause: err }))
    }
  })
}

function macOf(derived: Buffer, ciphertext: Buffer): Buffer {
  return Buffer.from(hexToBytes(keccak256(Buffer.concat([derived.subarray(16, 32), ciphertext]))))
}

/**
 * Encrypts a private key into a version-3 keystore document.
 *
 * @example
 * const doc = await encryptKeystore(generatePrivateKey(), 'correct horse')
 */
export async function encryptKeystore(
  privateKey: Hex,
  passphrase: string,
  options: KeystoreKdfOptions = {},
): Promise<KeystoreV3> {
  if (typeof passphrase !== 'string' || passphrase.length === 0) {
    throw new InvalidArgumentError('a keystore passphrase must be a non-empty string')
  }
  const n = options.n ?? DEFAULT_SCRYPT_N
  const r = options.r ?? SCRYPT_R
  const p = options.p ?? SCRYPT_P
  if (!Number.isSafeInteger(n) || n < 2 || (n & (n - 1)) !== 0) {
    throw new InvalidArgumentError('scrypt n must be a power of two ≥ 2')
  }
  const account = privateKeyToAccount(privateKey)
  const salt = randomBytes(32)
  const iv = randomBytes(16)
  const derived = await deriveKey(passphrase, salt, n, r, p)
  const cipher = createCipheriv('aes-128-ctr', derived.subarray(0, 16), iv)
  const ciphertext = Buffer.concat([cipher.update(hexToBytes(privateKey)), cipher.final()])
  return {
    version: 3,
    id: randomUUID(),
    address: account.address.slice(2).toLowerCase(),
    crypto: {
      cipher: 'aes-128-ctr',
      cipherparams: { iv: iv.toString('hex') },
      ciphertext: ciphertext.toString('hex'),
      kdf: 'scrypt',
      kdfparams: { dklen: DKLEN, n, r, p, salt: salt.toString('hex') },
      mac: macOf(derived, ciphertext).toString('hex'),
    },
  }
}

const HEX = /^[0-9a-f]+$/i

function field(value: unknown, name: string, pattern = HEX): string {
  if (typeof value !== 'string' || !pattern.test(value))
    throw new InvalidFormatError(`keystore field ${name} is malformed`)
  return value
}

/**
 * Decrypts a version-3 keystore (scrypt + aes-128-ctr) and returns the private key.
 * A wrong passphrase fails the MAC check with `InvalidSignatureError`
 * (`SHOAL_ERR_INVALID_SIGNATURE`); a malformed document with `InvalidFormatError`.
 *
 * @example
 * const key = await decryptKeystore(JSON.parse(text), process.env.SHOAL_KEY_PASSPHRASE!)
 */
export async function decryptKeystore(doc: unknown, passphrase: string): Promise<Hex> {
  if (typeof doc !== 'object' || doc === null)
    throw new InvalidFormatError('a keystore must be a JSON object')
  const { version, crypto } = doc as { version?: unknown; crypto?: Record<string, unknown> }
  if (version !== 3) throw new InvalidFormatError('only version-3 keystores are supported')
  if (typeof crypto !== 'object' || crypto === null)
    throw new InvalidFormatError('keystore has no crypto section')
  if (crypto.cipher !== 'aes-128-ctr') throw new InvalidFormatError('keystore cipher must be aes-128-ctr')
  if (crypto.kdf !== 'scrypt') throw new InvalidFormatError('keystore kdf must be scrypt')
  const kdf = (crypto.kdfparams ?? {}) as Record<string, unknown>
  const { n, r, p, dklen } = kdf
  for (const [name, value] of Object.entries({ n, r, p })) {
    if (!Number.isSafeInteger(value) || (value as number) < 1)
      throw new InvalidFormatError(`keystore kdfparams.${name} is malformed`)
  }
  if (dklen !== DKLEN) throw new InvalidFormatError('keystore kdfparams.dklen must be 32')
  if ((n as number) > 2 ** 20)
    throw new InvalidFormatError('keystore scrypt n is larger than this program accepts (2^20)')
  const salt = Buffer.from(field(kdf.salt, 'kdfparams.salt'), 'hex')
  const iv = Buffer.from(
    field((crypto.cipherparams as { iv?: unknown } | undefined)?.iv, 'cipherparams.iv'),
    'hex',
  )
  const ciphertext = Buffer.from(field(crypto.ciphertext, 'ciphertext'), 'hex')
  const mac = Buffer.from(field(crypto.mac, 'mac'), 'hex')
  if (iv.length !== 16 || ciphertext.length !== 32 || mac.length !== 32) {
    throw new InvalidFormatError('keystore iv, ciphertext or mac has the wrong length')
  }
  const derived = await deriveKey(passphrase, salt, n as number, r as number, p as number)
  if (!timingSafeEqual(macOf(derived, ciphertext), mac)) {
    throw new InvalidSignatureError('wrong passphrase for this keystore (MAC mismatch)')
  }
  const decipher = createDecipheriv('aes-128-ctr', derived.subarray(0, 16), iv)
  return bytesToHex(Buffer.concat([decipher.update(ciphertext), decipher.final()]))
}

/**
 * Creates a new random key and writes it encrypted to `path` (mode 0600). Refuses to
 * overwrite an existing file.
 *
 * @example
 * const account = await createKeystoreFile('/var/lib/shoal/key.json', passphrase)
 * console.log(account.address)
 */
export async function createKeystoreFile(
  path: string,
  passphrase: string,
  options: KeystoreKdfOptions & { privateKey?: Hex } = {},
): Promise<PrivateKeyAccount> {
  const privateKey = options.privateKey ?? generatePrivateKey()
  const doc = await encryptKeystore(privateKey, passphrase, options)
  await mkdir(dirname(path), { recursive: true, mode: 0o700 })
  const tmp = `${path}.${process.pid}.tmp`
  const handle = await open(tmp, 'wx', 0o600)
  try {
    await handle.writeFile(`${JSON.stringify(doc, null, 2)}\n`)
    await handle.sync()
  } finally {
    await handle.close()
  }
  try {
    // link() fails with EEXIST instead of replacing: an existing key is never overwritten
    await link(tmp, path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new InvalidArgumentError(`a key file already exists at ${path}; refusing to overwrite it`)
    }
    throw err
  } finally {
    await unlink(tmp).catch(() => {})
  }
  return privateKeyToAccount(privateKey)
}

/**
 * Reads and decrypts the key file at `path`.
 *
 * @example
 * const account = await loadKeystoreFile(path, passphrase)
 */
export async function loadKeystoreFile(path: string, passphrase: string): Promise<PrivateKeyAccount> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`no key file at ${path}`)
    throw err
  }
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch (err) {
    throw new InvalidFormatError(`key file ${path} is not JSON`, { cause: err })
  }
  return privateKeyToAccount(await decryptKeystore(doc, passphrase))
}

/** The address a keystore file holds, without decrypting it (no passphrase needed). */
export async function keystoreAddress(path: string): Promise<Address> {
  let doc: { address?: unknown }
  try {
    doc = JSON.parse(await readFile(path, 'utf8')) as { address?: unknown }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`no key file at ${path}`)
    throw new InvalidFormatError(`key file ${path} is not JSON`, { cause: err })
  }
  const address = field(doc.address, 'address', /^(0x)?[0-9a-fA-F]{40}$/)
  return getAddress(address.startsWith('0x') ? address : `0x${address}`)
}
