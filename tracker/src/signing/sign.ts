/**
 * Signing and verifying the tracker's own messages (`signing/types.ts`). Signatures
 * follow the protocol's rules: 65 bytes r ‖ s ‖ v as lowercase hex, v 27 or 28, low s.
 */
import { InvalidArgumentError, InvalidSignatureError, type RecordSigner, type Signed } from '@shoal/protocol'
import { type Address, getAddress, type Hex, recoverTypedDataAddress } from 'viem'
import {
  type NodeReport,
  nodeReportTypedData,
  type TrackerSession,
  trackerSessionTypedData,
} from './types.ts'

const SIGNATURE_RE = /^0x[0-9a-f]{130}$/
const HALF_N = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0n

function canonical(signature: Hex): Hex {
  const lower = signature.toLowerCase() as Hex
  if (!/^0x[0-9a-f]{130}$/.test(lower))
    throw new InvalidArgumentError('the signer returned a malformed signature')
  const v = Number.parseInt(lower.slice(130), 16)
  return v === 0 || v === 1 ? (`${lower.slice(0, 130)}${(v + 27).toString(16)}` as Hex) : lower
}

/** Throws `InvalidSignatureError` unless the signature is in canonical form. */
export function checkCanonicalSignature(signature: string): asserts signature is Hex {
  if (!SIGNATURE_RE.test(signature)) {
    throw new InvalidSignatureError('a signature is 0x + 130 lowercase hex digits (r ‖ s ‖ v)')
  }
  const s = BigInt(`0x${signature.slice(66, 130)}`)
  const v = Number.parseInt(signature.slice(130), 16)
  if (s === 0n || s > HALF_N || (v !== 27 && v !== 28)) {
    throw new InvalidSignatureError('the signature is not canonical (low s, v 27 or 28)')
  }
}

async function recover(typedData: Parameters<typeof recoverTypedDataAddress>[0]): Promise<Address> {
  try {
    return await recoverTypedDataAddress(typedData)
  } catch (err) {
    throw new InvalidSignatureError('the signature does not recover to a key', { cause: err })
  }
}

/**
 * Signs a session binding with the node's key (done by the node when it registers).
 *
 * @example
 * const session = await signTrackerSession(account, { node: account.address, publicKey, timestamp: record.timestamp })
 */
export async function signTrackerSession(
  account: RecordSigner,
  message: TrackerSession,
): Promise<Signed<TrackerSession>> {
  if (getAddress(account.address) !== getAddress(message.node)) {
    throw new InvalidArgumentError(`account ${account.address} cannot sign a session for ${message.node}`)
  }
  return { message, signature: canonical(await account.signTypedData(trackerSessionTypedData(message))) }
}

/** Verifies a session binding: canonical signature made by `message.node`. */
export async function verifyTrackerSession(signed: Signed<TrackerSession>): Promise<TrackerSession> {
  checkCanonicalSignature(signed.signature)
  const signer = await recover({ ...trackerSessionTypedData(signed.message), signature: signed.signature })
  if (signer !== getAddress(signed.message.node)) {
    throw new InvalidSignatureError(
      `the session was signed by ${signer}, not by the node ${signed.message.node}`,
    )
  }
  return signed.message
}

/** Signs a report with the client's key (the SDK's own signer). */
export { signNodeReport } from '@shoal/client-sdk'

/** Verifies a report: canonical signature made by `message.client`. */
export async function verifyNodeReport(signed: Signed<NodeReport>): Promise<NodeReport> {
  checkCanonicalSignature(signed.signature)
  const signer = await recover({ ...nodeReportTypedData(signed.message), signature: signed.signature })
  if (signer !== getAddress(signed.message.client)) {
    throw new InvalidSignatureError(
      `the report was signed by ${signer}, not by its client ${signed.message.client}`,
    )
  }
  return signed.message
}
