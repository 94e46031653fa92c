/**
 * The relay ticket header (browser-safe): a relay accepts a client holding a signed
 * `Ticket` from a tracker it trusts, sent as
 *
 *     Proxy-Authorization: Shoal <base64url (no padding) of encodeTicket(signed)>
 */
import { encodeTicket, type Signed, type Ticket } from '@shoal/protocol'

export const RELAY_TICKET_SCHEME = 'Shoal'

/** Header a relay puts on every answer it makes itself (its refusals), naming the error code. */
export const RELAY_ERROR_HEADER = 'shoal-relay-error'

/**
 * The `Proxy-Authorization` value carrying a signed relay ticket.
 *
 * @example
 * new ProxyAgent({ uri: relayUrl, token: relayAuthorization(ticket) })
 */
export function relayAuthorization(signed: Signed<Ticket>): string {
  const bytes = new TextEncoder().encode(encodeTicket(signed))
  let binary = ''
  for (const b of bytes) binary += String.fromCharCode(b)
  const b64 = btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
  return `${RELAY_TICKET_SCHEME} ${b64}`
}
