/**
 * Relay tickets in `Proxy-Authorization`. The header is
 *
 *     Proxy-Authorization: Shoal <base64url of encodeTicket(signed)>
 *
 * — the same signed `Ticket` record (and canonical JSON encoding) as content tickets,
 * base64url without padding so it fits a header. The relay accepts it when it decodes
 * strictly, its issuer is one the node trusts (the tracker it registered with), it has
 * not expired and the issuer's signature holds. Verified tickets are remembered by
 * their header text (signature recovery costs about a millisecond); expiry is checked
 * on every use.
 */
import { RELAY_TICKET_SCHEME, relayAuthorization } from '@shoal/client-sdk'
import {
  decodeTicket,
  ExpiredError,
  isShoalError,
  ProxyAuthRequiredError,
  type ShoalError,
  ticketId,
  UnauthorizedError,
  verifyTicket,
} from '@shoal/protocol'
import { LRUCache } from 'lru-cache'
import type { Hex } from 'viem'

/** The `Proxy-Authorization` scheme (the encoding is the SDK's `relayAuthorization`). */
export const TICKET_SCHEME = RELAY_TICKET_SCHEME
export { relayAuthorization }
/** Clock disagreement tolerated on a ticket's expiry, in seconds. */
export const TICKET_SKEW_SECONDS = 60
/** Largest `Proxy-Authorization` value looked at. */
const MAX_HEADER_CHARS = 4096

/** A client the relay accepted: whose bytes are metered under which ticket. */
export interface RelayClient {
  /** Ticket's client address (checksummed as signed). */
  client: string
  /** `ticketId(ticket)`: the id receipts name. */
  ticket: Hex
  expiry: number
  budget: number
}

export interface TicketAuthInit {
  /** Issuers whose tickets are accepted (the tracker's address). */
  issuers: readonly string[]
  /** Clock in ms (tests). */
  now?: () => number
}

export interface TicketAuth {
  /**
   * Checks a `Proxy-Authorization` header value.
   *
   * @throws a ShoalError: PROXY_AUTH_REQUIRED (missing or not `Shoal …`), INVALID_FORMAT,
   * EXPIRED, INVALID_SIGNATURE, UNAUTHORIZED (untrusted issuer)
   */
  authorize(header: string | undefined): Promise<RelayClient>
}

/**
 * @example
 * const auth = createTicketAuth({ issuers: [trackerAddress] })
 * const { client, ticket } = await auth.authorize(req.headers['proxy-authorization'])
 */
export function createTicketAuth(init: TicketAuthInit): TicketAuth {
  const issuers = new Set(init.issuers.map((a) => a.toLowerCase()))
  const now = init.now ?? Date.now
  const verified = new LRUCache<string, RelayClient>({ max: 10_000 })

  const expired = (c: RelayClient) => Math.floor(now() / 1000) > c.expiry + TICKET_SKEW_SECONDS

  return {
    async authorize(header) {
      if (header === undefined || header === '')
        throw new ProxyAuthRequiredError(
          'this relay needs a relay ticket: Proxy-Authorization: Shoal <ticket>',
        )
      const hit = verified.get(header)
      if (hit !== undefined) {
        if (expired(hit)) throw new ExpiredError('the relay ticket has expired')
        return hit
      }
      if (header.length > MAX_HEADER_CHARS)
        throw new ProxyAuthRequiredError('Proxy-Authorization is too long')
      const space = header.indexOf(' ')
      if (space < 0 || header.slice(0, space).toLowerCase() !== TICKET_SCHEME.toLowerCase())
        throw new ProxyAuthRequiredError('Proxy-Authorization must use the Shoal scheme')
      const token = header.slice(space + 1).trim()
      if (!/^[A-Za-z0-9_-]+$/.test(token))
        throw new ProxyAuthRequiredError('the relay ticket must be base64url')
      const signed = decodeTicket(Buffer.from(token, 'base64url').toString('utf8'))
      if (!issuers.has(signed.message.issuer.toLowerCase()))
        throw new UnauthorizedError('the relay ticket was not issued by a tracker this node trusts')
      const ticket = await verifyTicket(signed, {
        now: Math.floor(now() / 1000),
        maxSkewSeconds: TICKET_SKEW_SECONDS,
      })
      const client: RelayClient = {
        client: ticket.client,
        ticket: ticketId(ticket),
        expiry: ticket.expiry,
        budget: ticket.budget,
      }
      verified.set(header, client)
      return client
    },
  }
}

/** Every auth failure is a 407; the body keeps the precise code. */
export function authFailure(err: unknown): ShoalError {
  if (isShoalError(err)) return err as ShoalError
  return new ProxyAuthRequiredError('the relay ticket could not be checked')
}
