/** Node records: a node's signed binding of its Ethereum key to its peer id, addresses and payout. */

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
import type { NodeRecord, Signed } from './schemas.ts'

/**
 * Checks a node record (peer id, multiaddrs, canonical URL, region, addresses) and returns it typed.
 *
 * @throws InvalidFormatError naming the first bad field
 * @example
 * const record = validateNodeRecord({ node, peerId: '12D3KooW…', multiaddrs: ['/ip4/1.2.3.4/tcp/4001'],
 *   httpUrl: 'https://node.example/', region: 'eu-west', capacity: 12_500_000, payout, timestamp })
 */
export function validateNodeRecord(message: unknown): NodeRecord {
  return validateRecord('NodeRecord', message)
}

/**
 * The EIP-712 digest a node record's signature signs.
 *
 * @example
 * const digest = hashNodeRecord(record)
 */
export function hashNodeRecord(message: NodeRecord): Hex {
  return hashRecord('NodeRecord', message)
}

/**
 * The node record's EIP-712 typed data, for signers other than a local key.
 *
 * @example
 * const signature = await walletClient.signTypedData({ account, ...nodeRecordTypedData(record) })
 */
export function nodeRecordTypedData(message: NodeRecord): RecordTypedData['NodeRecord'] {
  return recordTypedData('NodeRecord', message)
}

/**
 * Signs a node record with the node's own key (`account.address` must be `node`).
 *
 * @example
 * const signed = await signNodeRecord(identity.account, { ...record, timestamp: Math.floor(Date.now() / 1000) })
 */
export function signNodeRecord(account: RecordSigner, message: NodeRecord): Promise<Signed<NodeRecord>> {
  return signRecord('NodeRecord', account, message)
}

/**
 * Verifies a signed node record: format, timestamp within `maxAgeSeconds`
 * (default 3600) and skew, and the node's signature.
 *
 * @throws InvalidFormatError, ExpiredError, InvalidSignatureError
 * @example
 * const record = await verifyNodeRecord(decodeNodeRecord(body), { maxAgeSeconds: 120 })
 */
export function verifyNodeRecord(
  signed: Signed<NodeRecord>,
  options?: TimestampVerifyOptions,
): Promise<NodeRecord> {
  return verifyRecord('NodeRecord', signed, options)
}

/**
 * The canonical JSON text of a signed node record.
 *
 * @example
 * await fetch(`${tracker}/nodes`, { method: 'POST', body: encodeNodeRecord(signed) })
 */
export function encodeNodeRecord(signed: Signed<NodeRecord>): string {
  return encodeRecord('NodeRecord', signed)
}

/**
 * Parses and strictly validates a signed node record; does not verify it.
 *
 * @throws InvalidFormatError
 * @example
 * const signed = decodeNodeRecord(await request.text())
 */
export function decodeNodeRecord(input: unknown): Signed<NodeRecord> {
  return decodeRecord('NodeRecord', input)
}
