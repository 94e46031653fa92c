/**
 * The tracker's HTTP API as typed calls. Browser-safe (global `fetch` by default); the
 * edge node uses it too, to fetch site manifests. Every answer from the tracker is
 * checked: manifests and entry proofs are decoded strictly here (and verified by the
 * caller), node lists are validated field by field, and anything else is a typed error.
 */
import {
  AbortError,
  decodeManifestEntryProof,
  decodeSiteManifest,
  decodeTicket,
  ERROR_CODES,
  type ErrorCode,
  encodeSiteManifest,
  InvalidArgumentError,
  InvalidFormatError,
  type ManifestEntryProof,
  parseErrorBody,
  pathProblem,
  ShoalError,
  type Signed,
  type SiteManifest,
  type Ticket,
  ticketId,
  UpstreamError,
} from '@shoal/protocol'
import { type Address, getAddress, type Hex, isAddress } from 'viem'
import type { NodeReport } from './reports.ts'

export interface TrackerClientInit {
  /** Base URL of the tracker, e.g. `http://127.0.0.1:7470`. */
  url: string
  /** A fetch implementation; defaults to the global one. */
  fetch?: typeof globalThis.fetch
  /** Per-request timeout in milliseconds (default 10 s). */
  timeoutMs?: number
}

/** One node of a `GET /v1/select` answer. */
export interface SelectedNode {
  /** The node's address (its key). */
  node: Address
  region: string
  score: number
  /**
   * Base URL of the node's HTTP edge (canonical: ends with `/`); absent for a node
   * reachable only through the mesh (`reachability: 'mesh'`, only with `mesh: true`).
   */
  httpUrl?: string
  /** `url`: the tracker's probes reach `httpUrl`; `mesh`: dial `peerId` at `multiaddrs` instead. */
  reachability: 'url' | 'mesh'
  peerId: string
  multiaddrs: string[]
}

export interface SelectOptions {
  /** How many nodes (default: the tracker's, 3). */
  count?: number
  /** The client's region hint. */
  region?: string
  /** Addresses not to return (nodes that already failed). */
  exclude?: readonly string[]
  /** The id of the ticket that pays for the fetch: the tracker records which nodes it was handed. */
  ticket?: Hex
  /** Also take nodes reachable only through the mesh (a client that can dial libp2p). */
  mesh?: boolean
  signal?: AbortSignal
}

/** What the client asks a ticket for: exactly one of `site`, `cid`, `publisher` names who pays. */
export interface TicketRequest {
  client: Address
  site?: string
  cid?: string
  publisher?: Address
  /** Bytes wanted; the tracker grants at most its maximum. */
  budget?: number
}

/** A ticket the tracker issued (`POST /v1/tickets`), checked: the id is the ticket's. */
export interface TicketGrant {
  id: Hex
  ticket: Signed<Ticket>
  /** Whose escrow pays. */
  publisher: Address
  /** The epoch current when it was issued, and when that epoch ends (unix seconds). */
  epoch: number
  epochEndsAt: number
}

/** `GET /v1/epochs/current`. */
export interface EpochAnswer {
  epoch: number
  startsAt: number
  endsAt: number
  epochSeconds: number
}

/** What the tracker answered to a report. */
export interface ReportReceipt {
  node: string
  standing: number
  weight: number
  status: string
  auditQueued: boolean
}

