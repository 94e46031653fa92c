/**
 * A raw keep-alive HTTP/1.1 client for the fast path's origin pulls: `GET` and `HEAD`
 * without a request body, to plain `http:` origins, over a bounded pool of `net.Socket`s
 * per origin. Same interface and typed errors as `createHttpUpstream` (undici), so the
 * origin cache's fill code runs unchanged over either.
 *
 * Why by hand: it is the product's hot path. Benchmarks of a 64 KiB miss
 * (`benchmarks/edge/README.md`, "Where a 64 KiB miss goes") measured node:http in plus an
 * undici `Agent` out at ~5× the origin's own CPU per request before any cache work, the
 * bound that kept `miss_ratio_vs_origin_64k` far under its goal; undici's per-request cost
 * (dispatcher, handler and Readable body layers) is most of the "out" half. This client
 * does the little an origin pull needs: one request head written in one call, the
 * response head parsed once, the body copied once out of the socket's reused read buffer.
 *
 * Deliberately narrow, never lenient:
 * - framing by `Content-Length` or `Transfer-Encoding: chunked` (decoded, trailers
 *   dropped), or read to the close of the connection when neither is given;
 * - `1xx` interim responses are skipped; `101`, other transfer codings, both framings at
 *   once, a malformed status line or header line, a head over `maxHeaderBytes`: the
 *   request fails with `UpstreamError` (502) and the socket is closed;
 * - a socket is reused only after its response was read to the end with nothing after
 *   it, over HTTP/1.1 without `Connection: close`; a body its consumer abandons
 *   (`destroy()`, or leaving a `for await` early) closes its socket;
 * - a request on a reused socket that the origin closed before answering a byte is
 *   retried once on a new connection (only `GET`/`HEAD` are sent, both idempotent);
 * - the headers timeout runs from the request to the end of the response head, the body
 *   timeout between body reads (both as idle timeouts of the socket): `UpstreamTimeoutError`.
 *
 * Memory: each socket reads into one reused buffer (`onread`), so a read allocates
 * nothing; every body piece handed on is a copy that outlives the next read. A body of
 * known length up to `presizeBodyBytes` is allocated once at that size and its pieces
 * are consecutive views into it, which a store writer expecting that length keeps
 * without copying (`createTieredStore`'s memory-only writer): one allocation per miss
 * instead of one per read plus the stored copy.
 *
 * @example
 * const raw = createRawHttpUpstream({ connectTimeoutMs: 5000, headersTimeoutMs: 15000, bodyTimeoutMs: 30000 })
 * const res = await raw.request('http://127.0.0.1:8080/a.css', { method: 'GET', headers: { via: '1.1 shoal' } })
 * for await (const chunk of res.body) process(chunk)
 * await raw.close()
 */
import net from 'node:net'
import { AbortError, InvalidArgumentError, UpstreamError, UpstreamTimeoutError } from '@shoal/protocol'
import type { UpstreamRequest, UpstreamResponse } from './http-upstream.ts'

export interface RawHttpUpstreamInit {
  connectTimeoutMs: number
  headersTimeoutMs: number
  bodyTimeoutMs: number
  /** Sockets per origin (busy and idle); further requests wait for one. Default 64. */
  connections?: number
  /** An idle socket is closed after this. Default 4 s (under node:http's 5 s on the origin side). */
  keepAliveTimeoutMs?: number
  /** Largest response head read. Default 16 KiB. */
  maxHeaderBytes?: number
  /**
   * A body with a `Content-Length` up to this is allocated whole when its head arrives,
   * its pieces views into that one buffer; longer bodies get a buffer per read. Default 1 MiB.
   */
  presizeBodyBytes?: number
}

export interface RawHttpUpstream {
  /** `GET`/`HEAD` to an `http:` URL; rejects with `InvalidArgumentError` for anything else. */
  request(url: string | URL, init: UpstreamRequest): Promise<UpstreamResponse>
  /** Closes every socket; requests after it fail. */
  close(): Promise<void>
  /** Sockets open (busy and idle), over all origins. */
  readonly sockets: number
}

