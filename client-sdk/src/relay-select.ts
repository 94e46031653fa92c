/**
 * Asks the tracker for relays near a region: `GET /v1/relays?region=&count=&exclude=`
 * (docs/relay.md) and validates the answer field by field.
 */
import {
  decodeTicket,
  ERROR_CODES,
  type ErrorCode,
  InvalidFormatError,
  parseErrorBody,
  type RecordSigner,
  ShoalError,
  type Signed,
  type Ticket,
  UpstreamError,
} from '@shoal/protocol'
import { getAddress, isAddress } from 'viem'

export interface RelayCandidate {
  node: string
  region: string
  score: number
  /** `http://host:port` of the node's relay. */
  relayUrl: string
}

async function errorOf(res: Response, what: string): Promise<Error> {
  const body = parseErrorBody(await res.json().catch(() => undefined))
  if (body !== undefined && Object.hasOwn(ERROR_CODES, body.error.code))
    return new ShoalError(body.error.code as ErrorCode, `tracker (${what}): ${body.error.message}`)
  return new UpstreamError(`tracker answered ${res.status} to ${what}`)
}

/**
 * @example
 * const relays = await selectRelays('http://127.0.0.1:7470', { region: 'eu-west', count: 3 })
 */
export async function selectRelays(
  trackerUrl: string,
  query: {
    region?: string
    count?: number
    exclude?: readonly string[]
    /** The relay ticket's id: the tracker notes these relays were handed to it (settlement pays only those). */
    ticket?: string
    signal?: AbortSignal
  },
  doFetch: typeof globalThis.fetch = globalThis.fetch,
): Promise<RelayCandidate[]> {
  const params = new URLSearchParams()
  if (query.region !== undefined) params.set('region', query.region)
  if (query.count !== undefined) params.set('count', String(query.count))
  if (query.exclude !== undefined && query.exclude.length > 0) params.set('exclude', query.exclude.join(','))
  if (query.ticket !== undefined) params.set('ticket', query.ticket)
  const res = await doFetch(`${trackerUrl.replace(/\/$/, '')}/v1/relays?${params}`, {
    ...(query.signal !== undefined ? { signal: query.signal } : {}),
  })
  if (!res.ok) throw await errorOf(res, 'relays')
  const body = (await res.json().catch(() => undefined)) as { relays?: unknown } | undefined
  if (!Array.isArray(body?.relays)) throw new InvalidFormatError('tracker answered garbage for relays')
  return body.relays.map((v: unknown, i) => {
    const r = v as Record<string, unknown>
    const bad = (what: string) => new InvalidFormatError(`tracker answered garbage for relays[${i}]: ${what}`)
    if (typeof r !== 'object' || r === null) throw bad('not an object')
    if (typeof r.node !== 'string' || !isAddress(r.node, { strict: false }))
      throw bad('node is not an address')
    if (typeof r.relayUrl !== 'string') throw bad('relayUrl is missing')
    let url: URL
    try {
      url = new URL(r.relayUrl)
    } catch {
      throw bad('relayUrl is not a URL')
    }
    if (url.protocol !== 'http:') throw bad('relayUrl is not http')
    return {
      node: getAddress(r.node),
      region: typeof r.region === 'string' ? r.region : '',
      score: typeof r.score === 'number' ? r.score : 0,
      relayUrl: url.origin,
    }
  })
}

/**
 * Asks the tracker for a relay ticket for `account` (`POST /v1/tickets`).
 *
 * @example
 * const ticket = await requestRelayTicket(trackerUrl, account)
 */
export async function requestRelayTicket(
  trackerUrl: string,
  account: Pick<RecordSigner, 'address'>,
  options: { signal?: AbortSignal; body?: Record<string, unknown> } = {},
  doFetch: typeof globalThis.fetch = globalThis.fetch,
): Promise<Signed<Ticket>> {
  const res = await doFetch(`${trackerUrl.replace(/\/$/, '')}/v1/tickets`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ client: account.address, ...options.body }),
    ...(options.signal !== undefined ? { signal: options.signal } : {}),
  })
  if (!res.ok) throw await errorOf(res, 'tickets')
  const body = (await res.json().catch(() => undefined)) as { ticket?: unknown } | undefined
  return decodeTicket(body?.ticket)
}
