/**
 * `relayDispatcher`: an undici `Dispatcher` that sends requests through Shoal relays
 * (Node only). `fetch(url, { dispatcher })` then goes out through a tracker-selected
 * relay: `http:` URLs as absolute-form requests, `https:` URLs through a `CONNECT`
 * tunnel (the relay never sees their bytes). When a relay refuses (ticket not accepted,
 * too busy, shutting down) or cannot be reached, the request goes to the next relay,
 * as long as nothing of the response reached the caller and the body can be sent again.
 * A relay's refusal of the destination itself (403) is the answer, not a failover.
 *
 * With a `signer` (the ticket's client key) the dispatcher pays for what it relays: it
 * opens a relay session (kind 1) on each relay it uses (`POST /v1/sessions` on the relay's
 * port), names it in `shoal-session` on every proxied request and `CONNECT`, and signs
 * cumulative relay receipts for the bytes it saw go through (request bodies it sent,
 * response heads' bodies it received), the same receipts as content (docs/receipts.md).
 */

import { Readable } from 'node:stream'
import {
  AbortError,
  InvalidArgumentError,
  RECEIPT_KIND,
  type RecordSigner,
  type Signed,
  type Ticket,
  ticketId,
  UnavailableError,
} from '@shoal/protocol'
import { Dispatcher, ProxyAgent } from 'undici'
import { type Address, getAddress, isAddress, zeroAddress } from 'viem'
import type { ShoalClient } from '../client.ts'
import { unavailable } from '../errors.ts'
import type { ClientEvent } from '../events.ts'
import type { Source } from '../pipeline/dispatch.ts'
import { createPayments, type FetchPayment, type Payments } from '../receipts/payments.ts'
import { createTicketBook, type TicketBook } from '../receipts/tickets.ts'
import { type RelayCandidate, requestRelayTicket, selectRelays } from '../relay-select.ts'
import { RELAY_ERROR_HEADER, relayAuthorization } from '../relay-ticket.ts'
import { createTrackerClient } from '../tracker-client.ts'

export const DEFAULT_RELAY_COUNT = 3
/** How long a relay that failed is skipped. */
export const DEFAULT_RELAY_COOLDOWN_MS = 30_000
/** How long a tracker's relay list is used before asking again. */
export const DEFAULT_RELAY_REFRESH_MS = 60_000
/** A ticket is renewed this long before it expires. */
const TICKET_MARGIN_SECONDS = 60
/** Relayed bytes between two relay receipts (default). */
export const DEFAULT_RELAY_RECEIPT_EVERY_BYTES = 2 ** 20
/** Timeout of relay session and receipt calls (ms). */
const PAYMENT_TIMEOUT_MS = 10_000

export interface RelayDispatcherInit {
  /** The client's region: relays there come first. */
  region?: string
  /** How many relays to ask the tracker for (default 3). */
  count?: number
  /** Fixed relay URLs (`http://host:port`), instead of asking the tracker. */
  relays?: string[]
  /**
   * The relay ticket, or a function that gets one. Default: asks the tracker
   * (`POST /v1/tickets`) for a ticket for `account`.
   */
  ticket?: Signed<Ticket> | ((options: { signal?: AbortSignal }) => Promise<Signed<Ticket>>)
  /** The client key tickets are requested for (when `ticket` is not given). */
  account?: Pick<RecordSigner, 'address'>
  /**
   * Whose escrow pays for the relayed bytes (the app's publisher account), named in the
   * ticket request (docs/receipts.md, Tickets); needed when `ticket` is not given.
   */
  payer?: `0x${string}`
  cooldownMs?: number
  refreshMs?: number
  /** TLS options for https destinations reached through tunnels (e.g. a private CA). */
  requestTls?: ProxyAgent.Options['requestTls']
  /**
   * The ticket's client key: with it the dispatcher opens relay sessions and signs
   * cumulative relay receipts (kind 1) for the relayed bytes. Needs a tracker (epochs).
   */
  signer?: RecordSigner
  /** Relayed bytes between two receipts (default 1 MiB); a receipt also ends each exchange. */
  receiptEveryBytes?: number
}

