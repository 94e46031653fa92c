/**
 * Relayed bytes, metered both ways per (client, ticket): what relay receipts (kind 1)
 * are checked against. `up` is client → destination, `down` destination → client;
 * both are paid. Counters are cumulative for the life of the process.
 */
import type { Hex } from 'viem'
import type { RelayClient } from './ticket-auth.ts'

export interface RelayUsage {
  client: string
  ticket: Hex
  /** Client → destination bytes (request bodies, tunnel upstream). */
  up: number
  /** Destination → client bytes (response heads and bodies, tunnel downstream). */
  down: number
}

export type RelayDirection = 'up' | 'down'

export type RelayBytesListener = (
  usage: Readonly<RelayUsage>,
  direction: RelayDirection,
  bytes: number,
) => void

export interface RelayMeter {
  add(who: RelayClient, direction: RelayDirection, bytes: number): void
  /** The counters of one ticket (its client is part of the ticket). */
  get(ticket: Hex): Readonly<RelayUsage> | undefined
  /** Every (client, ticket) pair seen. */
  entries(): IterableIterator<Readonly<RelayUsage>>
  /** Called on every metered piece; returns the unsubscribe function. Listeners must not throw. */
  onBytes(listener: RelayBytesListener): () => void
}

/**
 * @example
 * const meter = createRelayMeter()
 * meter.onBytes((usage) => book.noteRelayBytes(usage.ticket, usage.up + usage.down))
 */
export function createRelayMeter(): RelayMeter {
  // keyed by the ticket id in lower case
  const usage = new Map<string, RelayUsage>()
  const listeners = new Set<RelayBytesListener>()
  return {
    add(who, direction, bytes) {
      if (bytes <= 0) return
      const key = who.ticket.toLowerCase()
      let u = usage.get(key)
      if (u === undefined) {
        u = { client: who.client, ticket: who.ticket, up: 0, down: 0 }
        usage.set(key, u)
      }
      u[direction] += bytes
      for (const l of listeners) l(u, direction, bytes)
    },
    get: (ticket) => usage.get(ticket.toLowerCase()),
    entries: () => usage.values(),
    onBytes(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
  }
}
