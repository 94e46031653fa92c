/**
 * Ticket issuing: the tracker signs `Ticket { issuer, client, budget, expiry, nonce }`
 * (`@shoal/protocol`) with its key. Settlement later pays only for receipts backed by
 * a ticket from a trusted issuer, which bounds what a Sybil client can fabricate.
 * Issuing is rate-limited per IP by the API; each issued ticket is stored.
 */
import { randomBytes } from 'node:crypto'
import {
  encodeTicket,
  type RecordSigner,
  type Signed,
  signTicket,
  type Ticket,
  ticketId,
} from '@shoal/protocol'
import type { Hex } from 'viem'
import type { TicketRequest } from '../api/schemas.ts'
import type { TrackerMetrics } from '../metrics.ts'
import type { StoreCallOptions, TrackerStore } from '../store/types.ts'

export interface TicketIssuerInit {
  budget: number
  maxBudget: number
  ttlSeconds: number
}

export interface TicketIssuerComponents {
  store: TrackerStore
  account: RecordSigner
  clock: () => number
  metrics?: TrackerMetrics
}

export interface IssuedTicket {
  id: Hex
  ticket: Signed<Ticket>
  /** `encodeTicket(ticket)`. */
  encoded: string
}

export interface TicketIssuer {
  readonly issuer: string
  issue(request: TicketRequest, options?: StoreCallOptions): Promise<IssuedTicket>
}

/**
 * @example
 * const issuer = createTicketIssuer({ budget: 2 ** 30, maxBudget: 2 ** 34, ttlSeconds: 86_400 }, { store, account, clock: Date.now })
 * const { ticket } = await issuer.issue({ client })
 */
export function createTicketIssuer(init: TicketIssuerInit, components: TicketIssuerComponents): TicketIssuer {
  const { store, account, clock, metrics } = components
  return {
    issuer: account.address,
    async issue(request, options) {
      const now = clock()
      const message: Ticket = {
        issuer: account.address,
        client: request.client,
        budget: Math.min(request.budget ?? init.budget, init.maxBudget),
        expiry: Math.floor(now / 1000) + init.ttlSeconds,
        nonce: `0x${randomBytes(32).toString('hex')}`,
      }
      const ticket = await signTicket(account, message)
      const id = ticketId(ticket.message)
      const encoded = encodeTicket(ticket)
      await store.addTicket(
        {
          id,
          client: message.client,
          budget: message.budget,
          expiry: message.expiry,
          issuedAt: now,
          ticket: encoded,
        },
        options,
      )
      metrics?.ticketsIssued.inc()
      metrics?.ticketBytes.inc(message.budget)
      return { id, ticket, encoded }
    },
  }
}
