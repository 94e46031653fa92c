/**
 * The strict, narrow HTTP/1.1 request-head parser of the hit fast path. Pure: no I/O.
 *
 * It says "yes, answer this" only for a head it understands completely and that cannot
 * carry a body or change the response in a way the cache layer cannot see:
 *
 * - request line exactly `GET|HEAD SP origin-form SP HTTP/1.1 CRLF`; the target holds only
 *   RFC 3986 path/query characters (unreserved, sub-delims, `%`, `:`, `@`, `/`, `?`);
 * - header lines exactly `token ":" OWS value OWS CRLF`, values of visible ASCII, SP, HTAB;
 * - exactly one `Host`, of host characters (letters, digits, `-._~:[]`);
 * - every header name in {@link FAST_PATH_ALLOWED_HEADERS} or starting with `sec-`;
 *   `Connection` only with the single value `keep-alive`.
 *
 * Everything else is not an error here: the caller hands the connection to node:http,
 * which decides (400, 431, or an ordinary answer). The parser never has to be lenient.
 */

/** The head is fine: the fast path may answer it. */
export const HEAD_OK = 0
/** Well-formed as far as seen, but outside the fast path (method, version, a header). */
export const HEAD_UNSUPPORTED = 1
/** Not strictly well-formed (bare LF, obs-fold, space before colon, NUL, …). */
export const HEAD_MALFORMED = 2
export type HeadStatus = typeof HEAD_OK | typeof HEAD_UNSUPPORTED | typeof HEAD_MALFORMED

/**
 * Header names (lowercase) that cannot frame a body, make the request conditional or
 * partial, carry credentials or cache directives. Anything a cached response may still
 * depend on (`Accept*`, `Origin`, `User-Agent` via `Vary`) is readable by the lookup
 * through `FastPathRequest.header(name)`. Any name starting with `sec-` is allowed too
 * (Fetch metadata and client hints: `Sec-Fetch-*`, `Sec-CH-UA*`, `Sec-GPC`).
 */
export const FAST_PATH_ALLOWED_HEADERS: readonly string[] = [
  'host',
  'connection',
  'user-agent',
  'accept',
  'accept-encoding',
  'accept-language',
  'referer',
  'origin',
  'dnt',
  'upgrade-insecure-requests',
  'priority',
  // names a payment session: the node's lookup meters the body it answers with
  'shoal-session',
]

/** Offsets of what the connection needs from a parsed head; reused, never allocated per request. */
export interface HeadInfo {
  isHead: boolean
  pathStart: number
  pathEnd: number
  hostStart: number
  hostEnd: number
}

export function createHeadInfo(): HeadInfo {
  return { isHead: false, pathStart: 0, pathEnd: 0, hostStart: 0, hostEnd: 0 }
}

const SP = 0x20
const HTAB = 0x09
const CR = 0x0d
const LF = 0x0a
const COLON = 0x3a

function table(chars: string, ranges: readonly (readonly [number, number])[] = []): Uint8Array {
  const t = new Uint8Array(256)
  for (let i = 0; i < chars.length; i++) t[chars.charCodeAt(i)] = 1
  for (const [from, to] of ranges) for (let c = from; c <= to; c++) t[c] = 1
  return t
}

const ALPHA_DIGIT: readonly (readonly [number, number])[] = [
  [0x30, 0x39],
  [0x41, 0x5a],
  [0x61, 0x7a],
]
/** RFC 9110 tchar. */
const TCHAR = table("!#$%&'*+-.^_`|~", ALPHA_DIGIT)
/** Field value bytes the fast path accepts: VCHAR, SP, HTAB (no obs-text). */
const VALUE = table('\t ', [[0x21, 0x7e]])
/** origin-form: absolute-path [ "?" query ], pchar = unreserved / pct-encoded / sub-delims / ":" / "@". */
const PATH = table("-._~%!$&'()*+,;=:@/?", ALPHA_DIGIT)
/** Host header: reg-name and IP literals without pct-encoding or sub-delims, and a port. */
const HOST = table('-._~:[]', ALPHA_DIGIT)

const KIND = { DISALLOWED: 0, HOST: 1, CONNECTION: 2, ALLOWED: 3 } as const