export const DEFAULT_RAW_CONNECTIONS = 64
export const DEFAULT_RAW_KEEP_ALIVE_TIMEOUT_MS = 4_000
export const DEFAULT_RAW_MAX_HEADER_BYTES = 16 * 1024
export const DEFAULT_RAW_PRESIZE_BODY_BYTES = 1024 * 1024
/** Each socket's reused read buffer (libuv's usual read size). */
const READ_BUFFER_BYTES = 64 * 1024
/** Body bytes queued for a consumer before the socket is paused. */
const HIGH_WATER_BYTES = 256 * 1024
const MAX_CHUNK_LINE = 1024
const MAX_TRAILER_BYTES = 16 * 1024

const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1')
const HTTP_1_ = Buffer.from('HTTP/1.', 'latin1')
/** RFC 9110 tchar. */
const TCHAR = new Uint8Array(256)
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1
for (let c = 0x30; c <= 0x39; c++) TCHAR[c] = 1
for (let c = 0x41; c <= 0x5a; c++) TCHAR[c] = 1
for (let c = 0x61; c <= 0x7a; c++) TCHAR[c] = 1
/** Field value and reason phrase bytes: HTAB, SP, VCHAR, obs-text. */
const TEXT = new Uint8Array(256)
TEXT[0x09] = 1
for (let c = 0x20; c <= 0xff; c++) if (c !== 0x7f) TEXT[c] = 1
const BAD_VALUE = /[\r\n\0]/
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
const HEX = /^[0-9A-Fa-f]{1,13}$/

// exchange states
const S_HEAD = 0
const S_LENGTH = 1
const S_CHUNK_SIZE = 2
const S_CHUNK_DATA = 3
const S_CHUNK_CRLF = 4
const S_TRAILERS = 5
const S_CLOSE = 6
const S_DONE = 7
const S_FAILED = 8

function positiveInt(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback
  if (!Number.isSafeInteger(v) || v < 1) throw new InvalidArgumentError(`${name} must be a positive integer`)
  return v
}

function nonNegativeInt(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback
  if (!Number.isSafeInteger(v) || v < 0)
    throw new InvalidArgumentError(`${name} must be a non-negative integer`)
  return v
}

class Pool {
  readonly host: string
  readonly port: number
  readonly idle: Conn[] = []
  /** Sockets open for this origin, busy or idle. */
  open = 0
  readonly waiting: Exchange[] = []
  constructor(host: string, port: number) {
    this.host = host
    this.port = port
  }
}

interface Shared {
  readonly connectTimeoutMs: number
  readonly headersTimeoutMs: number
  readonly bodyTimeoutMs: number
  readonly connections: number
  readonly keepAliveTimeoutMs: number
  readonly maxHeaderBytes: number
  readonly presizeBodyBytes: number
  readonly conns: Set<Conn>
  closed: boolean
}

/** One socket to an origin; serves one exchange at a time. */
class Conn {
  readonly shared: Shared
  readonly pool: Pool
  readonly socket: net.Socket
  exchange: Exchange | undefined
  /** Responses completed on this socket (a reused socket may have been closed by the origin meanwhile). */
  served = 0
  connected = false
  dead = false
  error: Error | undefined

  constructor(shared: Shared, pool: Pool) {
    this.shared = shared
    this.pool = pool
    // Reads land in one buffer reused for the socket's life: pieces are copied out before the next read.
    const socket = net.connect({
      host: pool.host,
      port: pool.port,
      noDelay: true,
      onread: { buffer: Buffer.allocUnsafeSlow(READ_BUFFER_BYTES), callback: this.onRead },
    })
    this.socket = socket
    socket.setTimeout(shared.connectTimeoutMs)
    socket.once('connect', () => {
      this.connected = true
      socket.setTimeout(this.exchange === undefined ? shared.keepAliveTimeoutMs : shared.headersTimeoutMs)
    })
    socket.on('timeout', this.onTimeout)
    socket.on('error', this.onError)
    socket.on('end', this.onEnd)
    socket.on('close', this.onClose)
    pool.open++
    shared.conns.add(this)
  }

  /** `buf[0, n)` was read into the socket's reused buffer: valid only until this returns. */
  readonly onRead = (n: number, buf: Buffer): boolean => {
    const ex = this.exchange
    if (ex === undefined) {
      // Bytes from an idle socket: nothing was asked, the stream cannot be trusted.
      this.kill()
      return false
    }
    ex.onData(buf.subarray(0, n))
    return true
  }

