/**
 * The answering side of `/shoal/receipt/1.0.0` (docs/mesh.md, "Receipts over the mesh"):
 * a client that reaches the node only through the mesh opens its payment session and
 * sends its receipts here. Each request goes to the node's `Sessions`, the same checks
 * and the same durable receipt book as `POST /v1/sessions` and `POST /v1/receipts`; the
 * answer is written only after `accept` returned, that is after the book has the
 * receipt. A refusal is an error header with its code, then the stream is closed; a
 * malformed or oversized frame closes the stream too. Nothing a peer sends can throw out
 * of the handler.
 */
import type { StreamHandler } from '@libp2p/interface'
import { decodePaymentRequest, MESH_RECEIPT_LIMITS } from '@shoal/client-sdk/node'
import type { Logger } from 'pino'
import type { Sessions } from '../receipts/sessions.ts'
import { requestAnswerHandler } from './server.ts'

export interface MeshReceiptsComponents {
  sessions: Pick<Sessions, 'open' | 'accept'>
  logger?: Logger
}

export interface MeshReceiptsInit {
  /** How long a peer has to send its request frame. */
  requestTimeoutMs: number
}

/**
 * @example
 * await libp2p.handle(RECEIPT_PROTOCOL, receiptHandler({ requestTimeoutMs: 10_000 }, { sessions }))
 */
export function receiptHandler(init: MeshReceiptsInit, components: MeshReceiptsComponents): StreamHandler {
  return requestAnswerHandler(
    { ...init, maxRequestBytes: MESH_RECEIPT_LIMITS.maxRequestBytes },
    components.logger,
    async (frame) => {
      const request = decodePaymentRequest(frame)
      const answer =
        'open' in request
          ? await components.sessions.open(request.open)
          : await components.sessions.accept(request.receipt)
      return { status: 'ok', ...answer }
    },
  )
}
