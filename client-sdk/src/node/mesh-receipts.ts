/**
 * `/shoal/receipt/1.0.0`: payment sessions and bandwidth receipts over the mesh, for
 * nodes a client reaches only through it (docs/mesh.md, "Receipts over the mesh"). The
 * records are the HTTP path's (docs/receipts.md); only the transport differs:
 *
 * ```
 * → {"open": {"session": "0x…", "ticket": <signed Ticket>, "epoch": n, "kind": 0}}
 * ← {"status": "ok", "session": "0x…", "node": "0x…"}
 * → {"receipt": <signed BandwidthReceipt>}
 * ← {"status": "ok", "session": "0x…", "bytes": n}          once the node's book has it
 * ← {"status": "error", "code": "SHOAL_ERR_…", "message": "…"}   then the stream is closed
 * ```
 *
 * One request per stream, each a length-prefixed frame (`writeFrame`/`frameReader` of
 * the chunk protocol) of at most `MESH_RECEIPT_LIMITS.maxRequestBytes`. Chunk requests
 * name the session their bytes count for (`ChunkRequest.session`).
 */
import type { Stream } from '@libp2p/interface'
import {
  ERROR_CODES,
  type ErrorCode,
  InvalidArgumentError,
  InvalidFormatError,
  isShoalError,
} from '@shoal/protocol'
import type { Uint8ArrayList } from 'uint8arraylist'
import type { PaymentChannel, SessionRequest } from '../receipts/payments.ts'
import type { MeshClient } from './mesh-client.ts'
import { frameReader, MeshPeerError, parseJsonFrame, writeFrame } from './mesh-protocol.ts'

export const RECEIPT_PROTOCOL = '/shoal/receipt/1.0.0'

export const MESH_RECEIPT_LIMITS = {
  /** Largest request frame: a signed ticket or receipt is under 1 KiB (the HTTP body limit). */
  maxRequestBytes: 16 * 1024,
  /** Largest answer frame. */
  maxAnswerBytes: 1024,
} as const

/** A request on `/shoal/receipt/1.0.0`: open a session, or store a receipt. */
export type MeshPaymentRequest = { open: unknown } | { receipt: unknown }

/** Validates a request's shape (exactly one of `open`, `receipt`); the node checks the records. */
export function decodePaymentRequest(frame: Uint8ArrayList | Uint8Array): MeshPaymentRequest {
  const v = parseJsonFrame(frame, 'payment request')
  const keys = Object.keys(v)
  if (keys.length === 1 && (keys[0] === 'open' || keys[0] === 'receipt')) return v as MeshPaymentRequest
  throw new InvalidFormatError('a payment request has exactly one field, open or receipt')
}

const SESSION_RE = /^0x[0-9a-f]{64}$/
const ADDRESS_RE = /^0x[0-9a-fA-F]{40}$/

/**
 * Sends one request on a fresh `/shoal/receipt/1.0.0` stream and reads the answer. The
 * node's refusal throws `MeshPeerError` with its code; a malformed answer throws
 * `InvalidFormatError`. The stream is aborted on every error.
 */
async function ask(stream: Stream, request: string, options: { signal?: AbortSignal }) {
  const reader = frameReader(stream)
  try {
    await writeFrame(stream, new TextEncoder().encode(request), options)
    await stream.close(options)
    const frame = await reader.next(MESH_RECEIPT_LIMITS.maxAnswerBytes, options)
    if (frame === undefined) throw new InvalidFormatError('the node closed without a payment answer')
    const v = parseJsonFrame(frame, 'payment answer')
    if (v.status === 'error' && typeof v.code === 'string' && Object.hasOwn(ERROR_CODES, v.code))
      throw new MeshPeerError(v.code as ErrorCode, `mesh node: ${String(v.message).slice(0, 200)}`)
    if (v.status !== 'ok' || typeof v.session !== 'string' || !SESSION_RE.test(v.session))
      throw new InvalidFormatError('a payment answer has a status and the session')
    return v
  } catch (err) {
    stream.abort(err as Error)
    throw err
  } finally {
    reader.release()
  }
}

/**
 * Opens a payment session with the node at the other end of `stream`.
 *
 * @example
 * const { node } = await openMeshSession(stream, { session, ticket, epoch, kind: 0 })
 */
export async function openMeshSession(
  stream: Stream,
  request: SessionRequest,
  options: { signal?: AbortSignal } = {},
): Promise<{ session: string; node: string }> {
  const v = await ask(stream, JSON.stringify({ open: request }), options)
  if (typeof v.node !== 'string' || !ADDRESS_RE.test(v.node))
    throw new InvalidFormatError('a session answer names the node address')
  return { session: v.session as string, node: v.node }
}

/**
 * Sends a signed receipt (`encodeBandwidthReceipt`'s text); resolves once the node
 * stored it durably.
 *
 * @example
 * await sendMeshReceipt(stream, encodeBandwidthReceipt(signed))
 */
export async function sendMeshReceipt(
  stream: Stream,
  encoded: string,
  options: { signal?: AbortSignal } = {},
): Promise<{ session: string; bytes: number }> {
  const v = await ask(stream, `{"receipt":${encoded}}`, options)
  if (!Number.isSafeInteger(v.bytes) || (v.bytes as number) < 0)
    throw new InvalidFormatError('a receipt answer names the bytes stored')
  return { session: v.session as string, bytes: v.bytes as number }
}

/**
 * The payment channel of a mesh client: sessions and receipts for mesh-only nodes, the
 * way `createPayments` asks for them (`createMeshDispatch` carries one).
 *
 * @example
 * const payments = createPayments(init, { ...components, mesh: meshPaymentChannel(meshClient) })
 */
export function meshPaymentChannel(mesh: Pick<MeshClient, 'openSession' | 'sendReceipt'>): PaymentChannel {
  return {
    async open(source, request, { signal }) {
      if (source.mesh === undefined) throw new InvalidArgumentError(`${source.url} is not a mesh node`)
      return mesh.openSession(source.mesh, request, { signal })
    },
    async receipt(source, encoded, { signal }) {
      if (source.mesh === undefined) throw new InvalidArgumentError(`${source.url} is not a mesh node`)
      try {
        await mesh.sendReceipt(source.mesh, encoded, { signal })
        return { ok: true }
      } catch (err) {
        // the node's answer is a refusal; anything else is no answer (the caller reports it)
        if (isShoalError(err) && (err as { remote?: boolean }).remote === true)
          return { ok: false, reason: `${err.code}: ${err.message}` }
        throw err
      }
    },
  }
}
