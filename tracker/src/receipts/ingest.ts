/**
 * `POST /v1/receipts`: a node submits the receipts of one ended epoch as a batch it
 * signed (`ReceiptBatch`, docs/receipts.md). The batch is checked whole (the node's
 * signature, that it is a registered node, the submission window, that `count` and
 * `receiptsHash` cover exactly the receipts sent), then each receipt gets a verdict
 * that is cheap to reach here (right node and epoch, a ticket this tracker issued to
 * that client); the client signatures are verified at settlement, in worker threads.
 * The batch and every receipt, with its rejection reason if any, are written in one
 * transaction: a half-written batch is never counted. Resubmitting the same signed
 * batch answers the stored result.
 */
import {
  type BandwidthReceipt,
  ConflictError,
  decodeBandwidthReceipt,
  decodeReceiptBatch,
  ForbiddenError,
  hashReceiptBatch,
  InvalidFormatError,
  InvalidSignatureError,
  NotFoundError,
  receiptsHash,
  type Signed,
  StaleError,
  verifyReceiptBatch,
} from '@shoal/protocol'
import type { Logger } from 'pino'
import { epochAt, epochInfo } from '../epochs/epochs.ts'
import type { TrackerMetrics } from '../metrics.ts'
import { REJECT } from '../settlement/reasons.ts'
import type { ReceiptRow, StoreCallOptions, TrackerStore } from '../store/types.ts'
import { createReceiptDigester, digestHex } from './digest.ts'

export interface ReceiptIngestInit {
  epochSeconds: number
  /** Seconds after an epoch ends during which its batches are accepted. */
  submitWindowSeconds: number
}

export interface ReceiptIngestComponents {
  store: TrackerStore
  clock: () => number
  logger?: Logger
  metrics?: TrackerMetrics
}

export interface BatchResult {
  batch: string
  node: string
  epoch: number
  count: number
  accepted: number
  rejected: number
  /** False when this exact batch was stored before (the answer is the stored one). */
  created: boolean
}

export interface BatchReport extends BatchResult {
  receivedAt: number
  /** Receipts refused at submission, by position. */
  rejections: { index: number; session: string; reason: string }[]
}

export interface ReceiptIngest {
  submit(body: unknown, options?: StoreCallOptions): Promise<BatchResult>
  report(id: string, options?: StoreCallOptions): Promise<BatchReport>
}

interface Body {
  batch: unknown
  receipts: unknown[]
}

function readBody(body: unknown): Body {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new InvalidFormatError('the body must be {"batch": …, "receipts": […]}')
  const { batch, receipts, ...rest } = body as Record<string, unknown>
  for (const key of Object.keys(rest)) {
    if (key !== 'tickets') throw new InvalidFormatError(`unknown field ${JSON.stringify(key)}`)
  }
  if (!Array.isArray(receipts)) throw new InvalidFormatError('receipts must be an array')
  return { batch, receipts }
}

/**
 * @example
 * const ingest = createReceiptIngest({ epochSeconds: 3600, submitWindowSeconds: 900 }, { store, clock: Date.now })
 * const result = await ingest.submit(JSON.parse(body))
 */
