/** Tickets: byte budgets an issuer grants a client; receipts name the ticket that pays for them. */

import type { Hex } from 'viem'
import {
  decodeRecord,
  encodeRecord,
  hashRecord,
  type RecordSigner,
  type RecordTypedData,
  recordTypedData,
  signRecord,
  structHashRecord,
  type VerifyOptions,
  validateRecord,
  verifyRecord,
} from './codec.ts'
import type { Signed, Ticket } from './schemas.ts'

/**
 * Checks a ticket and returns it typed.
 *
 * @throws InvalidFormatError naming the first bad field
 * @example
 * const ticket = validateTicket({ issuer, client, budget: 1 << 30, expiry: now + 3600, nonce })
 */
export function validateTicket(message: unknown): Ticket {
  return validateRecord('Ticket', message)
}

/**
 * A ticket's id: its EIP-712 struct hash (`hashStruct`, no domain). Receipts
 * carry it in their `ticket` field.
 *
 * @example
 * const receipt = { node, client, session, bytes, epoch, ticket: ticketId(ticket), kind: 0 }
 */
export function ticketId(ticket: Ticket): Hex {
  return structHashRecord('Ticket', ticket)
}

/**
 * The EIP-712 digest a ticket's signature signs (not its id: see `ticketId`).
 *
 * @example
 * const digest = hashTicket(ticket)
 */
export function hashTicket(message: Ticket): Hex {
  return hashRecord('Ticket', message)
}

/**
 * The ticket's EIP-712 typed data, for signers other than a local key.
 *
 * @example
 * const signature = await walletClient.signTypedData({ account, ...ticketTypedData(ticket) })
 */
export function ticketTypedData(message: Ticket): RecordTypedData['Ticket'] {
  return recordTypedData('Ticket', message)
}

/**
 * Signs a ticket with the issuer's key (`account.address` must be `issuer`).
 *
 * @example
 * const signed = await signTicket(trackerAccount, { issuer: trackerAccount.address, client, budget, expiry, nonce })
 */
export function signTicket(account: RecordSigner, message: Ticket): Promise<Signed<Ticket>> {
  return signRecord('Ticket', account, message)
}

/**
 * Verifies a signed ticket: format, not expired (`now` > `expiry` + skew is
 * `ExpiredError`), and the issuer's signature. Whether the issuer is trusted
 * is the caller's decision.
 *
 * @throws InvalidFormatError, ExpiredError, InvalidSignatureError
 * @example
 * const ticket = await verifyTicket(signed)
 * if (!trustedIssuers.has(ticket.issuer)) throw new ForbiddenError('unknown issuer')
 */
export function verifyTicket(signed: Signed<Ticket>, options?: VerifyOptions): Promise<Ticket> {
  return verifyRecord('Ticket', signed, options)
}

/**
 * The canonical JSON text of a signed ticket.
 *
 * @example
 * response.end(encodeTicket(signed))
 */
export function encodeTicket(signed: Signed<Ticket>): string {
  return encodeRecord('Ticket', signed)
}

/**
 * Parses and strictly validates a signed ticket; does not verify it.
 *
 * @throws InvalidFormatError
 * @example
 * const signed = decodeTicket(request.headers['x-shoal-ticket'])
 */
export function decodeTicket(input: unknown): Signed<Ticket> {
  return decodeRecord('Ticket', input)
}