/** Allowed names bucketed by length, each with its kind. */
const BY_LENGTH: (readonly [Uint8Array, number])[][] = []
for (const name of FAST_PATH_ALLOWED_HEADERS) {
  const kind = name === 'host' ? KIND.HOST : name === 'connection' ? KIND.CONNECTION : KIND.ALLOWED
  const bucket = BY_LENGTH[name.length] ?? []
  bucket.push([Buffer.from(name, 'latin1'), kind])
  BY_LENGTH[name.length] = bucket
}

const KEEP_ALIVE = Buffer.from('keep-alive', 'latin1')

/**
 * Case-insensitive compare of `buf[start, start + lower.length)` with a lowercase name.
 * `| 0x20` folds ASCII upper case; it maps no other tchar or value byte onto a lowercase
 * letter or `-` (CR would map to `-`, but CR never reaches here: names are tchars and
 * values end before CR).
 */
function equalsLower(buf: Uint8Array, start: number, lower: Uint8Array): boolean {
  for (let k = 0; k < lower.length; k++) {
    if ((buf[start + k]! | 0x20) !== lower[k]) return false
  }
  return true
}

function classify(buf: Uint8Array, start: number, end: number): number {
  const n = end - start
  if (
    n > 4 &&
    (buf[start]! | 0x20) === 0x73 && // s
    (buf[start + 1]! | 0x20) === 0x65 && // e
    (buf[start + 2]! | 0x20) === 0x63 && // c
    buf[start + 3] === 0x2d // -
  ) {
    return KIND.ALLOWED
  }
  const bucket = BY_LENGTH[n]
  if (bucket === undefined) return KIND.DISALLOWED
  for (let k = 0; k < bucket.length; k++) {
    const entry = bucket[k]!
    if (equalsLower(buf, start, entry[0])) return entry[1]
  }
  return KIND.DISALLOWED
}

/**
 * Parses the request head in `buf[start, end)`, where `end` is just past the CRLF of the
 * last header line (the empty line that ends the head starts at `end`). Fills `info`.
 *
 * @example
 * const buf = Buffer.from('GET /a HTTP/1.1\r\nHost: x\r\n\r\n')
 * const info = createHeadInfo()
 * parseRequestHead(buf, 0, buf.indexOf('\r\n\r\n') + 2, info) // HEAD_OK, info.pathStart 4
 */
export function parseRequestHead(buf: Uint8Array, start: number, end: number, info: HeadInfo): HeadStatus {
  // Shortest possible: "GET / HTTP/1.1\r\n" (16 bytes) plus a Host line.
  if (end - start < 16) return HEAD_MALFORMED
  let i = start
  if (buf[i] === 0x47 && buf[i + 1] === 0x45 && buf[i + 2] === 0x54 && buf[i + 3] === SP) {
    info.isHead = false
    i += 4
  } else if (
    buf[i] === 0x48 &&
    buf[i + 1] === 0x45 &&
    buf[i + 2] === 0x41 &&
    buf[i + 3] === 0x44 &&
    buf[i + 4] === SP
  ) {
    info.isHead = true
    i += 5
  } else {
    return HEAD_UNSUPPORTED
  }
  // origin-form only: absolute-form (proxy), authority-form (CONNECT) and `*` go to node:http.
  if (buf[i] !== 0x2f) return HEAD_UNSUPPORTED
  info.pathStart = i
  while (i < end && PATH[buf[i]!] === 1) i++
  info.pathEnd = i
  if (buf[i] !== SP) return HEAD_MALFORMED
  // " HTTP/1.1\r\n": i points at the SP.
  if (
    i + 11 > end ||
    buf[i + 1] !== 0x48 ||
    buf[i + 2] !== 0x54 ||
    buf[i + 3] !== 0x54 ||
    buf[i + 4] !== 0x50 ||
    buf[i + 5] !== 0x2f
  ) {
    return HEAD_MALFORMED
  }
  if (buf[i + 6] !== 0x31 || buf[i + 7] !== 0x2e || buf[i + 8] !== 0x31) return HEAD_UNSUPPORTED
  if (buf[i + 9] !== CR || buf[i + 10] !== LF) return HEAD_MALFORMED
  i += 11

  let hosts = 0
  while (i < end) {
    const nameStart = i
    while (TCHAR[buf[i]!] === 1) i++
    const nameEnd = i
    // An empty name covers obs-fold (a line starting with SP/HTAB) and stray CR/LF;
    // anything but ':' right after the name covers "Name : value".
    if (nameEnd === nameStart || buf[i] !== COLON) return HEAD_MALFORMED
    i++
    while (buf[i] === SP || buf[i] === HTAB) i++
    const valueStart = i
    let valueEnd = i
    for (;;) {
      const c = buf[i]!
      if (c === CR) break
      if (VALUE[c] !== 1) return HEAD_MALFORMED
      i++
      if (c !== SP && c !== HTAB) valueEnd = i
    }
    // The region ends with CRLF, so a CR is always found before `end`.
    if (buf[i + 1] !== LF) return HEAD_MALFORMED
    i += 2
    const kind = classify(buf, nameStart, nameEnd)
    if (kind === KIND.ALLOWED) continue
    if (kind === KIND.HOST) {
      if (++hosts > 1 || valueEnd === valueStart) return HEAD_UNSUPPORTED
      for (let k = valueStart; k < valueEnd; k++) if (HOST[buf[k]!] !== 1) return HEAD_UNSUPPORTED
      info.hostStart = valueStart
      info.hostEnd = valueEnd
    } else if (kind === KIND.CONNECTION) {
      if (valueEnd - valueStart !== KEEP_ALIVE.length || !equalsLower(buf, valueStart, KEEP_ALIVE)) {
        return HEAD_UNSUPPORTED
      }
    } else {
      return HEAD_UNSUPPORTED
    }
  }
  return hosts === 1 ? HEAD_OK : HEAD_UNSUPPORTED
}

