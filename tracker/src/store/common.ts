/**
 * Pieces both storage adapters share: key normalization, row checks and the
 * conversion of state rows to and from their stored JSON.
 */
import { InvalidArgumentError, throwIfAborted } from '@shoal/protocol'
import { checkRow, type NodeStateRow } from '../selection/index.ts'
import type { EpochRow, EpochState, ReceiptBatchRow, ReceiptRow, StoreCallOptions } from './types.ts'

type Row = Record<string, unknown>

/** Largest page `listNodes` returns. */
export const MAX_LIST_LIMIT = 10_000

const ADDRESS = /^0x[0-9a-fA-F]{40}$/

/** The lookup key of an address: lowercase hex. Throws `InvalidArgumentError` on a non-address. */
export function keyOf(address: string): string {
  if (typeof address !== 'string' || !ADDRESS.test(address)) {
    throw new InvalidArgumentError(`not a 0x-hex address: ${JSON.stringify(address)}`)
  }
  return address.toLowerCase()
}

/** Throws `AbortError` when the call's signal is aborted. */
export function checkSignal(options: StoreCallOptions | undefined): void {
  throwIfAborted(options?.signal)
}

export function checkLimit(limit: number): number {
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
    throw new InvalidArgumentError(
      `limit must be an integer from 1 to ${MAX_LIST_LIMIT}, got ${String(limit)}`,
    )
  }
  return limit
}

/** A state row as stored: JSON text of the row's fields. */
export function encodeState(row: NodeStateRow): string {
  return JSON.stringify(row)
}

/** A stored state row, checked; `undefined` for a row that no longer passes the checks. */
export function decodeState(text: string | null | undefined): NodeStateRow | undefined {
  if (text === null || text === undefined) return undefined
  try {
    return checkRow(0, JSON.parse(text))
  } catch {
    return undefined
  }
}

/** Copies bytes out of a driver's buffer into a plain `Uint8Array`. */
export function toBytes(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return new Uint8Array(value)
  throw new InvalidArgumentError('expected bytes from the database')
}

// Row mappers of the settlement tables (same column names in both adapters).

export function receiptOf(r: Row): ReceiptRow {
  return {
    batch: r.batch as string,
    index: r.idx as number,
    node: r.node as string,
    client: r.client as string,
    session: r.session as string,
    bytes: r.bytes as number,
    epoch: r.epoch as number,
    ticket: r.ticket as string,
    kind: r.kind as number,
    signature: r.signature as string,
    digest: r.digest as string,
    rejected: (r.rejected as string | null) ?? undefined,
  }
}

export function batchOf(r: Row): ReceiptBatchRow {
  return {
    id: r.id as string,
    node: r.node as string,
    epoch: r.epoch as number,
    count: r.count as number,
    rejected: r.rejected as number,
    receivedAt: r.received_at as number,
    batch: r.batch as string,
  }
}

export function epochOf(r: Row): EpochRow {
  return {
    epoch: r.epoch as number,
    state: r.state as EpochState,
    root: (r.root as string | null) ?? undefined,
    total: r.total as string,
    debits: r.debits as string,
    tree: (r.tree as string | null) ?? undefined,
    report: r.report as string,
    txHash: (r.tx_hash as string | null) ?? undefined,
    builtAt: r.built_at as number,
    updatedAt: r.updated_at as number,
  }
}
