/**
 * Signed reports about nodes (`POST /v1/reports` on the tracker): the `NodeReport`
 * message (EIP-712 under the Shoal domain) is defined here, by the SDK that signs it;
 * the tracker (which depends on the SDK) verifies with these same definitions.
 */
import { InvalidArgumentError, type RecordSigner, SHOAL_DOMAIN, type Signed } from '@shoal/protocol'
import { type Address, getAddress, type Hex } from 'viem'

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

/** A client's signed observation of one node (the tracker's `NodeReport`). */
export interface NodeReport {
  /** The reporter: the signer. */
  client: Address
  node: Address
  /** Random, unique per report. */
  nonce: Hex
  /** Unix seconds. */
  timestamp: number
  /** Fetches observed, 1 … 100 000. */
  requests: number
  /** Of which failed. */
  failures: number
  /** Bytes received. */
  bytes: number
  /** Time to first byte (ms); 0 when unknown. */
  ttfbMs: number
  /** Bytes/s; 0 when unknown. */
  throughput: number
  /** Integrity evidence: the CID whose bytes were wrong, or `''`. */
  cid: string
  /** Integrity evidence: the chunk that failed. */
  chunk: number
  /**
   * Integrity evidence: the leaf hash (`SHA-256(0x00 ‖ bytes)`, the form of the CID's
   * leaves) of the bytes received for the chunk; zero for none. The tracker compares it
   * with the real leaf and refutes the report when they are equal.
   */
  badHash: Hex
}

export const ZERO_HASH: Hex = `0x${'0'.repeat(64)}`

/** The EIP-712 typed data of a report, for any viem signer. */
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

/** Brings a signature to the protocol's canonical form (lowercase, v 27/28). */
function canonical(signature: Hex): Hex {
  const lower = signature.toLowerCase() as Hex
  if (!/^0x[0-9a-f]{130}$/.test(lower))
    throw new InvalidArgumentError('the signer returned a malformed signature')
  const v = Number.parseInt(lower.slice(130), 16)
  return v === 0 || v === 1 ? (`${lower.slice(0, 130)}${(v + 27).toString(16)}` as Hex) : lower
}

/** A random bytes32 nonce (WebCrypto, so it runs in browsers too). */
export function randomNonce(): Hex {
  const bytes = crypto.getRandomValues(new Uint8Array(32))
  let hex = '0x'
  for (const b of bytes) hex += b.toString(16).padStart(2, '0')
  return hex as Hex
}

/**
 * Signs a report with the client's key.
 *
 * @example
 * const signed = await signNodeReport(account, { client: account.address, node, nonce: randomNonce(),
 *   timestamp: Math.floor(Date.now() / 1000), requests: 1, failures: 1, bytes: 262144, ttfbMs: 12,
 *   throughput: 0, cid: cid.text, chunk: 3, badHash })
 */
export async function signNodeReport(
  account: RecordSigner,
  message: NodeReport,
): Promise<Signed<NodeReport>> {
  if (getAddress(account.address) !== getAddress(message.client)) {
    throw new InvalidArgumentError(`account ${account.address} cannot sign a report for ${message.client}`)
  }
  return { message, signature: canonical(await account.signTypedData(nodeReportTypedData(message))) }
}

/** Lowercase 0x-hex of some bytes. */
export function toHex(bytes: Uint8Array): Hex {
  let hex = '0x'
  for (const b of bytes) hex += b.toString(16).padStart(2, '0')
  return hex as Hex
}
