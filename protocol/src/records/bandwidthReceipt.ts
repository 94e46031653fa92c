/** Bandwidth receipts: a client's signed, cumulative count of the bytes a node delivered in a session. */

import type { Hex } from 'viem'
import {
  decodeRecord,
  encodeRecord,
  hashRecord,
  type RecordSigner,
  type RecordTypedData,
  recordTypedData,
  signRecord,
  type VerifyOptions,
  validateRecord,
  verifyRecord,
} from './codec.ts'
import type { BandwidthReceipt, Signed } from './schemas.ts'

/**
 * Checks a bandwidth receipt and returns it typed.
 *
 * @throws InvalidFormatError naming the first bad field
 * @example
 * const receipt = validateBandwidthReceipt({ node, client, session, bytes: 1_048_576, epoch: 12,
 *   ticket: ticketId(ticket), kind: RECEIPT_KIND.content })
 */
export function validateBandwidthReceipt(message: unknown): BandwidthReceipt {
  return validateRecord('BandwidthReceipt', message)
}

/**
 * The EIP-712 digest a receipt's signature signs: the fast path for a
 * settlement job that recovers signers in bulk (workers, batches).
 *
 * @example
 * const digests = receipts.map((signed) => hashBandwidthReceipt(signed.message))
 */
export function hashBandwidthReceipt(message: BandwidthReceipt): Hex {
  return hashRecord('BandwidthReceipt', message)
}

/**
 * The receipt's EIP-712 typed data, for signers other than a local key.
 *
 * @example
 * const signature = await walletClient.signTypedData({ account, ...bandwidthReceiptTypedData(receipt) })
 */
export function bandwidthReceiptTypedData(message: BandwidthReceipt): RecordTypedData['BandwidthReceipt'] {
  return recordTypedData('BandwidthReceipt', message)
}

/**
 * Signs a receipt with the client's key (`account.address` must be `client`).
 *
 * @example
 * const signed = await signBandwidthReceipt(clientAccount, { ...receipt, bytes: receipt.bytes + chunk.length })
 */
export function signBandwidthReceipt(
  account: RecordSigner,
  message: BandwidthReceipt,
): Promise<Signed<BandwidthReceipt>> {
  return signRecord('BandwidthReceipt', account, message)
}

/**
 * Verifies a signed receipt: format and the client's signature. Receipts have
 * no clock; the ticket, epoch and byte checks belong to the settlement rules.
 *
 * @throws InvalidFormatError, InvalidSignatureError
 * @example
 * const receipt = await verifyBandwidthReceipt(decodeBandwidthReceipt(line))
 */
export function verifyBandwidthReceipt(
  signed: Signed<BandwidthReceipt>,
  options?: VerifyOptions,
): Promise<BandwidthReceipt> {
  return verifyRecord('BandwidthReceipt', signed, options)
}

/**
 * The canonical JSON text of a signed receipt.
 *
 * @example
 * book.write(`${encodeBandwidthReceipt(signed)}\n`)
 */
export function encodeBandwidthReceipt(signed: Signed<BandwidthReceipt>): string {
  return encodeRecord('BandwidthReceipt', signed)
}

/**
 * Parses and strictly validates a signed receipt; does not verify it.
 *
 * @throws InvalidFormatError
 * @example
 * const signed = decodeBandwidthReceipt(line)
 */
export function decodeBandwidthReceipt(input: unknown): Signed<BandwidthReceipt> {
  return decodeRecord('BandwidthReceipt', input)
}
