/**
 * Signature shape rules: one canonical 65-byte form per signature, so a
 * signature cannot be re-encoded (high s, v 0/1, uppercase) into a second
 * valid form of the same record.
 */

import type { Address, Hex } from 'viem'
import { parseSignature, recoverAddress, serializeSignature } from 'viem'
import { z } from 'zod'
import { InvalidSignatureError } from '../errors.ts'

/** Order of the secp256k1 group. */
const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n
const HALF_N = SECP256K1_N >> 1n
const SIGNATURE_RE = /^0x[0-9a-f]{130}$/

/** 65 bytes (r ‖ s ‖ v) as lowercase 0x-hex; the scalar rules are checked by `checkSignature`. */
export const signatureField = z
  .string()
  .refine((value): value is Hex => SIGNATURE_RE.test(value), 'must be 65 bytes of lowercase 0x-hex')

/**
 * Throws `InvalidSignatureError` unless `signature` is canonical: v is 27 or
 * 28, r is in [1, n-1] and s in [1, n/2] (low-s, as EIP-2 requires of
 * transactions).
 */
export function checkSignature(signature: Hex): void {
  const r = BigInt(`0x${signature.slice(2, 66)}`)
  const s = BigInt(`0x${signature.slice(66, 130)}`)
  const v = signature.slice(130)
  if (v !== '1b' && v !== '1c') throw new InvalidSignatureError('signature v must be 27 or 28')
  if (r === 0n || r >= SECP256K1_N) throw new InvalidSignatureError('signature r is out of range')
  if (s === 0n || s > HALF_N) throw new InvalidSignatureError('signature s must be low (at most n/2)')
}

/**
 * Brings a signer's output to canonical form: lowercase, v 27/28, low s.
 * Local viem accounts already sign this way; wallets and HSMs may not.
 */
export function normalizeSignature(signature: Hex): Hex {
  let normalized: Hex
  try {
    const parsed = parseSignature(signature)
    let s = BigInt(parsed.s)
    let yParity = parsed.yParity
    if (s > HALF_N) {
      s = SECP256K1_N - s
      yParity = yParity === 0 ? 1 : 0
    }
    normalized = serializeSignature({
      r: parsed.r,
      s: `0x${s.toString(16).padStart(64, '0')}`,
      yParity,
    }).toLowerCase() as Hex
  } catch (cause) {
    throw new InvalidSignatureError('the signer returned a malformed signature', { cause })
  }
  if (!SIGNATURE_RE.test(normalized))
    throw new InvalidSignatureError('the signer returned a malformed signature')
  checkSignature(normalized)
  return normalized
}

/** The address that made `signature` over `digest`; `InvalidSignatureError` when none can be recovered. */
export async function recoverSigner(digest: Hex, signature: Hex): Promise<Address> {
  checkSignature(signature)
  try {
    return await recoverAddress({ hash: digest, signature })
  } catch (cause) {
    throw new InvalidSignatureError('no key can be recovered from the signature', { cause })
  }
}