  readonly onTimeout = (): void => {
    const ex = this.exchange
    if (ex === undefined) {
      this.kill()
      return
    }
    const what = !this.connected ? 'connect' : ex.state === S_HEAD ? 'headers' : 'body'
    ex.fail(new UpstreamTimeoutError(`${ex.method} ${this.pool.host}:${this.pool.port} timed out (${what})`))
  }

  readonly onError = (err: Error): void => {
    this.error = err
  }

  readonly onEnd = (): void => {
    // The origin finished sending: a close-delimited body ends here, anything else fails.
    const ex = this.exchange
    if (ex !== undefined) ex.onEnd()
    this.kill()
  }

  readonly onClose = (): void => {
    this.dead = true
    this.pool.open--
    this.shared.conns.delete(this)
    const idle = this.pool.idle.indexOf(this)
    if (idle >= 0) this.pool.idle.splice(idle, 1)
    const ex = this.exchange
    this.exchange = undefined
    if (ex !== undefined) ex.onClosed(this, this.error)
    // A slot is free: start the next waiting exchange on a new socket.
    dispatchWaiting(this.shared, this.pool)
  }

  kill(): void {
    if (!this.socket.destroyed) this.socket.destroy()
  }

  /** Starts an exchange on this socket. */
  send(ex: Exchange): void {
    this.exchange = ex
    ex.conn = this
    if (this.connected) this.socket.setTimeout(this.shared.headersTimeoutMs)
    this.socket.write(ex.head)
  }

  /** The exchange's response was read to the end: reuse the socket or close it. */
  release(reusable: boolean): void {
    this.exchange = undefined
    this.served++
    if (!reusable || this.shared.closed || this.dead) {
      this.kill()
      return
    }
    const next = nextWaiting(this.pool)
    if (next !== undefined) {
      this.send(next)
      return
    }
    this.socket.setTimeout(this.shared.keepAliveTimeoutMs)
    this.pool.idle.push(this)
  }
}

/** The next waiting exchange that was not aborted meanwhile. */
function nextWaiting(pool: Pool): Exchange | undefined {
  for (;;) {
    const ex = pool.waiting.shift()
    if (ex === undefined || ex.state !== S_FAILED) return ex
  }
}

function dispatchWaiting(shared: Shared, pool: Pool): void {
  while (!shared.closed) {
    if (pool.idle.length === 0 && pool.open >= shared.connections) return
    const ex = nextWaiting(pool)
    if (ex === undefined) return
    const idle = pool.idle.pop()
    if (idle !== undefined) idle.send(ex)
    else new Conn(shared, pool).send(ex)
  }
}

type Headers = Record<string, string | string[]>

/** One request and its response; the response body is this object (an async iterable). */
class Exchange implements AsyncIterable<Buffer>, AsyncIterator<Buffer> {
  readonly shared: Shared
  readonly pool: Pool
  readonly method: string
  readonly head: Buffer
  conn: Conn | undefined
  state = S_HEAD
  retried = false
  /** Response bytes seen on the current socket. */
  gotBytes = false
  headBuf: Buffer | undefined
  remaining = 0
  keepAlive = true
  /** Bytes arrived after the end of the response: the socket is not reused. */
  extra = false
  line = ''
  trailerBytes = 0
  /** The whole body when presized (`presizeBodyBytes`); pieces are views into it. */
  body: Buffer | undefined
  filled = 0
  readonly queue: Buffer[] = []
  queued = 0
  paused = false
  error: Error | undefined
  pull: { resolve: (r: IteratorResult<Buffer>) => void; reject: (err: Error) => void } | undefined
  resolveHead: ((res: UpstreamResponse) => void) | undefined
  rejectHead: ((err: Error) => void) | undefined

  constructor(shared: Shared, pool: Pool, method: string, head: Buffer) {
    this.shared = shared
    this.pool = pool
    this.method = method
    this.head = head
  }

  start(): void {
    const { pool, shared } = this
    const idle = pool.idle.pop()
    if (idle !== undefined) idle.send(this)
    else if (pool.open < shared.connections) new Conn(shared, pool).send(this)
    else pool.waiting.push(this)
  }

