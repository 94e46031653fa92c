/**
 * Signer recovery for receipts: libsecp256k1 through the `secp256k1` package's native
 * (N-API, prebuilt for linux-x64) binding, with `@noble/curves` as the fallback when
 * the binding cannot load. The address is keccak-256 of the uncompressed public key.
 * Signatures must be canonical (low-s, v 27/28), as `@shoal/protocol` signs them.
 */
import { createRequire } from 'node:module'
import { keccak_256 } from '@noble/hashes/sha3'

type NativeRecover = (sig: Uint8Array, recid: number, msg32: Uint8Array, compressed: boolean) => Uint8Array

const require = createRequire(import.meta.url)
const HALF_N = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0n

let native: NativeRecover | undefined
let triedNative = false

function loadNative(): NativeRecover | undefined {
  if (triedNative) return native
  triedNative = true
  try {
    const lib = require('secp256k1/bindings') as { ecdsaRecover: NativeRecover }
    native = lib.ecdsaRecover.bind(lib)
  } catch {
    native = undefined
  }
  return native
}

/** Which implementation recovers (`native` libsecp256k1 or `noble`). */
export function recoveryBackend(): 'native' | 'noble' {
  return loadNative() !== undefined ? 'native' : 'noble'
}

const sigBuf = new Uint8Array(64)

/**
 * The lowercase 0x address that signed `digest` with the 65-byte hex `signature`, or
 * `undefined` when the signature is malformed, not canonical, or recovers nothing.
 *
 * @example
 * const signer = recoverSigner(digest, signed.signature)
 */
export function recoverSigner(digest: Uint8Array, signature: string): string | undefined {
  if (signature.length !== 132) return undefined
  const v = Number.parseInt(signature.slice(130, 132), 16)
  if (v !== 27 && v !== 28) return undefined
  if (Buffer.from(sigBuf.buffer, 0, 64).write(signature.slice(2, 130), 'hex') !== 64) return undefined
  if (BigInt(`0x${signature.slice(66, 130)}`) > HALF_N) return undefined
  let pub: Uint8Array
  try {
    const rec = loadNative()
    if (rec !== undefined) pub = rec(sigBuf, v - 27, digest, false)
    else pub = nobleRecover(sigBuf, v - 27, digest)
  } catch {
    return undefined
  }
  const hash = keccak_256(pub.subarray(1))
  return `0x${Buffer.from(hash.buffer, hash.byteOffset + 12, 20).toString('hex')}`
}

let noble: typeof import('@noble/curves/secp256k1').secp256k1 | undefined

function nobleRecover(sig: Uint8Array, recid: number, digest: Uint8Array): Uint8Array {
  noble ??= (require('@noble/curves/secp256k1') as typeof import('@noble/curves/secp256k1')).secp256k1
  return noble.Signature.fromCompact(sig).addRecoveryBit(recid).recoverPublicKey(digest).toRawBytes(false)
}
