/**
 * Health proofs: a node's signed answer to a tracker's random liveness challenge
 * (`GET <node>/health?challenge=0x…`), so that a proxy in front of a dead node cannot
 * answer for it. The node answers `{"status":"ok","node":…,"proof":{"message":…,"signature":…}}`.
 */

import type { Hex } from 'viem'
import {
  decodeRecord,
  encodeRecord,
  hashRecord,
  type RecordSigner,
  type RecordTypedData,
  recordTypedData,
  signRecord,
  type VerifyHealthProofOptions,
  validateRecord,
  verifyRecord,
} from './codec.ts'
import type { HealthProof, Signed } from './schemas.ts'

/**
 * Checks a health proof (checksummed node, lowercase bytes32 challenge) and returns it typed.
 *
 * @throws InvalidFormatError naming the first bad field
 * @example
 * const proof = validateHealthProof({ node, challenge: url.searchParams.get('challenge'), timestamp: now })
 */
export function validateHealthProof(message: unknown): HealthProof {
  return validateRecord('HealthProof', message)
}

/**
 * The EIP-712 digest a health proof's signature signs.
 *
 * @example
 * const digest = hashHealthProof(proof)
 */
export function hashHealthProof(message: HealthProof): Hex {
  return hashRecord('HealthProof', message)
}

/**
 * The health proof's EIP-712 typed data, for a node whose key is not a local account.
 *
 * @example
 * const signature = await remoteSigner.signTypedData({ account, ...healthProofTypedData(proof) })
 */
export function healthProofTypedData(message: HealthProof): RecordTypedData['HealthProof'] {
  return recordTypedData('HealthProof', message)
}

/**
 * Signs the answer to a challenge with the node's own key (`account.address` must be `node`).
 * A challenge that is not 0x + 64 lowercase hex is `InvalidFormatError`: answer it with 400.
 *
 * @example
 * const signed = await signHealthProof(identity.account, {
 *   node: identity.account.address, challenge, timestamp: Math.floor(Date.now() / 1000) })
 */
export function signHealthProof(account: RecordSigner, message: HealthProof): Promise<Signed<HealthProof>> {
  return signRecord('HealthProof', account, message)
}

/**
 * Verifies a node's answer to a probe: format, `expectedChallenge` and `expectedNode`
 * when given (another value is `InvalidSignatureError`), timestamp within
 * `maxAgeSeconds` (default 60) and skew, and the node's signature. Pass the challenge
 * you sent: without it, an old proof of the same node would pass.
 *
 * @throws InvalidArgumentError, InvalidFormatError, ExpiredError, InvalidSignatureError
 * @example
 * const body = await (await fetch(new URL(`health?challenge=${challenge}`, record.httpUrl))).json()
 * await verifyHealthProof(decodeHealthProof(body.proof), { expectedChallenge: challenge, expectedNode: record.node })
 */
export function verifyHealthProof(
  signed: Signed<HealthProof>,
  options?: VerifyHealthProofOptions,
): Promise<HealthProof> {
  return verifyRecord('HealthProof', signed, options)
}

/**
 * The canonical JSON text of a signed health proof: the `proof` object of a `/health` answer.
 *
 * @example
 * res.end(`{"status":"ok","node":"${signed.message.node}","proof":${encodeHealthProof(signed)}}`)
 */
export function encodeHealthProof(signed: Signed<HealthProof>): string {
  return encodeRecord('HealthProof', signed)
}

/**
 * Parses and strictly validates a signed health proof (JSON text or a parsed value, such
 * as the `proof` of a parsed `/health` answer); does not verify it.
 *
 * @throws InvalidFormatError
 * @example
 * const signed = decodeHealthProof(body.proof)
 */
export function decodeHealthProof(input: unknown): Signed<HealthProof> {
  return decodeRecord('HealthProof', input)
}
