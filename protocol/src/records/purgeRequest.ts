/** Purge requests: a publisher's signed command to drop cached copies of paths of a site. */

import type { Hex } from 'viem'
import {
  decodeRecord,
  encodeRecord,
  hashRecord,
  type RecordSigner,
  type RecordTypedData,
  recordTypedData,
  signRecord,
  type TimestampVerifyOptions,
  validateRecord,
  verifyRecord,
} from './codec.ts'
import type { PurgeRequest, Signed } from './schemas.ts'

/**
 * Checks a purge request (at least one path or prefix, sorted and unique) and returns it typed.
 *
 * @throws InvalidFormatError naming the first bad field
 * @example
 * const request = validatePurgeRequest({ publisher, site: 'blog', paths: ['/index.html'],
 *   prefixes: ['/img/'], timestamp: now, nonce })
 */
export function validatePurgeRequest(message: unknown): PurgeRequest {
  return validateRecord('PurgeRequest', message)
}

/**
 * The EIP-712 digest a purge request's signature signs; also a natural replay key.
 *
 * @example
 * const digest = hashPurgeRequest(request)
 */
export function hashPurgeRequest(message: PurgeRequest): Hex {
  return hashRecord('PurgeRequest', message)
}

/**
 * The purge request's EIP-712 typed data, for signers other than a local key.
 *
 * @example
 * const signature = await walletClient.signTypedData({ account, ...purgeRequestTypedData(request) })
 */
export function purgeRequestTypedData(message: PurgeRequest): RecordTypedData['PurgeRequest'] {
  return recordTypedData('PurgeRequest', message)
}

/**
 * Signs a purge request with the publisher's key (`account.address` must be `publisher`).
 *
 * @example
 * const signed = await signPurgeRequest(publisherAccount, request)
 */
export function signPurgeRequest(
  account: RecordSigner,
  message: PurgeRequest,
): Promise<Signed<PurgeRequest>> {
  return signRecord('PurgeRequest', account, message)
}

/**
 * Verifies a signed purge request: format, timestamp within `maxAgeSeconds`
 * (default 300) and skew, and the publisher's signature. The receiver must
 * still refuse a `nonce` it has seen within that window (`ReplayError`).
 *
 * @throws InvalidFormatError, ExpiredError, InvalidSignatureError
 * @example
 * const request = await verifyPurgeRequest(decodePurgeRequest(body))
 */
export function verifyPurgeRequest(
  signed: Signed<PurgeRequest>,
  options?: TimestampVerifyOptions,
): Promise<PurgeRequest> {
  return verifyRecord('PurgeRequest', signed, options)
}

/**
 * The canonical JSON text of a signed purge request.
 *
 * @example
 * await fetch(`${tracker}/purge`, { method: 'POST', body: encodePurgeRequest(signed) })
 */
export function encodePurgeRequest(signed: Signed<PurgeRequest>): string {
  return encodeRecord('PurgeRequest', signed)
}

/**
 * Parses and strictly validates a signed purge request; does not verify it.
 *
 * @throws InvalidFormatError
 * @example
 * const signed = decodePurgeRequest(await request.text())
 */
export function decodePurgeRequest(input: unknown): Signed<PurgeRequest> {
  return decodeRecord('PurgeRequest', input)
}
