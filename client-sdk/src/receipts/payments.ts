/**
 * Paying nodes as bytes are verified (docs/receipts.md). One session per (node, ticket,
 * epoch), opened with `POST /v1/sessions` before the first request that names it; node
 * requests then carry `shoal-session`. Verified bytes from a node are credited to its
 * session; after every `receiptEveryBytes`, and when a fetch from the node ends, the
 * client signs a cumulative `BandwidthReceipt` and posts it. At most one receipt is in
 * flight per session; none is ever awaited by the byte stream; a refused receipt is
 * reported as an event, not retried.
 *
 * Sessions and receipts travel over a `PaymentChannel`: HTTP (`POST /v1/sessions`,
 * `POST /v1/receipts` on the node's URL) for nodes with a URL, and the mesh's
 * `/shoal/receipt/1.0.0` for nodes reachable only through the mesh (`createMeshDispatch`
 * carries that channel). The records and the rules are the same either way.
 */
import {
  encodeBandwidthReceipt,
  isShoalError,
  RECEIPT_KIND,
  type ReceiptKind,
  type RecordSigner,
  type Signed,
  signBandwidthReceipt,
  type Ticket,
} from '@shoal/protocol'
import { type Address, getAddress, type Hex, isAddress } from 'viem'
import { infoOf } from '../errors.ts'
import type { ClientEvent } from '../events.ts'
import type { Source } from '../pipeline/dispatch.ts'
import { randomNonce } from '../reports.ts'
import type { TicketGrant } from '../tracker-client.ts'
import type { PayTarget, TicketBook } from './tickets.ts'

/** Sessions a client keeps (the oldest is flushed and dropped past this). */
const MAX_SESSIONS = 1_024
/** A session that could not be opened is not asked again for this long (ms). */
const RETRY_OPEN_MS = 30_000

export interface PaymentsInit {
  receiptEveryBytes: number
  /** Per-call timeout of session and receipt requests (ms). */
  timeoutMs: number
  /** What the sessions pay for: content (default) or relayed bytes (the relay dispatcher). */
  kind?: ReceiptKind
}

/** What a client asks a node to open a session with (docs/receipts.md). */
export interface SessionRequest {
  session: Hex
  ticket: Signed<Ticket>
  epoch: number
  kind: ReceiptKind
}

/** A node's answer to a receipt: stored, or refused with its reason (`CODE: message`). */
export type ReceiptAnswer = { ok: true } | { ok: false; reason: string }

/**
 * How sessions and receipts reach a node. `open` resolves with the address the node
 * names and rejects when the node refuses or cannot be reached; `receipt` resolves with
 * the node's answer (a refusal included) and rejects only when there was none.
 */
export interface PaymentChannel {
  open(source: Source, request: SessionRequest, options: { signal: AbortSignal }): Promise<{ node: unknown }>
  receipt(source: Source, encoded: string, options: { signal: AbortSignal }): Promise<ReceiptAnswer>
}

/**
 * The HTTP channel: `POST /v1/sessions` and `POST /v1/receipts` on the node's URL.
 *
 * @example
 * const channel = httpPaymentChannel(fetch)
 */
export function httpPaymentChannel(doFetch: typeof globalThis.fetch): PaymentChannel {
  const post = async (url: string, body: string, signal: AbortSignal) => {
    const res = await doFetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body,
      signal,
    })
    const answer = (await res.json().catch(() => undefined)) as
      | { node?: unknown; error?: { code?: string; message?: string } }
      | undefined
    const reason = `${answer?.error?.code ?? res.status}: ${answer?.error?.message ?? ''}`
    return { ok: res.ok, answer, reason }
  }
  return {
    async open(source, request, { signal }) {
      const { ok, answer, reason } = await post(
        `${source.url}v1/sessions`,
        `{"session":"${request.session}","ticket":${JSON.stringify(request.ticket)},"epoch":${request.epoch},"kind":${request.kind}}`,
        signal,
      )
      if (!ok) throw new Error(reason)
      return { node: answer?.node }
    },
    async receipt(source, encoded, { signal }) {
      const { ok, reason } = await post(`${source.url}v1/receipts`, encoded, signal)
      return ok ? { ok: true } : { ok: false, reason }
    },
  }
}

export interface PaymentsComponents {
  account: RecordSigner
  tickets: TicketBook
  fetch: typeof globalThis.fetch
  /** Sessions and receipts with nodes reachable only through the mesh; without it they go unpaid. */
  mesh?: PaymentChannel
  emit(event: ClientEvent): void
  clock?: () => number
}

/** What one `client.fetch` uses to pay the nodes it reads from. */
export interface FetchPayment {
  /** The fetch's ticket id, once known (for `ticket=` on selection); `undefined` when unpaid. */
  ticket(signal: AbortSignal): Promise<Hex | undefined>
  /** The `shoal-session` header for a request to `source`, opening the session if needed. */
  headerFor(source: Source, signal: AbortSignal): Promise<Record<string, string> | undefined>
  /** Counts verified bytes from `source`. */
  credit(source: Source, bytes: number): void
  /** The fetch ended: every session it used signs for what it verified. */
  end(): void
}

export interface Payments {
  forFetch(target: PayTarget): FetchPayment
  /** Sends what is owed and waits for the receipts in flight. */
  flush(): Promise<void>
  clear(): void
}

interface Session {
  id: Hex
  source: Source
  /** How the session was opened, and how its receipts go. */
  channel: PaymentChannel
  nodeUrl: string
  node: Address
  grant: TicketGrant
  epoch: number
  verified: number
  signed: number
  inflight: Promise<void> | undefined
  again: boolean
}