/**
 * The value of header `lowerName` in a head that {@link parseRequestHead} accepted,
 * repeated fields joined with ", " (RFC 9110 §5.3); `undefined` when absent.
 */
export function readHeader(buf: Buffer, start: number, end: number, lowerName: string): string | undefined {
  const name = Buffer.from(lowerName.toLowerCase(), 'latin1')
  let i = buf.indexOf(LF, start) + 1 // past the request line
  let found: string | undefined
  while (i > 0 && i < end) {
    const lineEnd = buf.indexOf(CR, i)
    const colon = buf.indexOf(COLON, i)
    if (colon - i === name.length && equalsLower(buf, i, name)) {
      let s = colon + 1
      let e = lineEnd
      while (s < e && (buf[s] === SP || buf[s] === HTAB)) s++
      while (e > s && (buf[e - 1] === SP || buf[e - 1] === HTAB)) e--
      const value = buf.toString('latin1', s, e)
      found = found === undefined ? value : `${found}, ${value}`
    }
    i = lineEnd + 2
  }
  return found
}

/**
 * True when `buf[from, end)` of an incomplete head already shows it can never be a
 * strict head: a LF without CR before it, a CR followed by anything but LF, or a NUL.
 * The connection is then handed to node:http at once rather than waiting for a blank
 * line that would never come in the strict form.
 */
export function hasBadLineBreak(buf: Uint8Array, start: number, from: number, end: number): boolean {
  for (let k = from; k < end; k++) {
    const c = buf[k]!
    if (c === LF) {
      if (k === start || buf[k - 1] !== CR) return true
    } else if (c === CR) {
      if (k + 1 < end && buf[k + 1] !== LF) return true
    } else if (c === 0) {
      return true
    }
  }
  return false
}

/** Fields node:http keeps the first of when repeated (of those the fast path allows). */
const FIRST_WINS = new Set(['host', 'user-agent', 'referer'])

/**
 * Every header of a head that {@link parseRequestHead} accepted, by lowercase name, as
 * node:http's `req.headers` holds them: repeated fields joined with ", ", except `Host`,
 * `User-Agent` and `Referer`, whose first value is kept.
 */
export function readHeaders(buf: Buffer, start: number, end: number): Record<string, string> {
  const out: Record<string, string> = {}
  let i = buf.indexOf(LF, start) + 1 // past the request line
  while (i > 0 && i < end) {
    const lineEnd = buf.indexOf(CR, i)
    const colon = buf.indexOf(COLON, i)
    const name = buf.toString('latin1', i, colon).toLowerCase()
    let s = colon + 1
    let e = lineEnd
    while (s < e && (buf[s] === SP || buf[s] === HTAB)) s++
    while (e > s && (buf[e - 1] === SP || buf[e - 1] === HTAB)) e--
    const value = buf.toString('latin1', s, e)
    const prev = out[name]
    if (prev === undefined) out[name] = value
    else if (!FIRST_WINS.has(name)) out[name] = `${prev}, ${value}`
    i = lineEnd + 2
  }
  return out
}