export interface TrackerClient {
  readonly url: string
  /** The site's signed manifest (decoded, not yet verified), or `undefined` when the tracker has none. */
  getSite(site: string, options?: { signal?: AbortSignal }): Promise<Signed<SiteManifest> | undefined>
  /** Same as `getSite`: the shape the edge node's manifest registry asks for. */
  fetchManifest(site: string, options?: { signal?: AbortSignal }): Promise<Signed<SiteManifest> | undefined>
  /**
   * The entry proof of one path (`GET /v1/sites/<site>/entries?path=…`), decoded strictly
   * but not verified: pass it to `verifyManifestEntryProof`. `NotFoundError` when the
   * tracker has no such site or path.
   */
  getEntryProof(site: string, path: string, options?: { signal?: AbortSignal }): Promise<ManifestEntryProof>
  /** The best nodes for a CID (`GET /v1/select`), in the tracker's order. */
  select(cid: string, options?: SelectOptions): Promise<SelectedNode[]>
  /** Files a signed report about a node (`POST /v1/reports`). */
  report(signed: Signed<NodeReport>, options?: { signal?: AbortSignal }): Promise<ReportReceipt>
  /** Asks for a ticket (`POST /v1/tickets`); the answer is decoded and checked, not verified. */
  ticket(request: TicketRequest, options?: { signal?: AbortSignal }): Promise<TicketGrant>
  /** The tracker's current epoch (`GET /v1/epochs/current`). */
  currentEpoch(options?: { signal?: AbortSignal }): Promise<EpochAnswer>
  /** Publishes a signed site manifest (`POST /v1/sites`); the tracker's typed error when refused. */
  publishSite(signed: Signed<SiteManifest>, options?: { signal?: AbortSignal }): Promise<PublishedSite>
}

/** What the tracker answered to a published manifest. */
export interface PublishedSite {
  site: string
  publisher: string
  sequence: number
  entryCount: number
  /** True when this manifest created the site (its publisher now owns the name). */
  created: boolean
}

export const DEFAULT_TRACKER_TIMEOUT_MS = 10_000
/** Largest tracker answer read (an entry proof is under 2 KB, a select answer under 64 KiB). */
const MAX_ANSWER_BYTES = 1 << 20

const SITE_RE = /^[a-z0-9][a-z0-9-]{0,62}$/
const REGION_RE = /^[a-z0-9][a-z0-9-]{0,31}$/

/** Turns a non-2xx answer into the typed error the tracker named (or an UpstreamError). */
async function errorOf(res: Response): Promise<Error> {
  const body = parseErrorBody(await res.json().catch(() => undefined))
  if (body !== undefined && Object.hasOwn(ERROR_CODES, body.error.code)) {
    return new ShoalError(body.error.code as ErrorCode, `tracker: ${body.error.message}`)
  }
  return new UpstreamError(`tracker answered ${res.status}`)
}

function garbage(what: string, problem: string): Error {
  return new InvalidFormatError(`tracker answered garbage for ${what}: ${problem}`)
}

