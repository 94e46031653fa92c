/**
 * Prepared responses for the hit fast path: built once per cache entry by the cache layer,
 * answered many times without re-serialising headers.
 */
import { STATUS_CODES } from 'node:http'
import { InvalidArgumentError } from '@shoal/protocol'

/**
 * A response the fast path writes as is. Build it with {@link prepareResponse}, keep it
 * with the cache entry, and return the same object from every lookup that hits it.
 */
export interface PreparedResponse {
  /**
   * Status line and header lines, each ending in CRLF, *without* the empty line that ends
   * the head: the fast path appends `Date` (see `date`), `Connection: close` when it
   * closes after this response, and the empty line. Must carry `Content-Length` equal to
   * `body.length` and no hop-by-hop or framing header other than that.
   */
  readonly head: Buffer
  /** The whole body; shared, never copied for large objects, never modified. `HEAD` skips it. */
  readonly body: Buffer
  /**
   * Append `Date: <now>` from a per-second cached string (default `true`). Set `false`
   * when `head` carries a stored `Date` (an origin-pull entry); such a head usually also
   * carries `Age`, which changes each second: rebuild it when the second changes.
   */
  readonly date?: boolean
  /** Called once the response's bytes (head + body) are handed to the kernel; not called when the connection fails first. */
  readonly onSent?: (bytes: number) => void
}

export interface PrepareResponseInit {
  /** 200–599 except 204 and 304 (the fast path answers complete responses only). Default 200. */
  status?: number
  headers?: Readonly<Record<string, string | number | readonly string[]>>
  body: Uint8Array | string
  date?: boolean
  onSent?: (bytes: number) => void
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
/** Visible ASCII, obs-text, SP and HTAB inside; no CR, LF or NUL anywhere. */
const FIELD_VALUE = /^[\x21-\x7e\x80-\xff]([\t\x20-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?$|^$/
/** Set by the fast path or meaningless on a stored response. */
const REFUSED = new Set([
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'proxy-connection',
  'upgrade',
  'te',
  'trailer',
])

/**
 * Builds a {@link PreparedResponse}: validates every header name and value (no CR/LF
 * injection from origin headers), refuses framing and hop-by-hop headers, and adds
 * `Content-Length`. Throws `InvalidArgumentError`.
 *
 * @example
 * const prepared = prepareResponse({
 *   headers: { 'content-type': 'image/png', etag: `"${cid}"`, 'cache-control': 'public, max-age=31536000, immutable' },
 *   body,
 * })
 */
export function prepareResponse(init: PrepareResponseInit): PreparedResponse {
  if (typeof init !== 'object' || init === null) throw new InvalidArgumentError('init must be an object')
  const status = init.status ?? 200
  if (!Number.isInteger(status) || status < 200 || status > 599 || status === 204 || status === 304) {
    throw new InvalidArgumentError(`status must be an integer 200..599 other than 204 and 304, got ${status}`)
  }
  const body =
    typeof init.body === 'string'
      ? Buffer.from(init.body)
      : Buffer.from(init.body.buffer, init.body.byteOffset, init.body.byteLength)
  const date = init.date ?? true
  let text = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n`
  for (const [name, raw] of Object.entries(init.headers ?? {})) {
    if (!TOKEN.test(name))
      throw new InvalidArgumentError(`header name ${JSON.stringify(name)} is not a token`)
    const lower = name.toLowerCase()
    if (REFUSED.has(lower))
      throw new InvalidArgumentError(`header ${name} is set by the fast path or not allowed`)
    if (lower === 'date' && date) throw new InvalidArgumentError('header date given while date is true')
    const values = typeof raw === 'object' ? raw : [raw]
    for (const v of values) {
      const value = String(v)
      if (!FIELD_VALUE.test(value))
        throw new InvalidArgumentError(`header ${name} has a value with CR, LF, NUL or outer whitespace`)
      text += `${name}: ${value}\r\n`
    }
  }
  text += `Content-Length: ${body.length}\r\n`
  const prepared: { -readonly [K in keyof PreparedResponse]: PreparedResponse[K] } = {
    head: Buffer.from(text, 'latin1'),
    body,
    date,
  }
  if (init.onSent !== undefined) prepared.onSent = init.onSent
  return prepared
}

/**
 * The tails the fast path appends to a head: `Date` from a string cached per second,
 * optional `Connection: close`, and the empty line. Four buffers rebuilt once a second.
 */
export class HeadTails {
  second = -1
  dated: Buffer = Buffer.alloc(0)
  datedClose: Buffer = Buffer.alloc(0)
  readonly plain: Buffer = Buffer.from('\r\n', 'latin1')
  readonly plainClose: Buffer = Buffer.from('Connection: close\r\n\r\n', 'latin1')

  /** The tail for a response sent at `nowMs`. */
  get(nowMs: number, date: boolean, close: boolean): Buffer {
    if (!date) return close ? this.plainClose : this.plain
    const second = Math.floor(nowMs / 1000)
    if (second !== this.second) {
      const text = `Date: ${new Date(second * 1000).toUTCString()}\r\n`
      this.dated = Buffer.from(`${text}\r\n`, 'latin1')
      this.datedClose = Buffer.from(`${text}Connection: close\r\n\r\n`, 'latin1')
      this.second = second
    }
    return close ? this.datedClose : this.dated
  }
}
