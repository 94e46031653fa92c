/**
 * Ticket issuing: the tracker signs `Ticket { issuer, client, budget, expiry, nonce }`
 * (`@shoal/protocol`) with its key. Settlement later pays only for receipts backed by
 * a ticket from a trusted issuer, which bounds what a Sybil client can fabricate.
 * Issuing is rate-limited per IP by the API; each issued ticket is stored with the
 * publisher whose escrow pays for it (docs/receipts.md, Tickets).
 */
import { randomBytes } from 'node:crypto'
import {
  encodeTicket,
  NotFoundError,
  parseCid,
  type RecordSigner,
  type Signed,
  signTicket,
  type Ticket,
  ticketId,
} from '@shoal/protocol'
import { getAddress, type Hex } from 'viem'
import type { TicketRequest } from '../api/schemas.ts'
import { epochAt, epochInfo } from '../epochs/epochs.ts'
import type { TrackerMetrics } from '../metrics.ts'
import { checkSite } from '../sites/sites.ts'
import type { StoreCallOptions, TrackerStore } from '../store/types.ts'

export interface TicketIssuerInit {
  budget: number
  maxBudget: number
  ttlSeconds: number
  epochSeconds: number
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
  /** Whose escrow pays for the bytes the ticket backs (EIP-55). */
  publisher: string
  /** The epoch current at issue time, and when it ends (unix seconds). */
  epoch: number
  epochEndsAt: number
}

export interface TicketIssuer {
  readonly issuer: string
  issue(request: TicketRequest, options?: StoreCallOptions): Promise<IssuedTicket>
}

/**
 * @example
 * const issuer = createTicketIssuer({ budget: 2 ** 30, maxBudget: 2 ** 34, ttlSeconds: 86_400, epochSeconds: 3600 },
 *   { store, account, clock: Date.now })
 * const { ticket, publisher } = await issuer.issue({ client, site: 'blog' })
 */
export function createTicketIssuer(init: TicketIssuerInit, components: TicketIssuerComponents): TicketIssuer {
  const { store, account, clock, metrics } = components

  /** The publisher that pays: the site's owner, a site's owner listing the cid, or the one named. */
  const payer = async (request: TicketRequest, options?: StoreCallOptions): Promise<string> => {
    if (request.publisher !== undefined) return request.publisher
    if (request.site !== undefined) {
      checkSite(request.site)
      const site = await store.getSite(request.site, options)
      if (site === undefined) throw new NotFoundError(`no site named ${JSON.stringify(request.site)}`)
      return getAddress(site.publisher)
    }
    const cid = parseCid(request.cid ?? '').text
    const publisher = await store.findCidPublisher(cid, options)
    if (publisher === undefined) throw new NotFoundError(`no site lists ${cid}`)
    return getAddress(publisher)
  }

  return {
    issuer: account.address,
    async issue(request, options) {
      const publisher = await payer(request, options)
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
          publisher,
        },
        options,
      )
      metrics?.ticketsIssued.inc()
      metrics?.ticketBytes.inc(message.budget)
      const { epoch, endsAt } = epochInfo(epochAt(now, init.epochSeconds), init.epochSeconds)
      return { id, ticket, encoded, publisher, epoch, epochEndsAt: endsAt }
    },
  }
}