export interface RelayDispatcherComponents {
  /** Tracker base URL (or the client's tracker). */
  tracker?: { url: string }
  fetch?: typeof globalThis.fetch
  /** Clock in ms (tests). */
  now?: () => number
  /** Session and receipt outcomes, as the client's `session` and `receipt` events. */
  emit?: (event: ClientEvent) => void
}

type Handler = Dispatcher.DispatchHandler
type Controller = Parameters<NonNullable<Handler['onRequestStart']>>[0]

/** What one attempt through one relay came to. */
type Outcome = { committed: true } | { committed: false; error: Error; expired?: boolean }

/** Relay answers that mean "try another relay". */
const FAILOVER_STATUS = new Set([407, 429, 503])
/** Connection-level failures reaching a relay. */
const FAILOVER_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_CLOSED',
])

function headerOf(headers: unknown, name: string): string | undefined {
  if (headers === null || typeof headers !== 'object') return undefined
  const v = (headers as Record<string, unknown>)[name]
  if (Array.isArray(v)) return v.length > 0 ? String(v[0]) : undefined
  if (v instanceof Uint8Array) return new TextDecoder().decode(v)
  return typeof v === 'string' ? v : undefined
}

/**
 * Whether a failed attempt should move to the next relay. undici reports a relay's 407
 * and a refused CONNECT only in messages (`Proxy Authentication Required (407)`,
 * `Proxy response (407) !== 200 when HTTP Tunneling`), so those cases read the status
 * from them.
 */
function shouldFailOver(err: Error): boolean {
  const codes = [(err as { code?: string }).code, (err.cause as { code?: string } | undefined)?.code]
  if (codes.some((c) => c !== undefined && FAILOVER_CODES.has(c))) return true
  const m = /^Proxy (?:response|Authentication Required) \((\d{3})\)/.exec(err.message)
  return m !== null && FAILOVER_STATUS.has(Number(m[1]))
}

/** Bytes of a request body the dispatcher can count (streamed bodies are not counted). */
function bodyLength(body: unknown): number {
  if (typeof body === 'string') return Buffer.byteLength(body)
  return body instanceof Uint8Array ? body.length : 0
}

function isAsyncIterable(body: unknown): body is AsyncIterable<Uint8Array | string> {
  return typeof body === 'object' && body !== null && Symbol.asyncIterator in body
}

/** The same body, counting the bytes as the dispatcher sends them. */
async function* countBody(
  body: AsyncIterable<Uint8Array | string>,
  onBytes: (n: number) => void,
): AsyncGenerator<Uint8Array | string> {
  for await (const chunk of body) {
    onBytes(typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length)
    yield chunk
  }
}

function replayable(body: unknown): boolean {
  return body === undefined || body === null || typeof body === 'string' || body instanceof Uint8Array
}

const idleController = (): Controller =>
  ({
    aborted: false,
    paused: false,
    reason: null,
    rawHeaders: null,
    rawTrailers: null,
    abort() {},
    pause() {},
    resume() {},
  }) as unknown as Controller

/**
 * A Dispatcher over a set of relays with failover. Use `createRelayDispatcher` or
 * `relayDispatcher(client, …)`.
 */
export class RelayDispatcher extends Dispatcher {
  readonly #init: RelayDispatcherInit
  readonly #components: RelayDispatcherComponents
  readonly #agents = new Map<string, ProxyAgent>()
  readonly #cooling = new Map<string, number>()
  #relays: { at: number; list: RelayCandidate[] } | undefined
  #ticket: Signed<Ticket> | undefined
  #closed = false
  readonly #payments: Payments | undefined

  constructor(init: RelayDispatcherInit, components: RelayDispatcherComponents) {
    super()
    if (init.relays === undefined && components.tracker === undefined)
      throw new InvalidArgumentError('a relay dispatcher needs a tracker or a list of relays')
    if (
      init.ticket === undefined &&
      (init.account === undefined || init.payer === undefined || components.tracker === undefined)
    )
      throw new InvalidArgumentError(
        'a relay dispatcher needs a ticket, or an account, a payer and a tracker to get one',
      )
    for (const url of init.relays ?? []) {
      if (!/^http:\/\/[^/]+\/?$/.test(url))
        throw new InvalidArgumentError(`relay "${url}" is not http://host:port`)
    }
    if (init.signer !== undefined && components.tracker === undefined)
      throw new InvalidArgumentError('paying relays (signer) needs a tracker for the epoch')
    this.#init = init
    this.#components = components
    this.#payments =
      init.signer === undefined
        ? undefined
        : createPayments(
            {
              receiptEveryBytes: init.receiptEveryBytes ?? DEFAULT_RELAY_RECEIPT_EVERY_BYTES,
              timeoutMs: PAYMENT_TIMEOUT_MS,
              kind: RECEIPT_KIND.relay,
            },
            {
              account: init.signer,
              tickets: this.#ticketBook(init.signer, components.tracker!.url),
              fetch: components.fetch ?? globalThis.fetch,
              emit: components.emit ?? (() => {}),
              ...(components.now !== undefined ? { clock: components.now } : {}),
            },
          )
  }