/** Validates one node of a select answer; throws `InvalidFormatError` naming the field. */
function checkSelected(value: unknown, i: number, mesh: boolean): SelectedNode {
  const what = `select (nodes[${i}])`
  if (typeof value !== 'object' || value === null) throw garbage(what, 'not an object')
  const v = value as Record<string, unknown>
  if (typeof v.node !== 'string' || !isAddress(v.node, { strict: false }))
    throw garbage(what, 'node is not an address')
  if (typeof v.region !== 'string' || !REGION_RE.test(v.region)) throw garbage(what, 'bad region')
  if (typeof v.score !== 'number' || !Number.isFinite(v.score)) throw garbage(what, 'score is not a number')
  const peerId = typeof v.peerId === 'string' ? v.peerId : ''
  const multiaddrs = Array.isArray(v.multiaddrs)
    ? v.multiaddrs.filter((m): m is string => typeof m === 'string')
    : []
  if (v.reachability === 'mesh') {
    if (!mesh) throw garbage(what, 'a mesh-only node, not asked for')
    if (peerId === '' || multiaddrs.length === 0)
      throw garbage(what, 'a mesh node without peerId or multiaddrs')
    return {
      node: getAddress(v.node),
      region: v.region,
      score: v.score,
      reachability: 'mesh',
      peerId,
      multiaddrs,
    }
  }
  if (typeof v.httpUrl !== 'string') throw garbage(what, 'httpUrl is missing')
  let url: URL
  try {
    url = new URL(v.httpUrl)
  } catch {
    throw garbage(what, 'httpUrl is not a URL')
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw garbage(what, 'httpUrl is not http(s)')
  return {
    reachability: 'url',
    node: getAddress(v.node),
    region: v.region,
    score: v.score,
    httpUrl: url.href.endsWith('/') ? url.href : `${url.href}/`,
    peerId,
    multiaddrs,
  }
}

/**
 * @example
 * const tracker = createTrackerClient({ url: 'http://127.0.0.1:7470' })
 * const signed = await tracker.getSite('blog')
 * const nodes = await tracker.select(cid.text, { count: 3, region: 'eu-west' })
 */
export function createTrackerClient(init: TrackerClientInit): TrackerClient {
  let base: URL
  try {
    base = new URL(init.url)
  } catch {
    throw new InvalidArgumentError(`tracker url "${init.url}" is not an absolute URL`)
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') {
    throw new InvalidArgumentError('tracker url must be http or https')
  }
  const root = base.href.replace(/\/$/, '')
  const doFetch = init.fetch ?? globalThis.fetch
  const timeoutMs = init.timeoutMs ?? DEFAULT_TRACKER_TIMEOUT_MS
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1)
    throw new InvalidArgumentError('tracker timeoutMs must be a positive integer')

  const call = async (path: string, signal: AbortSignal | undefined, body?: string): Promise<Response> => {
    const timeout = AbortSignal.timeout(timeoutMs)
    try {
      return await doFetch(`${root}${path}`, {
        method: body === undefined ? 'GET' : 'POST',
        headers:
          body === undefined
            ? { accept: 'application/json' }
            : { accept: 'application/json', 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body }),
        signal: signal === undefined ? timeout : AbortSignal.any([signal, timeout]),
      })
    } catch (err) {
      if (signal?.aborted === true) throw new AbortError('the operation was aborted', { cause: err })
      throw new UpstreamError(`tracker at ${root} did not answer`, { cause: err })
    }
  }

  /** Reads a bounded text body; a body cut short or too large is an upstream failure. */
  const text = async (res: Response, what: string): Promise<string> => {
    const declared = Number(res.headers.get('content-length') ?? 0)
    if (declared > MAX_ANSWER_BYTES) {
      await res.body?.cancel()
      throw new UpstreamError(`tracker answer for ${what} is larger than ${MAX_ANSWER_BYTES} bytes`)
    }
    try {
      const out = await res.text()
      if (out.length > MAX_ANSWER_BYTES)
        throw new UpstreamError(`tracker answer for ${what} is larger than ${MAX_ANSWER_BYTES} bytes`)
      return out
    } catch (err) {
      if (err instanceof ShoalError) throw err
      throw new UpstreamError(`tracker answer for ${what} was cut short`, { cause: err })
    }
  }

  const json = async (res: Response, what: string): Promise<unknown> => {
    const body = await text(res, what)
    try {
      return JSON.parse(body)
    } catch (cause) {
      throw new InvalidFormatError(`tracker answered garbage for ${what}: not JSON`, { cause })
    }
  }

  const checkSite = (site: string) => {
    if (typeof site !== 'string' || !SITE_RE.test(site))
      throw new InvalidArgumentError(`"${site}" is not a site name`)
  }

  const getSite = async (site: string, options: { signal?: AbortSignal } = {}) => {
    checkSite(site)
    const res = await call(`/v1/sites/${site}`, options.signal)
    if (res.status === 404) {
      await res.body?.cancel()
      return undefined
    }
    if (!res.ok) throw await errorOf(res)
    return decodeSiteManifest(await text(res, `site ${site}`))
  }

  const getEntryProof = async (site: string, path: string, options: { signal?: AbortSignal } = {}) => {
    checkSite(site)
    const problem = typeof path === 'string' ? pathProblem(path) : 'must be a string'
    if (problem !== undefined) throw new InvalidArgumentError(`path ${problem}`)
    const res = await call(`/v1/sites/${site}/entries?path=${encodeURIComponent(path)}`, options.signal)
    if (!res.ok) throw await errorOf(res)
    return decodeManifestEntryProof(await text(res, `${site}${path}`))
  }

  const select = async (cid: string, options: SelectOptions = {}): Promise<SelectedNode[]> => {
    const query = new URLSearchParams({ cid })
    if (options.count !== undefined) query.set('count', String(options.count))
    if (options.region !== undefined) query.set('region', options.region)
    if (options.exclude !== undefined && options.exclude.length > 0)
      query.set('exclude', options.exclude.join(','))
    if (options.ticket !== undefined) query.set('ticket', options.ticket)
    if (options.mesh === true) query.set('mesh', '1')
    const res = await call(`/v1/select?${query}`, options.signal)
    if (!res.ok) throw await errorOf(res)
    const body = await json(res, 'select')
    if (typeof body !== 'object' || body === null) throw garbage('select', 'not an object')
    const { cid: answered, nodes } = body as { cid?: unknown; nodes?: unknown }
    if (answered !== cid) throw garbage('select', `it names another CID (${String(answered).slice(0, 80)})`)
    if (!Array.isArray(nodes)) throw garbage('select', 'nodes is not a list')
    return nodes.map((n, i) => checkSelected(n, i, options.mesh === true))
  }

  const report = async (signed: Signed<NodeReport>, options: { signal?: AbortSignal } = {}) => {
    const res = await call('/v1/reports', options.signal, JSON.stringify(signed))
    if (!res.ok) throw await errorOf(res)
    const body = await json(res, 'report')
    if (typeof body !== 'object' || body === null) throw garbage('report', 'not an object')
    return body as ReportReceipt
  }

  const publishSite = async (signed: Signed<SiteManifest>, options: { signal?: AbortSignal } = {}) => {
    const res = await call('/v1/sites', options.signal, encodeSiteManifest(signed))
    if (!res.ok) throw await errorOf(res)
    const body = await json(res, 'publish')
    if (typeof body !== 'object' || body === null || typeof (body as PublishedSite).sequence !== 'number')
      throw garbage('publish', 'no sequence')
    return body as PublishedSite
  }

  const ticket = async (request: TicketRequest, options: { signal?: AbortSignal } = {}) => {
    const res = await call('/v1/tickets', options.signal, JSON.stringify(request))
    if (!res.ok) throw await errorOf(res)
    const body = await json(res, 'ticket')
    if (typeof body !== 'object' || body === null) throw garbage('ticket', 'not an object')
    const v = body as Record<string, unknown>
    const signed = decodeTicket(v.ticket)
    const id = ticketId(signed.message)
    if (v.id !== id) throw garbage('ticket', "id is not the ticket's")
    if (signed.message.client !== getAddress(request.client))
      throw garbage('ticket', 'it is for another client')
    if (typeof v.publisher !== 'string' || !isAddress(v.publisher, { strict: false }))
      throw garbage('ticket', 'publisher is not an address')
    if (!Number.isSafeInteger(v.epoch) || !Number.isSafeInteger(v.epochEndsAt))
      throw garbage('ticket', 'epoch or epochEndsAt is not an integer')
    return {
      id,
      ticket: signed,
      publisher: getAddress(v.publisher),
      epoch: v.epoch as number,
      epochEndsAt: v.epochEndsAt as number,
    }
  }

  const currentEpoch = async (options: { signal?: AbortSignal } = {}) => {
    const res = await call('/v1/epochs/current', options.signal)
    if (!res.ok) throw await errorOf(res)
    const v = (await json(res, 'the current epoch')) as Record<string, unknown> | null
    if (typeof v !== 'object' || v === null) throw garbage('the current epoch', 'not an object')
    for (const key of ['epoch', 'startsAt', 'endsAt', 'epochSeconds'] as const)
      if (!Number.isSafeInteger(v[key])) throw garbage('the current epoch', `${key} is not an integer`)
    return {
      epoch: v.epoch as number,
      startsAt: v.startsAt as number,
      endsAt: v.endsAt as number,
      epochSeconds: v.epochSeconds as number,
    }
  }

  return {
    url: root,
    getSite,
    fetchManifest: getSite,
    getEntryProof,
    select,
    report,
    ticket,
    currentEpoch,
    publishSite,
  }
}
