/**
 * Tickets for a paying client (docs/receipts.md): asked of the tracker with the site or
 * CID being fetched, cached per payer (the publisher whose escrow pays) and per target,
 * and asked again when near expiry or near their budget. Also the current epoch: from
 * the ticket's answer, then from `GET /v1/epochs/current` once that epoch has ended.
 */
import { InvalidArgumentError, ShoalError } from '@shoal/protocol'
import type { Address, Hex } from 'viem'
import type { TicketGrant, TrackerClient } from '../tracker-client.ts'

/** A ticket is asked again when it expires within this many seconds. */
export const TICKET_REFRESH_BEFORE_SECONDS = 60
/** …or when this share of its budget has been signed for. */
export const TICKET_REFRESH_BUDGET_SHARE = 0.9
/** A target the tracker would not issue a ticket for is not asked again for this long (ms). */
export const TICKET_RETRY_MS = 30_000
/** Targets whose ticket is remembered. */
const MAX_TARGETS = 4_096

/** Who a fetch is for: a site path's site, or a bare CID. */
export type PayTarget = { site: string } | { cid: string }

export interface TicketBookComponents {
  tracker: TrackerClient
  client: Address
  /** Unix milliseconds. */
  clock?: () => number
}

export interface TicketBook {
  /** A ticket for the target: cached when one of its payer is still good. */
  ticketFor(target: PayTarget, options?: { signal?: AbortSignal }): Promise<TicketGrant>
  /** Counts bytes signed for against a ticket's budget. */
  spend(id: Hex, bytes: number): void
  /** The epoch sessions are opened in now. */
  epoch(options?: { signal?: AbortSignal }): number | Promise<number>
  clear(): void
}

/**
 * @example
 * const tickets = createTicketBook({ tracker, client: account.address })
 * const grant = await tickets.ticketFor({ site: 'blog' })
 */
export function createTicketBook(components: TicketBookComponents): TicketBook {
  const { tracker, client } = components
  if (tracker === undefined)
    throw new InvalidArgumentError('paying for delivery needs a tracker to issue tickets')
  const clock = components.clock ?? Date.now
  /** target key → payer */
  const payers = new Map<string, Address>()
  /** payer → its current ticket */
  const byPayer = new Map<Address, TicketGrant>()
  const spent = new Map<Hex, number>()
  const asking = new Map<string, Promise<TicketGrant>>()
  /** target key → when the tracker last refused or failed, and why */
  const refused = new Map<string, { at: number; error: unknown }>()
  let epoch: { epoch: number; endsAt: number } | undefined
  let epochAsk: Promise<number> | undefined

  const good = (grant: TicketGrant) =>
    grant.ticket.message.expiry - clock() / 1000 > TICKET_REFRESH_BEFORE_SECONDS &&
    (spent.get(grant.id) ?? 0) < grant.ticket.message.budget * TICKET_REFRESH_BUDGET_SHARE

  const noteEpoch = (n: number, endsAt: number) => {
    if (epoch === undefined || n > epoch.epoch) epoch = { epoch: n, endsAt }
  }

  return {
    async ticketFor(target, options = {}) {
      const key = 'site' in target ? `site:${target.site}` : `cid:${target.cid}`
      const payer = payers.get(key)
      const held = payer === undefined ? undefined : byPayer.get(payer)
      if (held !== undefined && good(held)) return held
      const last = refused.get(key)
      if (last !== undefined && clock() - last.at < TICKET_RETRY_MS) throw last.error
      let pending = asking.get(key)
      if (pending === undefined) {
        pending = tracker
          .ticket({ client, ...target }, options)
          .then((grant) => {
            if (payers.size >= MAX_TARGETS) payers.delete(payers.keys().next().value as string)
            payers.set(key, grant.publisher)
            const old = byPayer.get(grant.publisher)
            if (old !== undefined && old.id !== grant.id) spent.delete(old.id)
            byPayer.set(grant.publisher, grant)
            noteEpoch(grant.epoch, grant.epochEndsAt)
            refused.delete(key)
            return grant
          })
          .catch((error: unknown) => {
            // an abort is the fetch's, not the tracker's answer: only answers are remembered
            if (!(error instanceof ShoalError && error.code === 'SHOAL_ERR_ABORTED')) {
              if (refused.size >= MAX_TARGETS) refused.delete(refused.keys().next().value as string)
              refused.set(key, { at: clock(), error })
            }
            throw error
          })
          .finally(() => asking.delete(key))
        asking.set(key, pending)
      }
      return pending
    },

    spend(id, bytes) {
      spent.set(id, (spent.get(id) ?? 0) + bytes)
    },

    epoch(options = {}) {
      if (epoch !== undefined && clock() / 1000 < epoch.endsAt) return epoch.epoch
      epochAsk ??= tracker
        .currentEpoch(options)
        .then((answer) => {
          noteEpoch(answer.epoch, answer.endsAt)
          return answer.epoch
        })
        .finally(() => {
          epochAsk = undefined
        })
      return epochAsk
    },

    clear() {
      payers.clear()
      byPayer.clear()
      refused.clear()
      spent.clear()
      epoch = undefined
    },
  }
}
