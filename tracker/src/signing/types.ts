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
import type { Address, Hex } from 'viem'

export const trackerSessionTypes = {
  TrackerSession: [
    { name: 'node', type: 'address' },
    { name: 'publicKey', type: 'bytes32' },
    { name: 'timestamp', type: 'uint64' },
  ],
} as const

export const nodeReportTypes = {
  NodeReport: [
    { name: 'client', type: 'address' },
    { name: 'node', type: 'address' },
    { name: 'nonce', type: 'bytes32' },
    { name: 'timestamp', type: 'uint64' },
    { name: 'requests', type: 'uint64' },
    { name: 'failures', type: 'uint64' },
    { name: 'bytes', type: 'uint64' },
    { name: 'ttfbMs', type: 'uint64' },
    { name: 'throughput', type: 'uint64' },
    { name: 'cid', type: 'string' },
    { name: 'chunk', type: 'uint64' },
    { name: 'badHash', type: 'bytes32' },
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

/** A client's signed observation of one node over some fetches. */
export interface NodeReport {
  /** The reporter: the signer. */
  client: Address
  node: Address
  /** Random, unique per report (replays are refused). */
  nonce: Hex
  /** Unix seconds, when the report was made. */
  timestamp: number
  /** Fetches observed, 1 … 100 000. */
  requests: number
  /** Of which failed (error, timeout, wrong bytes). */
  failures: number
  /** Bytes received. */
  bytes: number
  /** Median time to first byte (ms); 0 when unknown. */
  ttfbMs: number
  /** Observed throughput (bytes/s); 0 when unknown. */
  throughput: number
  /** Integrity evidence: the CID whose bytes were wrong, or `''` for none. */
  cid: string
  /** Integrity evidence: the chunk index that failed verification. */
  chunk: number
  /**
   * Integrity evidence: the leaf hash of the bytes received for that chunk, in the form of
   * the CID's leaves (`hashChunk(bytes)` = SHA-256(0x00 ‖ bytes)); zero for none. Equal to
   * the real leaf means the bytes were right, and the report is refuted.
   */
  badHash: Hex
}

export const ZERO_HASH: Hex = `0x${'0'.repeat(64)}`

export function trackerSessionTypedData(message: TrackerSession) {
  return {
    domain: SHOAL_DOMAIN,
    types: trackerSessionTypes,
    primaryType: 'TrackerSession' as const,
    message: { ...message, timestamp: BigInt(message.timestamp) },
  }
}

export function nodeReportTypedData(message: NodeReport) {
  return {
    domain: SHOAL_DOMAIN,
    types: nodeReportTypes,
    primaryType: 'NodeReport' as const,
    message: {
      ...message,
      timestamp: BigInt(message.timestamp),
      requests: BigInt(message.requests),
      failures: BigInt(message.failures),
      bytes: BigInt(message.bytes),
      ttfbMs: BigInt(message.ttfbMs),
      throughput: BigInt(message.throughput),
      chunk: BigInt(message.chunk),
    },
  }
}