  /** `chunk` is the socket's reused read buffer: whatever outlives this call is copied. */
  onData(chunk: Buffer): void {
    this.gotBytes = true
    let buf = chunk
    let pos = 0
    if (this.state === S_HEAD) {
      if (this.headBuf !== undefined) buf = Buffer.concat([this.headBuf, chunk])
      for (;;) {
        const crlf = buf.indexOf(CRLFCRLF, pos)
        if (crlf < 0) {
          if (buf.length - pos > this.shared.maxHeaderBytes) {
            this.fail(new UpstreamError('the origin sent a response head over the size limit'))
            return
          }
          this.headBuf = Buffer.from(buf.subarray(pos))
          return
        }
        if (crlf - pos > this.shared.maxHeaderBytes) {
          this.fail(new UpstreamError('the origin sent a response head over the size limit'))
          return
        }
        const parsed = this.parseHead(buf, pos, crlf)
        pos = crlf + 4
        if (parsed === undefined) return // failed
        if (parsed === 'interim') continue
        this.headBuf = undefined
        break
      }
    }
    this.consume(buf, pos)
  }

  /**
   * Parses the response head in `buf[start, end)` (`end` at its CRLFCRLF), strictly:
   * `HTTP/1.x SP 3DIGIT [SP reason] CRLF`, then `token ":" OWS value OWS CRLF` lines.
   * Returns 'interim' for a 1xx to skip.
   */
  parseHead(buf: Buffer, start: number, end: number): 'interim' | 'final' | undefined {
    // status line
    let i = start
    const minor = buf[i + 7]
    const d0 = buf[i + 9]! - 0x30
    const d1 = buf[i + 10]! - 0x30
    const d2 = buf[i + 11]! - 0x30
    let ok =
      end - start >= 12 &&
      buf.compare(HTTP_1_, 0, 7, i, i + 7) === 0 &&
      (minor === 0x30 || minor === 0x31) &&
      buf[i + 8] === 0x20 &&
      d0 >= 1 &&
      d0 <= 9 &&
      d1 >= 0 &&
      d1 <= 9 &&
      d2 >= 0 &&
      d2 <= 9
    i += 12
    let lineEnd = buf.indexOf(0x0d, i)
    if (lineEnd < 0 || lineEnd > end) lineEnd = end
    if (ok && i < lineEnd) {
      if (buf[i] !== 0x20) ok = false
      for (let k = i; ok && k < lineEnd; k++) if (TEXT[buf[k]!] !== 1) ok = false
    }
    if (!ok || (lineEnd < end && buf[lineEnd + 1] !== 0x0a)) {
      this.fail(new UpstreamError('the origin sent a malformed status line'))
      return undefined
    }
    const code = d0 * 100 + d1 * 10 + d2
    const headers: Headers = Object.create(null) as Headers
    i = lineEnd + 2
    while (i < end) {
      const nameStart = i
      while (TCHAR[buf[i]!] === 1) i++
      const nameEnd = i
      let bad = nameEnd === nameStart || buf[i] !== 0x3a
      i++
      while (buf[i] === 0x20 || buf[i] === 0x09) i++
      const valueStart = i
      let valueEnd = i
      while (!bad && i < end) {
        const c = buf[i]!
        if (c === 0x0d) break
        if (TEXT[c] !== 1) bad = true
        i++
        if (c !== 0x20 && c !== 0x09) valueEnd = i
      }
      if (bad || (i < end && buf[i + 1] !== 0x0a)) {
        this.fail(new UpstreamError('the origin sent a malformed response header'))
        return undefined
      }
      i += 2
      const name = buf.toString('latin1', nameStart, nameEnd).toLowerCase()
      const value = buf.toString('latin1', valueStart, valueEnd)
      const prev = headers[name]
      if (prev === undefined) headers[name] = value
      else if (typeof prev === 'string') headers[name] = [prev, value]
      else prev.push(value)
    }
    if (code < 200) {
      if (code === 101) {
        this.fail(new UpstreamError('the origin switched protocols'))
        return undefined
      }
      return 'interim'
    }
    const connection = joined(headers.connection)
    this.keepAlive = minor === 0x31 && !/(?:^|,)\s*close\s*(?:,|$)/i.test(connection ?? '')
    const te = joined(headers['transfer-encoding'])
    const cl = headers['content-length']
    let next = S_DONE
    if (this.method === 'HEAD' || code === 204 || code === 304) {
      next = S_DONE
    } else if (te !== undefined) {
      if (cl !== undefined || te.trim().toLowerCase() !== 'chunked') {
        this.fail(new UpstreamError('the origin sent a transfer coding other than chunked alone'))
        return undefined
      }
      next = S_CHUNK_SIZE
    } else if (cl !== undefined) {
      const values = typeof cl === 'string' ? [cl] : cl
      const first = values[0]!
      if (!/^\d{1,15}$/.test(first) || values.some((v) => v !== first)) {
        this.fail(new UpstreamError('the origin sent an invalid Content-Length'))
        return undefined
      }
      this.remaining = Number(first)
      next = this.remaining === 0 ? S_DONE : S_LENGTH
      if (this.remaining > 0 && this.remaining <= this.shared.presizeBodyBytes)
        this.body = Buffer.allocUnsafeSlow(this.remaining)
    } else {
      this.keepAlive = false
      next = S_CLOSE
    }
    this.state = next
    if (next !== S_DONE) this.conn?.socket.setTimeout(this.shared.bodyTimeoutMs)
    const resolve = this.resolveHead
    this.resolveHead = undefined
    this.rejectHead = undefined
    resolve?.({ status: code, headers, body: this as unknown as UpstreamResponse['body'] })
    return 'final'
  }

