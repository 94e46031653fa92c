/**
 * Sessions and receipts on the node (docs/receipts.md): `POST /v1/sessions` opens a
 * session on a ticket from the node's tracker, every body byte written for a request
 * carrying `shoal-session` is metered against it, and `POST /v1/receipts` accepts a
 * client's cumulative receipt only when every check holds, storing it durably in the
 * receipt book before answering. The mesh's `/shoal/receipt/1.0.0` (src/mesh/receipts.ts)
 * answers with the same `open` and `accept`, and chunks sent over the mesh are metered
 * with the same `meter`.
 *
 * Open sessions live in memory, bounded: a session expires at the end of the epoch after
 * its own (a last receipt may arrive just after the boundary), and at most `maxSessions`
 * are open; past that, new sessions are refused (429) rather than dropping metered ones.
 */
import {
  type BandwidthReceipt,
  ConflictError,
  decodeBandwidthReceipt,
  decodeTicket,
  ForbiddenError,
  InvalidArgumentError,
  isShoalError,
  NotFoundError,
  RateLimitedError,
  RECEIPT_KIND,
  type Signed,
  StaleError,
  type Ticket,
  ticketId,
  UnavailableError,
  verifyBandwidthReceipt,
  verifyTicket,
} from '@shoal/protocol'
import type { Address, Hex } from 'viem'
import type { EdgeMetrics } from '../metrics.ts'
import type { ReceiptBook } from './book.ts'
import type { TrackerIdentity } from './tracker-identity.ts'

const SESSION_RE = /^0x[0-9a-f]{64}$/
/**
 * Sessions one ticket may hold open on a node. An honest client opens one per node,
 * ticket and epoch (two around a boundary); the cap keeps one ticket holder from filling
 * the node's `maxSessions` and locking out everyone else.
 */
export const MAX_SESSIONS_PER_TICKET = 16

export interface SessionsInit {
  maxSessions: number
}

export interface SessionsComponents {
  book: ReceiptBook
  identity: TrackerIdentity
  /** The node's address; without one the node cannot be paid and refuses sessions. */
  node: Address | undefined
  metrics?: EdgeMetrics
  logger?: { debug(fields: object, message: string): void; info(fields: object, message: string): void }
  /** Unix milliseconds. */
  clock?: () => number
}

interface OpenSession {
  ticketId: Hex
  ticket: Ticket
  epoch: number
  kind: number
  /** Body bytes written for the session. */
  metered: number
  /** Bytes of the latest stored receipt. */
  receipted: number
  /** Unix ms after which the session is dropped. */
  expiresAt: number
}

/** Why a receipt or session was refused: the `reason` label of the refusal metric. */
type Refusal =
  | 'format'
  | 'signature'
  | 'unknown_session'
  | 'wrong_node'
  | 'wrong_ticket'
  | 'decreasing'
  | 'over_metered'
  | 'over_budget'

export interface Sessions {
  /** Restores the sessions of the current and previous epoch from the book (after a restart). */
  restore(): void
  /** `POST /v1/sessions`. */
  open(body: unknown): Promise<{ session: Hex; node: Address }>
  /**
   * `POST /v1/receipts` (and a receipt over the mesh): the signed receipt as JSON text or
   * already parsed; answers once the receipt is durable.
   */
  accept(body: unknown): Promise<{ session: Hex; bytes: number }>
  /**
   * Counts `n` body bytes for the content session (kind 0) named by a `shoal-session`
   * header; unknown ones are ignored.
   */
  meter(header: string | undefined, n: number): void
  /**
   * Counts `n` relayed bytes for the relay session (kind 1) named by a `shoal-session`
   * header on a relay request, when that session is open on the ticket that authorized
   * the request; anything else is ignored.
   */
  meterRelay(header: string | undefined, ticket: Hex, n: number): void
  /** Open sessions. */
  readonly size: number
  /** Drops expired sessions. */
  sweep(): void
}

