/**
 * Epochs: time cut into slices of `epochSeconds`; epoch `n` covers unix seconds
 * `[n × epochSeconds, (n + 1) × epochSeconds)` (docs/receipts.md, Epochs). Receipts name
 * the epoch of their session; settlement pays one epoch at a time.
 */
import { InvalidArgumentError } from '@shoal/protocol'

export interface EpochInfo {
  epoch: number
  /** Unix seconds, inclusive. */
  startsAt: number
  /** Unix seconds, exclusive: the next epoch's `startsAt`. */
  endsAt: number
  epochSeconds: number
}

function checkLength(epochSeconds: number): void {
  if (!Number.isSafeInteger(epochSeconds) || epochSeconds < 1) {
    throw new InvalidArgumentError(`epochSeconds must be a positive integer, got ${String(epochSeconds)}`)
  }
}

/**
 * The epoch a time (ms since the unix epoch) falls in.
 *
 * @example
 * epochAt(Date.now(), 3600) // 491234
 */
export function epochAt(ms: number, epochSeconds: number): number {
  checkLength(epochSeconds)
  return Math.floor(Math.floor(ms / 1000) / epochSeconds)
}

/**
 * When epoch `n` starts and ends.
 *
 * @example
 * const { startsAt, endsAt } = epochInfo(491234, 3600)
 */
export function epochInfo(epoch: number, epochSeconds: number): EpochInfo {
  checkLength(epochSeconds)
  if (!Number.isSafeInteger(epoch) || epoch < 0) {
    throw new InvalidArgumentError(`epoch must be a non-negative integer, got ${String(epoch)}`)
  }
  const startsAt = epoch * epochSeconds
  return { epoch, startsAt, endsAt: startsAt + epochSeconds, epochSeconds }
}