  /** Body bytes in `buf[pos..]`, per the framing. */
  consume(buf: Buffer, pos: number): void {
    const end = buf.length
    while (pos < end) {
      switch (this.state) {
        case S_LENGTH: {
          const n = Math.min(this.remaining, end - pos)
          this.push(buf, pos, pos + n)
          pos += n
          this.remaining -= n
          if (this.remaining === 0) this.state = S_DONE
          break
        }
        case S_CLOSE:
          this.push(buf, pos, end)
          return
        case S_CHUNK_SIZE:
        case S_TRAILERS: {
          const lf = buf.indexOf(0x0a, pos)
          const stop = lf < 0 ? end : lf + 1
          this.line += buf.toString('latin1', pos, stop)
          if (this.state === S_TRAILERS) this.trailerBytes += stop - pos
          pos = stop
          if (this.state === S_TRAILERS) {
            if (this.trailerBytes > MAX_TRAILER_BYTES) {
              this.fail(new UpstreamError('the origin sent trailers over the size limit'))
              return
            }
          }
          if (lf < 0) {
            if (this.line.length > MAX_CHUNK_LINE && this.state === S_CHUNK_SIZE) {
              this.fail(new UpstreamError('the origin sent a malformed chunk'))
              return
            }
            break
          }
          const line = this.line
          this.line = ''
          if (!line.endsWith('\r\n')) {
            this.fail(new UpstreamError('the origin sent a malformed chunk'))
            return
          }
          if (this.state === S_TRAILERS) {
            if (line === '\r\n') this.state = S_DONE
            break
          }
          const semi = line.indexOf(';')
          const size = (semi < 0 ? line.slice(0, -2) : line.slice(0, semi)).trim()
          if (!HEX.test(size) || BAD_VALUE.test(line.slice(0, -2))) {
            this.fail(new UpstreamError('the origin sent a malformed chunk'))
            return
          }
          this.remaining = Number.parseInt(size, 16)
          this.state = this.remaining === 0 ? S_TRAILERS : S_CHUNK_DATA
          break
        }
        case S_CHUNK_DATA: {
          const n = Math.min(this.remaining, end - pos)
          this.push(buf, pos, pos + n)
          pos += n
          this.remaining -= n
          if (this.remaining === 0) {
            this.state = S_CHUNK_CRLF
            this.remaining = 2
          }
          break
        }
        case S_CHUNK_CRLF: {
          const expect = this.remaining === 2 ? 0x0d : 0x0a
          if (buf[pos] !== expect) {
            this.fail(new UpstreamError('the origin sent a malformed chunk'))
            return
          }
          pos++
          if (--this.remaining === 0) this.state = S_CHUNK_SIZE
          break
        }
        case S_DONE:
          this.extra = true
          pos = end
          break
        default:
          return
      }
    }
    if (this.state === S_DONE) this.finish()
  }

  /** Hands on a copy of `buf[start, end)`: into the presized body, or a buffer of its own. */
  push(buf: Buffer, start: number, end: number): void {
    if (end <= start) return
    let chunk: Buffer
    const body = this.body
    if (body !== undefined) {
      const at = this.filled
      buf.copy(body, at, start, end)
      this.filled = at + end - start
      chunk = body.subarray(at, this.filled)
    } else {
      chunk = Buffer.allocUnsafe(end - start)
      buf.copy(chunk, 0, start, end)
    }
    const pull = this.pull
    if (pull !== undefined) {
      this.pull = undefined
      pull.resolve({ value: chunk, done: false })
      return
    }
    this.queue.push(chunk)
    this.queued += chunk.length
    if (this.queued >= HIGH_WATER_BYTES && !this.paused && this.conn !== undefined) {
      this.paused = true
      this.conn.socket.pause()
    }
  }

