/**
 * What a node calls to be paid: `submitReceiptBatch` signs a `ReceiptBatch` over the
 * receipts of one epoch and posts it (`POST /v1/receipts`); `fetchPayoutProof` asks for
 * the payout proof of an address in a settled epoch (`GET /v1/epochs/<n>/proofs/<address>`).
 * Plain `fetch`; errors are the tracker's typed errors rebuilt from its JSON body.
 */
import {
  type BandwidthReceipt,
  encodeBandwidthReceipt,
  encodeReceiptBatch,
  hashBandwidthReceipt,
  InvalidArgumentError,
  type RecordSigner,
  receiptsHash,
  ShoalError,
  type Signed,
  signReceiptBatch,
  UnavailableError,
} from '@shoal/protocol'
import type { BatchResult } from '../receipts/ingest.ts'

export type { BatchResult }

export interface SubmitReceiptBatchOptions {
  /** The tracker's base URL. */
  trackerUrl: string
  /** The node's key (signs the batch; must be the receipts' `node`). */
  account: RecordSigner
  epoch: number
  receipts: readonly Signed<BandwidthReceipt>[]
  /** Unix seconds of the signature (default: now). */
  timestamp?: number
  signal?: AbortSignal
}

async function call<T>(url: string, init: RequestInit): Promise<T> {
  let res: Response
  try {
    res = await fetch(url, init)
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err
    throw new UnavailableError(`tracker unreachable: ${(err as Error).message}`, { cause: err })
  }
  const text = await res.text()
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    throw new UnavailableError(`tracker answered ${res.status} without JSON`)
  }
  if (!res.ok) {
    const e = (body as { error?: { code?: string; message?: string } }).error
    throw new ShoalError(
      (e?.code ?? 'SHOAL_ERR_UPSTREAM') as never,
      e?.message ?? `tracker answered ${res.status}`,
    )
  }
  return body as T
}

/**
 * Signs and submits one epoch's receipts. Resubmitting the same batch is safe (the
 * tracker answers the stored result with `created: false`).
 *
 * @example
 * const result = await submitReceiptBatch({ trackerUrl, account, epoch, receipts: book.receiptsOf(epoch) })
 */
export async function submitReceiptBatch(options: SubmitReceiptBatchOptions): Promise<BatchResult> {
  const { trackerUrl, account, epoch, receipts } = options
  if (!Array.isArray(receipts)) throw new InvalidArgumentError('receipts must be an array')
  const batch = await signReceiptBatch(account, {
    node: account.address,
    epoch,
    count: receipts.length,
    receiptsHash: receiptsHash(receipts.map((r) => hashBandwidthReceipt(r.message))),
    timestamp: options.timestamp ?? Math.floor(Date.now() / 1000),
  })
  const body = `{"batch":${encodeReceiptBatch(batch)},"receipts":[${receipts.map(encodeBandwidthReceipt).join(',')}]}`
  return call<BatchResult>(new URL('/v1/receipts', trackerUrl).href, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    ...(options.signal !== undefined ? { signal: options.signal } : {}),
  })
}

/** A payout leaf and its Merkle proof, as `claim` on the RewardDistributor takes them. */
export interface PayoutProof {
  epoch: number
  root: `0x${string}`
  /** The leaf's index: the account keeps it in every epoch. */
  index: number
  account: `0x${string}`
  /** Cumulative amount (token base units, decimal string). */
  amount: string
  proof: `0x${string}`[]
}

/**
 * @example
 * const { index, amount, proof } = await fetchPayoutProof({ trackerUrl, epoch, address: payout })
 */
export function fetchPayoutProof(options: {
  trackerUrl: string
  epoch: number
  address: string
  signal?: AbortSignal
}): Promise<PayoutProof> {
  return call<PayoutProof>(
    new URL(`/v1/epochs/${options.epoch}/proofs/${options.address}`, options.trackerUrl).href,
    options.signal !== undefined ? { signal: options.signal } : {},
  )
}
