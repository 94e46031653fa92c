/**
 * Header handling of the origin cache: hop-by-hop fields removed both ways
 * (RFC 9110 §7.6.1), `Via` appended, the request fields a cache fill must not carry,
 * and the normalisation of `Accept-Encoding` and other `Vary` inputs.
 */
import type { IncomingHttpHeaders } from 'node:http'

/** Fields that describe one connection, never forwarded (RFC 9110 §7.6.1, plus the legacy ones). */
export const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'proxy-authorization',
  'proxy-authenticate',
])

/**
 * Request fields a cache fill never forwards: the client's own validators and ranges
 * (the node fetches whole objects and answers those itself), and `Expect`, which the
 * node answers, never the origin.
 */
const FILL_DROPPED = new Set([
  'range',
  'if-range',
  'if-none-match',
  'if-modified-since',
  'if-match',
  'if-unmodified-since',
  'expect',
])

/** Also never forwarded by any request: `Host` (set from the origin URL) and `Expect`. */
const ALWAYS_DROPPED = new Set(['host', 'expect'])

/** The field names listed in `Connection` (also hop-by-hop), lowercased. */
function connectionTokens(value: string | string[] | undefined): Set<string> | undefined {
  if (value === undefined) return undefined
  const text = Array.isArray(value) ? value.join(',') : value
  const tokens = new Set<string>()
  for (const token of text.split(',')) {
    const t = token.trim().toLowerCase()
    if (t !== '') tokens.add(t)
  }
  return tokens.size === 0 ? undefined : tokens
}

/** Appends `1.1 <name>` to a `Via` value. */
export function appendVia(existing: string | string[] | undefined, name: string): string {
  const own = `1.1 ${name}`
  if (existing === undefined || existing === '') return own
  return `${Array.isArray(existing) ? existing.join(', ') : existing}, ${own}`
}

export interface ForwardOptions {
  viaName: string
  /** True for a cache fill: the client's validators and range stay here. */
  fill: boolean
  /** Normalised `Accept-Encoding` to send instead of the client's (fills only). */
  acceptEncoding?: string
  /** The client's address, appended to `X-Forwarded-For` when forwarding it is enabled. */
  clientIp?: string
  /** Keep `Content-Length`/`Content-Type` (a request with a body). */
  hasBody?: boolean
}

/**
 * The headers of a request to the origin: the client's end-to-end fields without
 * hop-by-hop ones, `Host` left to the upstream client (it sets the origin's), `Via`
 * appended. The client's address is not forwarded unless `clientIp` is given.
 */
export function forwardRequestHeaders(
  headers: IncomingHttpHeaders,
  options: ForwardOptions,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {}
  const tokens = connectionTokens(headers.connection)
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue
    if (HOP_BY_HOP.has(name) || ALWAYS_DROPPED.has(name) || tokens?.has(name) === true) continue
    if (options.fill && FILL_DROPPED.has(name)) continue
    if (!options.hasBody && (name === 'content-length' || name === 'content-type')) continue
    if (name === 'via') continue
    out[name] = value
  }
  if (options.acceptEncoding !== undefined) out['accept-encoding'] = options.acceptEncoding
  out.via = appendVia(headers.via, options.viaName)
  if (options.clientIp !== undefined) {
    const xff = headers['x-forwarded-for']
    out['x-forwarded-for'] =
      xff === undefined || xff === '' ? options.clientIp : `${String(xff)}, ${options.clientIp}`
  }
  return out
}

/**
 * An origin response's end-to-end headers: hop-by-hop fields and those named in
 * `Connection` removed, repeated fields joined with `, ` (except `Set-Cookie`,
 * which stays a list).
 */
export function endToEndResponseHeaders(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {}
  const tokens = connectionTokens(headers.connection)
  for (const [raw, value] of Object.entries(headers)) {
    if (value === undefined) continue
    const name = raw.toLowerCase()
    if (HOP_BY_HOP.has(name) || tokens?.has(name) === true) continue
    if (name === 'set-cookie') out[name] = Array.isArray(value) ? value : [value]
    else out[name] = Array.isArray(value) ? value.join(', ') : value
  }
  return out
}

/** The content codings the cache keys variants on, in the order it names them upstream. */
const CODINGS = ['br', 'gzip', 'zstd'] as const

/**
 * Normalises `Accept-Encoding` to the codings the node distinguishes: the subset of
 * `br`, `gzip`, `zstd` the client accepts (q > 0, or through `*`), in a fixed order, or
 * `identity` when none. The normalised value is both the variant key and what is sent
 * to the origin, so a stored variant always matches the key it is stored under and
 * at most eight variants of an object exist.
 *
 * @example
 * normalizeAcceptEncoding('gzip, deflate, br;q=0.9') // 'br, gzip'
 * normalizeAcceptEncoding(undefined)                  // 'identity'
 */
export function normalizeAcceptEncoding(value: string | undefined): string {
  if (value === undefined || value === '') return 'identity'
  const q = new Map<string, number>()
  for (const part of value.split(',')) {
    const [codingRaw, ...params] = part.split(';')
    const coding = (codingRaw ?? '').trim().toLowerCase()
    if (coding === '') continue
    let weight = 1
    for (const param of params) {
      const [k, v] = param.split('=')
      if (k?.trim().toLowerCase() === 'q') {
        const parsed = Number(v?.trim())
        weight = Number.isFinite(parsed) ? parsed : 0
      }
    }
    if (!q.has(coding)) q.set(coding, weight)
  }
  const star = q.get('*')
  const accepted = CODINGS.filter((coding) => {
    const weight = q.get(coding) ?? star
    return weight !== undefined && weight > 0
  })
  return accepted.length === 0 ? 'identity' : accepted.join(', ')
}

/**
 * Normalises the value of a request field named by `Vary`: surrounding and repeated
 * white space removed, none around commas. `Accept-Encoding` is reduced to the codings
 * the cache distinguishes. An absent field is the empty string.
 */
export function normalizeVaryValue(name: string, value: string | undefined): string {
  if (name === 'accept-encoding') return normalizeAcceptEncoding(value)
  if (value === undefined) return ''
  return value.trim().replace(/\s+/g, ' ').replace(/ ?, ?/g, ',')
}

/**
 * The field names of a `Vary` value, lowercased, unique and sorted; `['*']` when it
 * contains `*`.
 */
export function parseVary(value: string | undefined): string[] {
  if (value === undefined) return []
  const names = new Set<string>()
  for (const part of value.split(',')) {
    const name = part.trim().toLowerCase()
    if (name === '*') return ['*']
    if (name !== '') names.add(name)
  }
  return Array.from(names).sort()
}

/** One field of a request as a single string (repeated fields joined), or undefined. */
export function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name]
  if (value === undefined) return undefined
  return Array.isArray(value) ? value.join(', ') : value
}