  /** The response was read to its end: the socket goes back (or is closed), the consumer learns. */
  finish(): void {
    const conn = this.conn
    this.conn = undefined
    if (conn !== undefined) {
      if (this.paused) conn.socket.resume()
      conn.release(this.keepAlive && !this.extra)
    }
    if (this.queue.length === 0 && this.pull !== undefined) {
      const pull = this.pull
      this.pull = undefined
      pull.resolve({ value: undefined, done: true })
    }
  }

  onEnd(): void {
    if (this.state === S_CLOSE) {
      this.state = S_DONE
      this.keepAlive = false
      this.finish()
    }
  }

  /** The socket closed with this exchange on it. */
  onClosed(conn: Conn, err: Error | undefined): void {
    if (this.state === S_DONE || this.state === S_FAILED) return
    this.conn = undefined
    if (this.state === S_HEAD && !this.gotBytes && conn.served > 0 && !this.retried && !this.shared.closed) {
      // A kept-alive socket the origin closed as the request went out: once more, on a new one.
      this.retried = true
      this.start()
      return
    }
    const code = (err as NodeJS.ErrnoException | undefined)?.code
    const where = this.state === S_HEAD ? 'before its response head' : 'mid-body'
    this.fail(
      new UpstreamError(
        `${this.method} ${this.pool.host}:${this.pool.port} failed: the connection closed ${where}${code === undefined ? '' : ` (${code})`}`,
        err === undefined ? undefined : { cause: err },
      ),
    )
  }

  fail(err: Error): void {
    if (this.state === S_DONE || this.state === S_FAILED) return
    this.state = S_FAILED
    this.error = err
    const conn = this.conn
    this.conn = undefined
    if (conn !== undefined) {
      conn.exchange = undefined
      conn.kill()
    }
    const reject = this.rejectHead
    this.resolveHead = undefined
    this.rejectHead = undefined
    reject?.(err)
    const pull = this.pull
    this.pull = undefined
    pull?.reject(err)
  }

  // ---- the body: an async iterable of copies of what the socket read

  [Symbol.asyncIterator](): AsyncIterator<Buffer> {
    return this
  }

  next(): Promise<IteratorResult<Buffer>> {
    const chunk = this.queue.shift()
    if (chunk !== undefined) {
      this.queued -= chunk.length
      if (this.paused && this.queued < HIGH_WATER_BYTES / 2 && this.conn !== undefined) {
        this.paused = false
        this.conn.socket.resume()
      }
      return Promise.resolve({ value: chunk, done: false })
    }
    if (this.state === S_DONE) return Promise.resolve({ value: undefined, done: true })
    if (this.state === S_FAILED) return Promise.reject(this.error)
    return new Promise((resolve, reject) => {
      this.pull = { resolve, reject }
    })
  }

  /** Leaving a `for await` early abandons the body: its socket is closed. */
  return(): Promise<IteratorResult<Buffer>> {
    this.destroy()
    return Promise.resolve({ value: undefined, done: true })
  }

  /** Abandons the body; the socket is closed unless the response was already read to its end. */
  destroy(): void {
    this.queue.length = 0
    this.queued = 0
    if (this.state !== S_DONE) this.fail(new AbortError('the response body was abandoned'))
  }
}

function joined(value: string | string[] | undefined): string | undefined {
  return value === undefined ? undefined : typeof value === 'string' ? value : value.join(', ')
}

/** The request head: request line, `Host`, the given fields, the empty line. */
function requestHead(method: string, url: URL, headers: UpstreamRequest['headers']): Buffer {
  let text = `${method} ${url.pathname}${url.search} HTTP/1.1\r\nhost: ${url.host}\r\n`
  if (headers !== undefined) {
    for (const name in headers) {
      const lower = name.toLowerCase()
      if (lower === 'host' || lower === 'content-length' || lower === 'transfer-encoding') continue
      if (!TOKEN.test(name))
        throw new InvalidArgumentError(`header name ${JSON.stringify(name)} is not a token`)
      const value = headers[name]!
      const values = typeof value === 'string' ? [value] : value
      for (const v of values) {
        if (BAD_VALUE.test(v)) throw new InvalidArgumentError(`header ${name} has CR, LF or NUL in its value`)
        text += `${name}: ${v}\r\n`
      }
    }
  }
  text += '\r\n'
  return Buffer.from(text, 'latin1')
}

