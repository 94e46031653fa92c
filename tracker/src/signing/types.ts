/**
 * The two signed messages the tracker defines itself (the records every party shares
 * live in `@shoal/protocol`): both EIP-712 under the Shoal domain
 * (`{ name: 'Shoal', version: '1' }`), so a signature of one kind never passes for
 * another kind or for a protocol record.
 *
 * ```
 * TrackerSession(address node,bytes32 publicKey,uint64 timestamp)
 * NodeReport(address client,address node,bytes32 nonce,uint64 timestamp,uint64 requests,uint64 failures,
 *            uint64 bytes,uint64 ttfbMs,uint64 throughput,string cid,uint64 chunk,bytes32 badHash)
 * ```
 *
 * - `TrackerSession` binds a node's ephemeral X25519 key (heartbeat key agreement) to
 *   the registration it rides on: `timestamp` is the node record's timestamp.
 * - `NodeReport` is a client's observation of one node (docs/tracker.md, Reports).
 */
import { SHOAL_DOMAIN } from '@shoal/protocol'

/**
 * `NodeReport` is defined once, by the SDK that signs it (the tracker depends on the
 * SDK, not the other way round); the tracker verifies with the same definitions.
 */
export { type NodeReport, nodeReportTypedData, nodeReportTypes, ZERO_HASH } from '@shoal/client-sdk'

import type { Address, Hex } from 'viem'

export const trackerSessionTypes = {
  TrackerSession: [
    { name: 'node', type: 'address' },
    { name: 'publicKey', type: 'bytes32' },
    { name: 'timestamp', type: 'uint64' },
  ],
} as const

/** A node's binding of its session key to one registration. */
export interface TrackerSession {
  node: Address
  /** The node's X25519 public key, 32 bytes as lowercase 0x-hex. */
  publicKey: Hex
  /** The node record's timestamp (unix seconds). */
  timestamp: number
}

export function trackerSessionTypedData(message: TrackerSession) {
  return {
    domain: SHOAL_DOMAIN,
    types: trackerSessionTypes,
    primaryType: 'TrackerSession' as const,
    message: { ...message, timestamp: BigInt(message.timestamp) },
  }
}