  /** The payments' view of tickets: the dispatcher's relay ticket, and the tracker's epochs. */
  #ticketBook(signer: RecordSigner, trackerUrl: string): TicketBook {
    const book = createTicketBook({
      tracker: createTrackerClient({
        url: trackerUrl,
        ...(this.#components.fetch !== undefined ? { fetch: this.#components.fetch } : {}),
      }),
      client: signer.address,
      ...(this.#components.now !== undefined ? { clock: this.#components.now } : {}),
    })
    return {
      ...book,
      ticketFor: async (_target, options = {}) => {
        const ticket = await this.#getTicket(options.signal)
        return {
          id: ticketId(ticket.message),
          ticket,
          publisher: this.#init.payer ?? zeroAddress,
          epoch: 0,
          epochEndsAt: 0,
        }
      },
    }
  }

  get #now(): number {
    return (this.#components.now ?? Date.now)()
  }

  /** The relays in the order they will be tried (after the first dispatch). */
  get relays(): readonly string[] {
    return (this.#relays?.list ?? []).map((r) => r.relayUrl)
  }

  async #candidates(ticket: Signed<Ticket>, signal?: AbortSignal): Promise<RelayCandidate[]> {
    if (this.#init.relays !== undefined)
      return this.#init.relays.map((u) => ({ node: '', region: '', score: 0, relayUrl: new URL(u).origin }))
    const refreshMs = this.#init.refreshMs ?? DEFAULT_RELAY_REFRESH_MS
    if (
      this.#relays === undefined ||
      this.#now - this.#relays.at > refreshMs ||
      this.#usable().length === 0
    ) {
      const exclude = (this.#relays?.list ?? []).filter((r) => this.#isCooling(r.relayUrl)).map((r) => r.node)
      const list = await selectRelays(
        this.#components.tracker!.url,
        {
          count: this.#init.count ?? DEFAULT_RELAY_COUNT,
          ...(this.#init.region !== undefined ? { region: this.#init.region } : {}),
          ...(exclude.length > 0 ? { exclude } : {}),
          // the tracker notes it handed these relays to this ticket: settlement pays only those
          ticket: ticketId(ticket.message),
          ...(signal !== undefined ? { signal } : {}),
        },
        this.#components.fetch,
      )
      this.#relays = { at: this.#now, list }
    }
    return this.#relays.list
  }

  #usable(): RelayCandidate[] {
    return (this.#relays?.list ?? []).filter((r) => !this.#isCooling(r.relayUrl))
  }

  #isCooling(url: string): boolean {
    const until = this.#cooling.get(url)
    if (until === undefined) return false
    if (until <= this.#now) {
      this.#cooling.delete(url)
      return false
    }
    return true
  }

  async #getTicket(signal?: AbortSignal): Promise<Signed<Ticket>> {
    const t = this.#ticket
    if (t !== undefined && t.message.expiry - TICKET_MARGIN_SECONDS > this.#now / 1000) return t
    const source = this.#init.ticket
    let next: Signed<Ticket>
    if (source === undefined) {
      next = await requestRelayTicket(
        this.#components.tracker!.url,
        this.#init.account!,
        { body: { publisher: this.#init.payer }, ...(signal !== undefined ? { signal } : {}) },
        this.#components.fetch,
      )
    } else if (typeof source === 'function') next = await source(signal !== undefined ? { signal } : {})
    else next = source
    if (next !== this.#ticket) {
      this.#ticket = next
      // relays are selected for a ticket: a new one is selected afresh
      this.#relays = undefined
      // agents carry the old ticket in their token
      const old = [...this.#agents.values()]
      this.#agents.clear()
      for (const a of old) a.close().catch(() => {})
    }
    return next
  }

  #agent(relayUrl: string, ticket: Signed<Ticket>, session: Record<string, string> | undefined): ProxyAgent {
    const key = `${relayUrl} ${session?.['shoal-session'] ?? ''}`
    let agent = this.#agents.get(key)
    if (agent === undefined) {
      // an agent of this relay for an older session (the epoch moved on) is done with
      for (const [k, old] of this.#agents) {
        if (!k.startsWith(`${relayUrl} `)) continue
        this.#agents.delete(k)
        old.close().catch(() => {})
      }
      agent = new ProxyAgent({
        uri: relayUrl,
        token: relayAuthorization(ticket),
        proxyTunnel: false,
        // sent to the relay on CONNECT and on forwarded requests; the relay strips it
        ...(session !== undefined ? { headers: session } : {}),
        ...(this.#init.requestTls !== undefined ? { requestTls: this.#init.requestTls } : {}),
      })
      this.#agents.set(key, agent)
    }
    return agent
  }

  override dispatch(opts: Dispatcher.DispatchOptions, handler: Handler): boolean {
    if (this.#closed) {
      handler.onResponseError?.(idleController(), new UnavailableError('the relay dispatcher is closed'))
      return true
    }
    this.#run(opts, handler).catch((err: unknown) => {
      handler.onResponseError?.(idleController(), err instanceof Error ? err : new Error(String(err)))
    })
    return true
  }

  async #run(opts: Dispatcher.DispatchOptions, handler: Handler): Promise<void> {
    const given = (opts as { signal?: unknown }).signal
    const signal = given instanceof AbortSignal ? given : undefined
    const failures: { source: string; error: unknown }[] = []
    const tried = new Set<string>()
    let renewed = false
    for (;;) {
      if (signal?.aborted === true) throw new AbortError('aborted', { cause: signal.reason })
      const list = await this.#candidates(await this.#getTicket(signal), signal)
      const relay = list.find((r) => !tried.has(r.relayUrl) && !this.#isCooling(r.relayUrl))
      if (relay === undefined) {
        throw unavailable(
          list.length === 0 ? 'the tracker knows no relay' : 'no relay would carry the request',
          failures,
        )
      }
      tried.add(relay.relayUrl)
      const ticket = await this.#getTicket(signal)
      const pay = this.#payments?.forFetch({ cid: '' })
      const source: Source = {
        kind: 'node',
        url: `${relay.relayUrl}/`,
        ...(isAddress(relay.node, { strict: false }) ? { address: getAddress(relay.node) as Address } : {}),
      }
      const session = await pay?.headerFor(source, signal ?? new AbortController().signal)
      const outcome = await this.#attempt(
        this.#agent(relay.relayUrl, ticket, session),
        opts,
        handler,
        pay === undefined ? undefined : { pay, source },
      )
      if (outcome.committed) return
      failures.push({ source: relay.relayUrl, error: outcome.error })
      if (outcome.expired === true && !renewed && this.#init.ticket === undefined) {
        // the relay says the ticket expired: get a new one and try this relay again
        renewed = true
        this.#ticket = undefined
        tried.delete(relay.relayUrl)
        continue
      }
      this.#cooling.set(relay.relayUrl, this.#now + (this.#init.cooldownMs ?? DEFAULT_RELAY_COOLDOWN_MS))
      if (!replayable(opts.body))
        throw unavailable('the relay failed and the request body cannot be resent', failures)
    }
  }

  #attempt(
    agent: ProxyAgent,
    opts: Dispatcher.DispatchOptions,
    handler: Handler,
    paying: { pay: FetchPayment; source: Source } | undefined,
  ): Promise<Outcome> {
    return new Promise<Outcome>((resolve) => {
      let committed = false
      let refused = false
      // the relay's own answers (refusals) carry no relayed bytes and are not paid
      let relayed = false
      const credit = (n: number) => {
        if (relayed && n > 0) paying?.pay.credit(paying.source, n)
      }
      const settle = () => {
        if (relayed) paying?.pay.end()
      }
      // request body bytes sent: credited once the destination's answer shows they were relayed
      let sent = bodyLength(opts.body)
      const counted =
        paying !== undefined && sent === 0 && isAsyncIterable(opts.body)
          ? {
              ...opts,
              body: Readable.from(
                countBody(opts.body, (n) => {
                  if (relayed) credit(n)
                  else sent += n
                }),
              ),
            }
          : opts
      const commit = () => {
        if (!committed) {
          committed = true
          resolve({ committed: true })
        }
      }
      const wrapped: Handler = {
        onRequestStart: (controller, context) => handler.onRequestStart?.(controller, context),
        onRequestUpgrade: (controller, statusCode, headers, socket) => {
          relayed = true
          commit()
          handler.onRequestUpgrade?.(controller, statusCode, headers, socket)
        },
        onResponseStarted: () => handler.onResponseStarted?.(),
        onResponseStart: (controller, statusCode, headers, statusMessage) => {
          if (statusCode >= 200 && !committed) {
            const code = headerOf(headers, RELAY_ERROR_HEADER)
            if (code !== undefined && FAILOVER_STATUS.has(statusCode)) {
              refused = true
              const error = new UnavailableError(`relay refused the request (${statusCode} ${code})`)
              resolve({ committed: false, error, expired: code === 'SHOAL_ERR_EXPIRED' })
              controller.abort(error)
              return
            }
            commit()
          }
          if (!refused && statusCode >= 200 && headerOf(headers, RELAY_ERROR_HEADER) === undefined) {
            relayed = true
            credit(sent)
          }
          handler.onResponseStart?.(controller, statusCode, headers, statusMessage)
        },
        onResponseData: (controller, chunk) => {
          if (refused) return
          credit(chunk.length)
          handler.onResponseData?.(controller, chunk)
        },
        onResponseEnd: (controller, trailers) => {
          if (refused) return
          settle()
          handler.onResponseEnd?.(controller, trailers)
        },
        onResponseError: (controller, error) => {
          if (refused) return
          if (!committed && controller?.aborted !== true && shouldFailOver(error)) {
            // whatever the relay still sends on this attempt is not the caller's
            refused = true
            if (controller !== undefined && !controller.aborted) controller.abort(error)
            resolve({
              committed: false,
              error,
              expired: /\(407\)/.test(error.message) && this.#ticketNearExpiry(),
            })
            return
          }
          commit()
          settle()
          handler.onResponseError?.(controller ?? idleController(), error)
        },
      }
      agent.dispatch(counted, wrapped)
    })
  }

  #ticketNearExpiry(): boolean {
    const t = this.#ticket
    return t !== undefined && t.message.expiry - TICKET_MARGIN_SECONDS <= this.#now / 1000
  }

  // biome-ignore lint/suspicious/noExplicitAny: Dispatcher overloads close/destroy with callback forms
  override async close(): Promise<any> {
    this.#closed = true
    await this.#payments?.flush()
    const agents = [...this.#agents.values()]
    this.#agents.clear()
    await Promise.all(agents.map((a) => a.close()))
  }

  // biome-ignore lint/suspicious/noExplicitAny: see close
  override async destroy(): Promise<any> {
    this.#closed = true
    const agents = [...this.#agents.values()]
    this.#agents.clear()
    await Promise.all(agents.map((a) => a.destroy()))
  }
}

/**
 * @example
 * const dispatcher = createRelayDispatcher({ region: 'eu-west', account }, { tracker: { url: trackerUrl } })
 * const res = await fetch('https://example.org/', { dispatcher })
 */
export function createRelayDispatcher(
  init: RelayDispatcherInit,
  components: RelayDispatcherComponents = {},
): RelayDispatcher {
  return new RelayDispatcher(init, components)
}

/**
 * The relay dispatcher of a client: its tracker, its region unless `init.region` says
 * otherwise. (`client.relayDispatcher(init)` once the client exposes it.)
 *
 * @example
 * const dispatcher = relayDispatcher(client, { region: 'eu-west', account })
 * const res = await fetch('http://example.org/', { dispatcher })
 */
export function relayDispatcher(
  client: Pick<ShoalClient, 'tracker' | 'options'>,
  init: RelayDispatcherInit = {},
): RelayDispatcher {
  const region = init.region ?? client.options.region
  return new RelayDispatcher(
    { ...init, ...(region !== undefined ? { region } : {}) },
    client.tracker !== undefined ? { tracker: client.tracker } : {},
  )
}
