/**
 * Why a receipt earns nothing: the codes recorded per receipt at submission and at
 * settlement (docs/economics.md explains each).
 */
export const REJECT = {
  /** Submission: the receipt names another node than the batch's signer. */
  wrongNode: 'wrong-node',
  /** Submission: the receipt's epoch is not the batch's. */
  wrongEpoch: 'wrong-epoch',
  /** Submission: the ticket was not issued by this tracker (or names no publisher). */
  unknownTicket: 'unknown-ticket',
  /** Submission: the ticket was issued to another client than the receipt's signer. */
  ticketClient: 'ticket-client',
  /** Settlement: the signature does not recover the receipt's client. */
  badSignature: 'bad-signature',
  /** Settlement: a later cumulative receipt of the same (node, session) replaces it. */
  superseded: 'superseded',
  /** Settlement: the session's epoch is after the ticket's expiry. */
  expiredTicket: 'expired-ticket',
  /** Settlement: the tracker never selected this node for this ticket. */
  notSelected: 'not-selected',
  /** Settlement: client and node are one party (same key or payout address, or the client is a node). */
  selfDealing: 'self-dealing',
  /** Settlement: the client paid more than `maxClientFanout` nodes in the epoch. */
  fanout: 'fan-out',
} as const

export type RejectReason = (typeof REJECT)[keyof typeof REJECT]