/**
 * Creates the raw client. See the module comment for what it does and does not do.
 *
 * @example
 * const raw = createRawHttpUpstream({ connectTimeoutMs: 5000, headersTimeoutMs: 15000, bodyTimeoutMs: 30000 })
 */
export function createRawHttpUpstream(init: RawHttpUpstreamInit): RawHttpUpstream {
  if (typeof init !== 'object' || init === null) throw new InvalidArgumentError('init must be an object')
  const shared: Shared = {
    connectTimeoutMs: positiveInt('connectTimeoutMs', init.connectTimeoutMs, 0),
    headersTimeoutMs: positiveInt('headersTimeoutMs', init.headersTimeoutMs, 0),
    bodyTimeoutMs: positiveInt('bodyTimeoutMs', init.bodyTimeoutMs, 0),
    connections: positiveInt('connections', init.connections, DEFAULT_RAW_CONNECTIONS),
    keepAliveTimeoutMs: positiveInt(
      'keepAliveTimeoutMs',
      init.keepAliveTimeoutMs,
      DEFAULT_RAW_KEEP_ALIVE_TIMEOUT_MS,
    ),
    maxHeaderBytes: positiveInt('maxHeaderBytes', init.maxHeaderBytes, DEFAULT_RAW_MAX_HEADER_BYTES),
    presizeBodyBytes: nonNegativeInt(
      'presizeBodyBytes',
      init.presizeBodyBytes,
      DEFAULT_RAW_PRESIZE_BODY_BYTES,
    ),
    conns: new Set(),
    closed: false,
  }
  const pools = new Map<string, Pool>()

  return {
    get sockets() {
      return shared.conns.size
    },
    request(url, req) {
      if (shared.closed) return Promise.reject(new UpstreamError('the upstream client is closed'))
      let target: URL
      let head: Buffer
      try {
        target = typeof url === 'string' ? new URL(url) : url
        if (target.protocol !== 'http:')
          throw new InvalidArgumentError('the raw client speaks plain http: only')
        if (req.method !== 'GET' && req.method !== 'HEAD')
          throw new InvalidArgumentError('the raw client sends GET and HEAD only')
        if (req.body != null) throw new InvalidArgumentError('the raw client sends no request body')
        head = requestHead(req.method, target, req.headers)
      } catch (err) {
        return Promise.reject(err)
      }
      if (req.signal?.aborted === true) return Promise.reject(new AbortError(`${req.method} was aborted`))
      const host = target.hostname.startsWith('[') ? target.hostname.slice(1, -1) : target.hostname
      const port = target.port === '' ? 80 : Number(target.port)
      const key = `${host}:${port}`
      let pool = pools.get(key)
      if (pool === undefined) {
        pool = new Pool(host, port)
        pools.set(key, pool)
      }
      const ex = new Exchange(shared, pool, req.method, head)
      const signal = req.signal
      return new Promise<UpstreamResponse>((resolve, reject) => {
        ex.resolveHead = resolve
        ex.rejectHead = reject
        if (signal !== undefined) {
          const onAbort = (): void => ex.fail(new AbortError(`${req.method} was aborted`))
          signal.addEventListener('abort', onAbort, { once: true })
          const off = (): void => signal.removeEventListener('abort', onAbort)
          const settle = ex.resolveHead
          ex.resolveHead = (res) => {
            off()
            settle(res)
          }
          const fail = ex.rejectHead
          ex.rejectHead = (err) => {
            off()
            fail(err)
          }
        }
        ex.start()
      })
    },
    async close() {
      shared.closed = true
      const waits: Promise<void>[] = []
      for (const conn of shared.conns) {
        waits.push(new Promise((resolve) => conn.socket.once('close', () => resolve())))
        conn.kill()
      }
      for (const pool of pools.values()) {
        for (const ex of pool.waiting.splice(0)) ex.fail(new UpstreamError('the upstream client is closed'))
      }
      await Promise.all(waits)
    },
  }
}
