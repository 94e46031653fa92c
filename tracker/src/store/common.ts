/**
 * Pieces both storage adapters share: key normalization, row checks and the
 * conversion of state rows to and from their stored JSON.
 */
import { InvalidArgumentError, throwIfAborted } from '@shoal/protocol'
import { checkRow, type NodeStateRow } from '../selection/index.ts'
import type { StoreCallOptions } from './types.ts'

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
