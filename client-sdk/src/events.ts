/**
 * What the client tells `onEvent` about: the resilience machinery at work. Events are
 * plain data (cloneable); `node` is a node's base URL, `address` its key when known.
 */
import type { Address, Hex } from 'viem'

/** A failure as data: the error's code (a Shoal code, or `SHOAL_ERR_INTERNAL`) and message. */
export interface FailureInfo {
  code: string
  message: string
}

export type ClientEvent =
  /** A second request was started because the first had not answered within `afterMs`. */
  | { type: 'hedge'; cid: string; from: string; to: string; afterMs: number }
  /** A node failed before sending a byte (error, refusal, time-out); the next one is tried. */
  | { type: 'node-error'; cid: string; node: string; error: FailureInfo }
  /** A node failed mid-stream; the body resumes on another source from byte `at` (a chunk boundary). */
  | { type: 'failover'; cid: string; node: string; at: number; error: FailureInfo }
  /** A node sent a chunk that does not match the CID. No byte of it reached the app. */
  | {
      type: 'integrity-failure'
      cid: string
      node: string
      address?: Address
      chunk: number
      /** Leaf-form hash of the bytes received for the chunk. */
      badHash: Hex
    }
  /**
   * What became of an integrity report: `filed` with the tracker, `failed` (the tracker
   * refused it or did not answer), or `skipped` (no account, no tracker, or the node's
   * address is unknown).
   */
  | {
      type: 'report'
      cid: string
      node: string
      chunk: number
      outcome: 'filed' | 'failed' | 'skipped'
      reason?: string
    }
  /**
   * A receipt sent to a node (client with an account): `accepted` (stored by the node),
   * `refused` (the node said why), or `failed` (no answer). Neither is retried as such:
   * the next receipt of the session is cumulative.
   */
  | {
      type: 'receipt'
      node: string
      bytes: number
      outcome: 'accepted' | 'refused' | 'failed'
      reason?: string
    }
  /** No ticket, or a node refused to open a payment session: its bytes are fetched unpaid. */
  | { type: 'session'; node: string; outcome: 'failed'; reason: string }
  /** Every node failed; the bytes now come from the site's origin (verified against the CID). */
  | { type: 'origin-fallback'; cid: string; origin: string; at: number }