/**
 * @example
 * const payments = createPayments({ receiptEveryBytes: 2 ** 20, timeoutMs: 5000 }, { account, tickets, fetch, emit })
 * const pay = payments.forFetch({ site: 'blog' })
 */
export function createPayments(init: PaymentsInit, components: PaymentsComponents): Payments {
  const { account, tickets, emit } = components
  const doFetch = components.fetch
  const clock = components.clock ?? Date.now
  const kind = init.kind ?? RECEIPT_KIND.content
  const sessions = new Map<string, Promise<Session | undefined>>()
  const failedAt = new Map<string, number>()
  const inflight = new Set<Promise<void>>()
  const http = httpPaymentChannel(doFetch)
  /** The channel to a source's node: the mesh one for mesh-only nodes (none: unpaid). */
  const channelOf = (source: Source): PaymentChannel | undefined =>
    source.mesh === undefined ? http : components.mesh

  const send = (s: Session): void => {
    if (s.verified <= s.signed) return
    if (s.inflight !== undefined) {
      s.again = true
      return
    }
    const bytes = s.verified
    const sending = (async () => {
      const signed = await signBandwidthReceipt(account, {
        node: s.node,
        client: account.address,
        session: s.id,
        bytes,
        epoch: s.epoch,
        ticket: s.grant.id,
        kind,
      })
      const answer = await s.channel.receipt(s.source, encodeBandwidthReceipt(signed), {
        signal: AbortSignal.timeout(init.timeoutMs),
      })
      if (!answer.ok) {
        emit({ type: 'receipt', node: s.nodeUrl, bytes, outcome: 'refused', reason: answer.reason })
        return
      }
      tickets.spend(s.grant.id, bytes - s.signed)
      s.signed = bytes
      emit({ type: 'receipt', node: s.nodeUrl, bytes, outcome: 'accepted' })
    })().catch((err: unknown) => {
      const { code, message } = infoOf(err)
      emit({ type: 'receipt', node: s.nodeUrl, bytes, outcome: 'failed', reason: `${code}: ${message}` })
    })
    s.inflight = sending
    inflight.add(sending)
    void sending.finally(() => {
      inflight.delete(sending)
      s.inflight = undefined
      // a receipt refused or lost is not retried as such: the next one is cumulative anyway
      if (s.again) {
        s.again = false
        send(s)
      }
    })
  }

  const open = async (
    source: Source,
    channel: PaymentChannel,
    grant: TicketGrant,
    epoch: number,
    key: string,
  ): Promise<Session | undefined> => {
    const id = randomNonce()
    try {
      const answer = await channel.open(
        source,
        { session: id, ticket: grant.ticket, epoch, kind },
        { signal: AbortSignal.timeout(init.timeoutMs) },
      )
      if (typeof answer.node !== 'string' || !isAddress(answer.node, { strict: false }))
        throw new Error('the node did not name its address')
      const node = getAddress(answer.node)
      if (source.address !== undefined && source.address !== node)
        throw new Error(`the node says it is ${node}, the tracker says ${source.address}`)
      return {
        id,
        source,
        channel,
        nodeUrl: source.url,
        node,
        grant,
        epoch,
        verified: 0,
        signed: 0,
        inflight: undefined,
        again: false,
      }
    } catch (err) {
      failedAt.set(key, clock())
      sessions.delete(key)
      const reason = isShoalError(err) ? `${err.code}: ${err.message}` : (err as Error).message
      emit({ type: 'session', node: source.url, outcome: 'failed', reason })
      return undefined
    }
  }

  const drop = () => {
    const [oldest, pending] = sessions.entries().next().value as [string, Promise<Session | undefined>]
    sessions.delete(oldest)
    void pending.then((s) => s && send(s))
  }

  return {
    forFetch(target) {
      let grant: Promise<TicketGrant | undefined> | undefined
      /** Sessions this fetch used, by node URL. */
      const used = new Map<string, Session>()
      const ticketOf = (signal: AbortSignal) => {
        grant ??= tickets.ticketFor(target, { signal }).catch((err: unknown) => {
          const { code, message } = infoOf(err)
          emit({ type: 'session', node: '', outcome: 'failed', reason: `no ticket: ${code}: ${message}` })
          return undefined
        })
        return grant
      }
      return {
        async ticket(signal) {
          return (await ticketOf(signal))?.id
        },
        async headerFor(source, signal) {
          // a mesh-only node is paid over the mesh, when the client has the mesh's channel
          if (source.kind !== 'node') return undefined
          const channel = channelOf(source)
          if (channel === undefined) return undefined
          const g = await ticketOf(signal)
          if (g === undefined) return undefined
          const epoch = await tickets.epoch({ signal })
          const key = `${source.url} ${g.id} ${epoch}`
          let pending = sessions.get(key)
          if (pending === undefined) {
            if (clock() - (failedAt.get(key) ?? Number.NEGATIVE_INFINITY) < RETRY_OPEN_MS) return undefined
            if (sessions.size >= MAX_SESSIONS) drop()
            pending = open(source, channel, g, epoch, key)
            sessions.set(key, pending)
          }
          const s = await pending
          if (s === undefined) return undefined
          used.set(source.url, s)
          return { 'shoal-session': s.id }
        },
        credit(source, bytes) {
          const s = used.get(source.url)
          if (s === undefined) return
          s.verified += bytes
          if (s.verified - s.signed >= init.receiptEveryBytes) send(s)
        },
        end() {
          for (const s of used.values()) send(s)
        },
      }
    },

    async flush() {
      while (inflight.size > 0) await Promise.allSettled([...inflight])
    },

    clear() {
      sessions.clear()
      failedAt.clear()
    },
  }
}