/**
 * @example
 * const sessions = createSessions({ maxSessions: 100_000 }, { book, identity, node: account.address })
 * await sessions.open({ session, ticket, epoch, kind: 0 })
 * sessions.meter(req.headers['shoal-session'], bytes.length)
 */
export function createSessions(init: SessionsInit, components: SessionsComponents): Sessions {
  const { book, identity, node, metrics, logger } = components
  const clock = components.clock ?? Date.now
  const open = new Map<string, OpenSession>()
  /** Bytes receipted per ticket on this node, across its sessions: bounded by the ticket's budget. */
  const ticketTotals = new Map<Hex, number>()
  /** Open sessions per ticket. */
  const perTicket = new Map<Hex, number>()

  const epochNow = () => Math.floor(clock() / 1000 / identity.epochSeconds())
  const expiryOf = (epoch: number) => (epoch + 2) * identity.epochSeconds() * 1000

  const refuse = (reason: Refusal, error: Error): never => {
    metrics?.receiptsRefused.inc({ reason })
    logger?.debug({ reason, err: error.message }, 'receipt refused')
    throw error
  }

  const sweep = () => {
    const now = clock()
    for (const [id, s] of open) {
      if (s.expiresAt > now) continue
      open.delete(id)
      const held = (perTicket.get(s.ticketId) ?? 1) - 1
      if (held > 0) perTicket.set(s.ticketId, held)
      else perTicket.delete(s.ticketId)
      const left = (ticketTotals.get(s.ticketId) ?? 0) - s.receipted
      if (left > 0) ticketTotals.set(s.ticketId, left)
      else ticketTotals.delete(s.ticketId)
    }
    metrics?.sessionsOpen.set(open.size)
  }

  const add = (id: string, s: OpenSession) => {
    open.set(id, s)
    perTicket.set(s.ticketId, (perTicket.get(s.ticketId) ?? 0) + 1)
    ticketTotals.set(s.ticketId, (ticketTotals.get(s.ticketId) ?? 0) + s.receipted)
    metrics?.sessionsOpen.set(open.size)
  }

  return {
    get size() {
      return open.size
    },
    sweep,

    restore() {
      const current = epochNow()
      for (const row of book.sessions(current - 1, init.maxSessions)) {
        if (open.has(row.session)) continue
        add(row.session, {
          ticketId: row.ticket,
          ticket: row.signedTicket.message,
          epoch: row.epoch,
          kind: row.kind,
          // what was metered before the restart is lost; what was receipted was sent
          metered: row.bytes,
          receipted: row.bytes,
          expiresAt: expiryOf(row.epoch),
        })
      }
      sweep()
    },

    async open(body) {
      if (typeof body !== 'object' || body === null)
        throw new InvalidArgumentError('body must be a JSON object')
      const { session, ticket: rawTicket, epoch, kind } = body as Record<string, unknown>
      if (typeof session !== 'string' || !SESSION_RE.test(session))
        throw new InvalidArgumentError('session must be 0x followed by 64 lowercase hex digits')
      if (!Number.isSafeInteger(epoch) || (epoch as number) < 0)
        throw new InvalidArgumentError('epoch must be a non-negative integer')
      if (kind !== 0 && kind !== 1) throw new InvalidArgumentError('kind must be 0 (content) or 1 (relay)')
      if (node === undefined) throw new UnavailableError('this node has no key: it cannot be paid')
      const signedTicket: Signed<Ticket> = decodeTicket(rawTicket)
      const issuer = await identity.issuer()
      if (issuer === undefined)
        throw new UnavailableError('this node does not know its tracker yet: no tickets are honoured')
      const ticket = await verifyTicket(signedTicket, { now: clock() / 1000 })
      if (ticket.issuer !== issuer)
        throw new ForbiddenError("the ticket is not signed by this node's tracker")
      const current = epochNow()
      if (epoch !== current && epoch !== current - 1)
        throw new InvalidArgumentError(
          `epoch ${epoch} is neither the node's current (${current}) nor the previous`,
        )
      const id = ticketId(ticket)
      const existing = open.get(session)
      if (existing !== undefined) {
        if (existing.ticketId !== id || existing.epoch !== epoch || existing.kind !== kind)
          throw new ConflictError('this session is already open with another ticket, epoch or kind')
        return { session: session as Hex, node }
      }
      if (open.size >= init.maxSessions || (perTicket.get(id) ?? 0) >= MAX_SESSIONS_PER_TICKET) sweep()
      if (open.size >= init.maxSessions)
        throw new RateLimitedError('this node has too many open sessions; retry later')
      if ((perTicket.get(id) ?? 0) >= MAX_SESSIONS_PER_TICKET)
        throw new RateLimitedError(`a ticket may hold ${MAX_SESSIONS_PER_TICKET} sessions open on this node`)
      book.openSession(
        { session: session as Hex, ticket: id, client: ticket.client, epoch, kind, openedAt: clock() },
        signedTicket,
      )
      add(session, {
        ticketId: id,
        ticket,
        epoch,
        kind,
        metered: 0,
        receipted: book.latest(session as Hex)?.message.bytes ?? 0,
        expiresAt: expiryOf(epoch),
      })
      metrics?.sessionsOpened.inc()
      return { session: session as Hex, node }
    },

    async accept(body) {
      let signed: Signed<BandwidthReceipt>
      try {
        signed = decodeBandwidthReceipt(body)
      } catch (err) {
        return refuse('format', err as Error)
      }
      const r = signed.message
      const s = open.get(r.session)
      if (s === undefined)
        return refuse('unknown_session', new NotFoundError('no such session is open on this node'))
      if (node === undefined || r.node !== node)
        return refuse('wrong_node', new ForbiddenError('the receipt names another node'))
      if (r.ticket !== s.ticketId || r.epoch !== s.epoch || r.kind !== s.kind || r.client !== s.ticket.client)
        return refuse(
          'wrong_ticket',
          new ForbiddenError("the receipt's ticket, epoch, kind or client is not its session's"),
        )
      try {
        await verifyBandwidthReceipt(signed)
      } catch (err) {
        if (isShoalError(err) && err instanceof Error) return refuse('signature', err)
        throw err
      }
      // the state may have moved while the signature was checked: every byte check is after it
      if (r.bytes < s.receipted)
        return refuse(
          'decreasing',
          new StaleError(`the session already has a receipt for ${s.receipted} bytes`),
        )
      if (r.bytes === s.receipted) return { session: r.session, bytes: r.bytes }
      if (r.bytes > s.metered)
        return refuse(
          'over_metered',
          new ForbiddenError(
            `the receipt claims ${r.bytes} bytes; this node sent ${s.metered} in the session`,
          ),
        )
      const total = (ticketTotals.get(s.ticketId) ?? 0) - s.receipted + r.bytes
      if (r.bytes > s.ticket.budget || total > s.ticket.budget)
        return refuse(
          'over_budget',
          new ForbiddenError(`the receipt exceeds the ticket's budget of ${s.ticket.budget} bytes`),
        )
      book.put(signed)
      metrics?.receiptsAccepted.inc()
      metrics?.receiptBytes.inc(r.bytes - s.receipted)
      ticketTotals.set(s.ticketId, total)
      s.receipted = r.bytes
      return { session: r.session, bytes: r.bytes }
    },

    meter(header, n) {
      if (header === undefined) return
      const s = open.get(header)
      if (s === undefined || s.kind !== RECEIPT_KIND.content) return
      s.metered += n
      metrics?.sessionBytes.inc(n)
    },

    meterRelay(header, ticket, n) {
      if (header === undefined) return
      const s = open.get(header)
      if (s === undefined || s.kind !== RECEIPT_KIND.relay || s.ticketId !== ticket) return
      s.metered += n
      metrics?.sessionBytes.inc(n)
    },
  }
}