export function createReceiptIngest(
  init: ReceiptIngestInit,
  components: ReceiptIngestComponents,
): ReceiptIngest {
  const { store, clock, logger, metrics } = components
  const digester = createReceiptDigester()

  const resultOf = (row: { id: string; node: string; epoch: number; count: number; rejected: number }) => ({
    batch: row.id,
    node: row.node,
    epoch: row.epoch,
    count: row.count,
    accepted: row.count - row.rejected,
    rejected: row.rejected,
  })

  return {
    async submit(raw, options) {
      const body = readBody(raw)
      const signed = decodeReceiptBatch(body.batch)
      const now = clock()
      const batch = await verifyReceiptBatch(signed, { now: now / 1000 })
      const id = hashReceiptBatch(batch)
      const held = await store.getReceiptBatch(id, options)
      if (held !== undefined) return { ...resultOf(held), created: false }

      const node = await store.getNode(batch.node, options)
      if (node === undefined)
        throw new ForbiddenError(`${batch.node} is not a node registered with this tracker`)
      const current = epochAt(now, init.epochSeconds)
      if (batch.epoch >= current) throw new ConflictError(`epoch ${batch.epoch} has not ended`)
      const { endsAt } = epochInfo(batch.epoch, init.epochSeconds)
      if (now / 1000 > endsAt + init.submitWindowSeconds) {
        throw new StaleError(`the submission window of epoch ${batch.epoch} closed`)
      }
      if ((await store.getEpoch(batch.epoch, options)) !== undefined) {
        throw new StaleError(`epoch ${batch.epoch} is settled`)
      }
      if (body.receipts.length !== batch.count) {
        throw new InvalidFormatError(
          `the batch covers ${batch.count} receipts, ${body.receipts.length} were sent`,
        )
      }

      const receipts: Signed<BandwidthReceipt>[] = new Array(body.receipts.length)
      const digests: `0x${string}`[] = new Array(body.receipts.length)
      for (let i = 0; i < body.receipts.length; i++) {
        try {
          receipts[i] = decodeBandwidthReceipt(body.receipts[i])
        } catch (err) {
          throw new InvalidFormatError(`receipts[${i}]: ${(err as Error).message}`, { cause: err })
        }
        digests[i] = digestHex(digester.digest(receipts[i]!.message))
      }
      if (receiptsHash(digests) !== batch.receiptsHash) {
        throw new InvalidSignatureError('receiptsHash does not match the receipts sent')
      }

      const ticketIds = [...new Set(receipts.map((r) => r.message.ticket))]
      const tickets = new Map((await store.getTickets(ticketIds, options)).map((t) => [t.id, t]))
      const nodeKey = batch.node.toLowerCase()
      const rows: ReceiptRow[] = receipts.map((r, index) => {
        const m = r.message
        const ticket = tickets.get(m.ticket)
        let rejected: string | undefined
        if (m.node.toLowerCase() !== nodeKey) rejected = REJECT.wrongNode
        else if (m.epoch !== batch.epoch) rejected = REJECT.wrongEpoch
        else if (ticket === undefined) rejected = REJECT.unknownTicket
        else if (ticket.client.toLowerCase() !== m.client.toLowerCase()) rejected = REJECT.ticketClient
        else if (ticket.publisher === undefined) rejected = REJECT.unknownTicket
        return {
          batch: id,
          index,
          node: m.node,
          client: m.client,
          session: m.session,
          bytes: m.bytes,
          epoch: m.epoch,
          ticket: m.ticket,
          kind: m.kind,
          signature: r.signature,
          digest: digests[index]!,
          rejected,
        }
      })
      const rejected = rows.filter((r) => r.rejected !== undefined).length
      const row = {
        id,
        node: batch.node,
        epoch: batch.epoch,
        count: batch.count,
        rejected,
        receivedAt: now,
        batch: JSON.stringify(signed),
      }
      const { created } = await store.addReceiptBatch(row, rows, options)
      metrics?.receiptBatches.inc({ outcome: created ? 'stored' : 'duplicate' })
      metrics?.receipts.inc({ outcome: 'accepted' }, batch.count - rejected)
      metrics?.receipts.inc({ outcome: 'rejected' }, rejected)
      logger?.info(
        { node: batch.node, epoch: batch.epoch, count: batch.count, rejected },
        'receipt batch stored',
      )
      return { ...resultOf(row), created }
    },

    async report(id, options) {
      const row = await store.getReceiptBatch(id, options)
      if (row === undefined) throw new NotFoundError(`no receipt batch ${id}`)
      const rejections = (await store.listBatchReceipts(id, { rejectedOnly: true }, options)).map((r) => ({
        index: r.index,
        session: r.session,
        reason: r.rejected ?? '',
      }))
      return { ...resultOf(row), created: false, receivedAt: row.receivedAt, rejections }
    },
  }
}
