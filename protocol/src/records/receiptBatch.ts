/**
 * Receipt batches: a node's signed cover of the receipts it submits to the tracker for
 * one epoch (`POST /v1/receipts`, docs/receipts.md). The batch binds the node, the
 * epoch, the number of receipts and `receiptsHash`, so a batch is accepted whole or not
 * at all, and only by the node that signed it.
 */

import { concat, type Hex, keccak256 } from 'viem'
import { InvalidFormatError } from '../errors.ts'
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
import type { ReceiptBatch, Signed } from './schemas.ts'

/**
 * The `receiptsHash` of a batch: keccak-256 over the concatenated 32-byte EIP-712
 * digests of its receipts (`hashBandwidthReceipt`), in batch order. Signatures are not
 * part of it (any valid signature over a digest is as good as another).
 *
 * @example
 * const hash = receiptsHash(receipts.map((r) => hashBandwidthReceipt(r.message)))
 */
export function receiptsHash(digests: readonly Hex[]): Hex {
  for (const d of digests) {
    if (typeof d !== 'string' || d.length !== 66)
      throw new InvalidFormatError('a receipt digest must be 32 bytes')
  }
  return keccak256(digests.length === 0 ? '0x' : concat(digests as Hex[]))
}

/**
 * Checks a receipt batch and returns it typed.
 *
 * @throws InvalidFormatError naming the first bad field
 * @example
 * const batch = validateReceiptBatch({ node, epoch, count: receipts.length, receiptsHash: hash, timestamp: now })
 */
export function validateReceiptBatch(message: unknown): ReceiptBatch {
  return validateRecord('ReceiptBatch', message)
}

/**
 * The EIP-712 digest a batch's signature signs.
 *
 * @example
 * const digest = hashReceiptBatch(batch)
 */
export function hashReceiptBatch(message: ReceiptBatch): Hex {
  return hashRecord('ReceiptBatch', message)
}

/**
 * The batch's EIP-712 typed data, for a node whose key is not a local account.
 *
 * @example
 * const signature = await remoteSigner.signTypedData({ account, ...receiptBatchTypedData(batch) })
 */
export function receiptBatchTypedData(message: ReceiptBatch): RecordTypedData['ReceiptBatch'] {
  return recordTypedData('ReceiptBatch', message)
}

/**
 * Signs a batch with the node's key (`account.address` must be `node`).
 *
 * @example
 * const signed = await signReceiptBatch(identity.account, { node, epoch, count, receiptsHash: hash, timestamp })
 */
export function signReceiptBatch(
  account: RecordSigner,
  message: ReceiptBatch,
): Promise<Signed<ReceiptBatch>> {
  return signRecord('ReceiptBatch', account, message)
}

/**
 * Verifies a signed batch: format, timestamp (within `maxAgeSeconds`, default one day,
 * and skew) and the node's signature. That the receipts match `count` and
 * `receiptsHash` is the receiver's check.
 *
 * @throws InvalidFormatError, ExpiredError, InvalidSignatureError
 * @example
 * const batch = await verifyReceiptBatch(decodeReceiptBatch(body.batch))
 */
export function verifyReceiptBatch(
  signed: Signed<ReceiptBatch>,
  options?: TimestampVerifyOptions,
): Promise<ReceiptBatch> {
  return verifyRecord('ReceiptBatch', signed, options)
}

/**
 * The canonical JSON text of a signed batch.
 *
 * @example
 * const body = `{"batch":${encodeReceiptBatch(signed)},"receipts":[…],"tickets":[…]}`
 */
export function encodeReceiptBatch(signed: Signed<ReceiptBatch>): string {
  return encodeRecord('ReceiptBatch', signed)
}

/**
 * Parses and strictly validates a signed batch; does not verify it.
 *
 * @throws InvalidFormatError
 * @example
 * const signed = decodeReceiptBatch(body.batch)
 */
export function decodeReceiptBatch(input: unknown): Signed<ReceiptBatch> {
  return decodeRecord('ReceiptBatch', input)
}
