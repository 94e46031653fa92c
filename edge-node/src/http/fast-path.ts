/**
 * A hand-written, deliberately narrow HTTP/1.1 server for memory-tier cache hits, in front
 * of an ordinary node:http server that handles everything else.
 *
 * Every accepted socket starts here. A request is answered here only when its head is
 * strictly well-formed, is a `GET`/`HEAD` in origin-form over HTTP/1.1, carries only
 * allowlisted headers (see `fast-path-parser.ts`) and `lookup` returns a prepared
 * response. At the first request that is anything else, the socket is handed to
 * node:http for the rest of its life with every unconsumed byte replayed in order:
 * node:http then sees exactly the byte stream it would have seen, starting at a request
 * boundary both agree on (a fast-path request has no body, so its head ends it).
 *
 * Works on `net` and `tls` sockets alike (it only uses the stream interface; TLS sockets
 * come from `tls.Server`'s `secureConnection` event).
 *
 * @example
 * const fallback = http.createServer(handler) // never listens itself
 * const fastPath = createFastPath({}, { fallback, lookup: (req) => cache.prepared(req) })
 * const server = net.createServer({ noDelay: true, allowHalfOpen: true }, fastPath.accept)
 * server.listen(7480, '127.0.0.1')
 * // shutdown
 * server.close()
 * await fastPath.close({ signal: AbortSignal.timeout(10_000) }).catch(() => fastPath.closeAllConnections())
 */
import type { Server as HttpServer } from 'node:http'
import type { Socket } from 'node:net'
import { AbortError, InvalidArgumentError } from '@shoal/protocol'
import {
  DEFAULT_HEADERS_TIMEOUT_MS,
  DEFAULT_KEEP_ALIVE_TIMEOUT_MS,
  DEFAULT_MAX_HEADER_BYTES,
  DEFAULT_SEND_TIMEOUT_MS,
} from '../config.ts'
import {
  createHeadInfo,
  HEAD_MALFORMED,
  HEAD_OK,
  HEAD_UNSUPPORTED,
  type HeadInfo,
  hasBadLineBreak,
  parseRequestHead,
  readHeader,
  readHeaders,
} from './fast-path-parser.ts'
import { HeadTails, type PreparedResponse } from './fast-path-response.ts'
import { FastPathResponse, type StreamOwner } from './fast-path-stream.ts'

export { FAST_PATH_ALLOWED_HEADERS } from './fast-path-parser.ts'
export { type PreparedResponse, type PrepareResponseInit, prepareResponse } from './fast-path-response.ts'
export { FastPathResponse } from './fast-path-stream.ts'

/** Default: no limit on requests per connection. */
export const DEFAULT_FAST_PATH_MAX_REQUESTS_PER_SOCKET = 0
/**
 * Responses up to this size (head + body) are copied into one buffer and written once;
 * larger ones go out as head + body in one writev, the body never copied. 4 KiB is where
 * `Buffer.allocUnsafe` stops carving from the shared pool: above it every joined response
 * would allocate its own buffer, which measured slower than writev (8 KiB and 64 KiB).
 */
export const DEFAULT_FAST_PATH_JOIN_MAX_BYTES = 4 * 1024

export interface FastPathInit {
  /** Largest request head (request line, headers, final CRLF) the fast path reads; larger goes to node:http. Default 16 KiB. */
  maxHeaderBytes?: number
  /** A request head (or a new connection's first one) must arrive within this; else 408 and close. Default 10 s. */
  headersTimeoutMs?: number
  /** An idle keep-alive connection is closed after this. Default 5 s, like node:http. */
  keepAliveTimeoutMs?: number
  /**
   * A client that takes none of a response's bytes for this long (its socket's buffers
   * full, no write completing) is dropped, so a reader that stopped cannot hold a
   * connection and its response forever. Default 60 s (nginx's `send_timeout`).
   */
  sendTimeoutMs?: number
  /** Close a connection (`Connection: close`) after this many fast-path responses; 0 for no limit. */
  maxRequestsPerSocket?: number
  /** Responses up to this many bytes are joined into one buffer; larger ones are written as head + body. Default 4 KiB. */
  joinMaxBytes?: number
}

/**
 * What the lookup sees of a request. Valid only during the `lookup` call: do not keep it.
 */
export interface FastPathRequest {
  readonly method: 'GET' | 'HEAD'
  /** The raw request-target in origin-form (`/c/…?x`): not decoded, not normalised. */
  readonly path: string
  /** The raw `Host` value (exactly one is required; letters, digits, `-._~:[]`). */
  readonly host: string
  /**
   * The value of an allowlisted header (`accept-encoding`, `origin`, …; any case), repeated
   * fields joined with ", "; `undefined` when absent. Use it to honour a cached `Vary`.
   */
  header(name: string): string | undefined
  /**
   * Every header field by lowercase name, as node:http's `req.headers` has them (repeated
   * fields joined with ", ", a repeated `Host`, `User-Agent` or `Referer` keeps its first).
   */
  headers(): Record<string, string>
  /** The client's address (for `X-Forwarded-For` when the operator forwards it). */
  readonly remoteAddress: string | undefined
}

/**
 * Answers one request by streaming (an origin pull on the fast path): called once, with a
 * response shaped like node:http's; it must end or destroy it. The connection reads no
 * further request until then. It must not throw.
 */
export type FastPathResponder = (res: FastPathResponse) => void

/**
 * Returns the prepared response when the request is a plain memory-tier hit whose stored
 * response is right for *this* request (including its `Vary` headers), else `undefined`:
 * the request then goes to node:http. Synchronous and cheap: it runs for every request.
 */
export type FastPathLookup = (req: FastPathRequest) => PreparedResponse | FastPathResponder | undefined

export interface FastPathLogger {
  debug(message: string, fields?: Record<string, unknown>): void
  warn(message: string, fields?: Record<string, unknown>): void
}

export interface FastPathComponents {
  /**
   * The node:http server for everything else. It never listens itself; its `'request'`
   * handler, `maxHeaderSize`, `headersTimeout`, `requestTimeout` and `keepAliveTimeout`
   * apply to handed-off connections. `createFastPath` emits `'listening'` on it once,
   * which is what starts node:http's connection tracking (the headers/request timeout
   * checks and `closeIdleConnections`) for a server that does not listen.
   */
  fallback: HttpServer
  lookup: FastPathLookup
  logger?: FastPathLogger
}

/** Plain counters, read by the metrics exporter; never reset. */
export interface FastPathCounters {
  /** Sockets accepted. */
  connections: number
  /** Prepared responses (hits) sent by the fast path. */
  requests: number
  /** Streamed responses (`FastPathResponder`: origin pulls) begun by the fast path. */
  streamed: number
  /** Bytes (heads and bodies) written by the fast path. */
  bytes: number
  /** Connections handed to node:http (the sum of the four below). */
  handoffs: number
  /** …because `lookup` returned `undefined` (or threw). */
  handoffsMiss: number
  /** …because the request was well-formed but outside the fast path (method, version, header). */
  handoffsUnsupported: number
  /** …because the head was not strictly well-formed. */
  handoffsMalformed: number
  /** …because the head was larger than `maxHeaderBytes`. */
  handoffsTooLarge: number
  /** Connections closed because a head did not arrive within `headersTimeoutMs`. */
  headersTimeouts: number
  /** Idle keep-alive connections closed after `keepAliveTimeoutMs`. */
  idleCloses: number
  /** Connections dropped because their client took no bytes for `sendTimeoutMs`. */
  sendTimeouts: number
  /** Times `lookup` threw (the request then went to node:http). */
  lookupErrors: number
}

export interface FastPath {
  /** Takes over an accepted socket: a `net.Server` `'connection'` listener (or `tls.Server` `'secureConnection'`). */
  readonly accept: (socket: Socket) => void
  readonly counters: Readonly<FastPathCounters>
  /** Connections currently served by the fast path. */
  readonly activeConnections: number
  /** Handed-off connections still open. */
  readonly handedOffConnections: number
  /**
   * Stops taking requests: refuses new sockets, closes idle keep-alive connections now and
   * busy ones once their in-flight response is written (`Connection: close` on it), and
   * keeps closing node:http's idle handed-off connections. Resolves when every connection
   * is closed; rejects with `AbortError` when `signal` aborts first (then call
   * `closeAllConnections`). Does not close the listening server or `fallback`.
   */
  close(options?: { signal?: AbortSignal }): Promise<void>
  /** Destroys every connection now, fast-path and handed-off. */
  closeAllConnections(): void
}

const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1')
const EMPTY = Buffer.alloc(0)
const REQUEST_TIMEOUT_RESPONSE = Buffer.from(
  'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n',
  'latin1',
)
/** What node:http answers to a head cut short by the end of the stream. */
const BAD_REQUEST_RESPONSE = Buffer.from('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n', 'latin1')
const CLOSING_SWEEP_MS = 25
/** Joined small responses kept per second (each at most `joinMaxBytes`: 4 MiB by default). */
const JOINED_MAX = 1024

const STATE_FAST = 0
const STATE_HANDED_OFF = 1
/** Last response written or closing: ignore input, wait for 'close'. */
const STATE_ENDING = 2
const STATE_CLOSED = 3

const REASON_MISS = 0
const REASON_UNSUPPORTED = HEAD_UNSUPPORTED
const REASON_MALFORMED = HEAD_MALFORMED
const REASON_TOO_LARGE = 3

/** Internal slot of node's StreamBase handles, checked by node:http before it consumes one. */
interface MaybeStreamHandle {
  _handle?: { _consumed?: boolean } | null
}

function checkInt(name: string, value: number | undefined, fallback: number, min: number): number {
  const v = value ?? fallback
  if (!Number.isSafeInteger(v) || v < min)
    throw new InvalidArgumentError(`${name} must be an integer ≥ ${min}, got ${v}`)
  return v
}

class FastRequest implements FastPathRequest {
  readonly method: 'GET' | 'HEAD'
  readonly path: string
  readonly host: string
  readonly #socket: Socket
  #buf: Buffer | undefined
  readonly #start: number
  readonly #end: number

  constructor(
    method: 'GET' | 'HEAD',
    path: string,
    host: string,
    buf: Buffer,
    start: number,
    end: number,
    socket: Socket,
  ) {
    this.method = method
    this.path = path
    this.host = host
    this.#buf = buf
    this.#start = start
    this.#end = end
    this.#socket = socket
  }

  get remoteAddress(): string | undefined {
    return this.#socket.remoteAddress
  }

  headers(): Record<string, string> {
    const buf = this.#buf
    if (buf === undefined) return {}
    return readHeaders(buf, this.#start, this.#end)
  }

  header(name: string): string | undefined {
    const buf = this.#buf
    if (buf === undefined) return undefined
    return readHeader(buf, this.#start, this.#end, name)
  }

  /** Called after lookup: the buffer is reused afterwards. */
  detach(): void {
    this.#buf = undefined
  }
}

interface Context {
  readonly maxHeaderBytes: number
  readonly headersTimeoutMs: number
  readonly keepAliveTimeoutMs: number
  readonly sendTimeoutMs: number
  readonly maxRequestsPerSocket: number
  readonly joinMaxBytes: number
  readonly fallback: HttpServer
  readonly lookup: FastPathLookup
  readonly logger: FastPathLogger | undefined
  readonly counters: FastPathCounters
  readonly tails: HeadTails
  /**
   * Small responses joined with their tail (see `send`), for the current second only and
   * at most JOINED_MAX of them: a bounded, short-lived copy of the hottest objects.
   */
  readonly joined: Map<PreparedResponse, { tail: Buffer; out: Buffer }>
  joinedSecond: number
  readonly active: Set<Connection>
  readonly handedOff: Set<Socket>
  closing: boolean
  onConnectionClosed(): void
}

class Connection implements StreamOwner {
  readonly ctx: Context
  readonly socket: Socket
  state = STATE_FAST
  /** Unparsed input is `buf[pos, end)`; `buf` is either a socket chunk or our own accumulator. */
  buf: Buffer | undefined = undefined
  pos = 0
  end = 0
  owned = false
  /** Where the search for the end of the head resumes (no rescans when a head trickles in). */
  scanFrom = 0
  /** When the head being read began (the connection's start for the first one); 0 between requests. */
  headStart: number
  lastActive: number
  /** 'drain' events seen, and the unsent bytes at the last sweep: the send timeout's signs of progress. */
  drains = 0
  sweepDrains = 0
  sweepUnsent = 0
  /** When a response's bytes last moved (or began to wait). */
  sendProgressAt = 0
  waitingDrain = false
  readEnded = false
  requests = 0
  readonly info: HeadInfo = createHeadInfo()
  /** The streamed response in flight: no request is read until it ends. */
  response: FastPathResponse | undefined = undefined
  /** True while a responder runs synchronously inside `process`. */
  inResponder = false
  /** The response in flight is the connection's last. */
  responseLast = false

  constructor(ctx: Context, socket: Socket, now: number) {
    this.ctx = ctx
    this.socket = socket
    this.headStart = now
    this.lastActive = now
  }

  readonly onData = (chunk: Buffer): void => {
    if (this.state !== STATE_FAST) return
    this.append(chunk)
    if (this.response !== undefined) {
      // Pipelined requests wait for the streamed response; a bounded amount of them.
      if (this.end - this.pos > this.ctx.maxHeaderBytes) this.socket.pause()
      return
    }
    if (this.waitingDrain) return // already paused; parsing resumes on 'drain'
    this.process()
  }

  readonly onDrain = (): void => {
    this.drains++
    if (this.response !== undefined) {
      this.response.emit('drain')
      return
    }
    if (!this.waitingDrain || this.state !== STATE_FAST) return
    this.waitingDrain = false
    this.lastActive = Date.now()
    this.process()
    if (this.state !== STATE_FAST || this.waitingDrain) return
    if (this.readEnded) this.endAfterInput()
    else this.socket.resume()
  }

  readonly onEnd = (): void => {
    this.readEnded = true
    if (this.state !== STATE_FAST || this.waitingDrain || this.response !== undefined) return
    this.endAfterInput()
  }

  readonly onError = (err: Error): void => {
    this.ctx.logger?.debug('fast path socket error', { code: (err as NodeJS.ErrnoException).code })
  }

  readonly onClose = (): void => {
    this.response?.socketClosed()
    if (this.state === STATE_HANDED_OFF) this.ctx.handedOff.delete(this.socket)
    this.state = STATE_CLOSED
    this.ctx.active.delete(this)
    this.buf = undefined
    this.ctx.onConnectionClosed()
  }

  /**
   * The peer finished sending. Complete requests were answered already; a partial head
   * gets the 400 node:http would send (blank lines between requests are ignored, as there).
   */
  endAfterInput(): void {
    const buf = this.buf
    if (buf !== undefined) {
      for (let k = this.pos; k < this.end; k++) {
        const c = buf[k]
        if (c !== 0x0d && c !== 0x0a) {
          this.socket.write(BAD_REQUEST_RESPONSE)
          break
        }
      }
    }
    this.buf = undefined
    this.finish(false)
  }

  /** Stops reading requests; closes once what was written is flushed. */
  finish(destroyIfIdle: boolean): void {
    if (this.state !== STATE_FAST) return
    this.state = STATE_ENDING
    this.ctx.active.delete(this)
    this.buf = undefined
    if (destroyIfIdle && this.socket.writableLength === 0) this.socket.destroy()
    else this.socket.destroySoon()
  }

  countBytes(n: number): void {
    this.ctx.counters.bytes += n
  }

  /** The streamed response ended (`ok`) or was aborted: read the next request, or close. */
  responseDone(res: FastPathResponse, ok: boolean): void {
    if (this.response !== res) return
    this.response = undefined
    if (this.state !== STATE_FAST) return
    if (!ok) {
      this.state = STATE_ENDING
      this.ctx.active.delete(this)
      this.buf = undefined
      this.socket.destroy()
      return
    }
    this.lastActive = Date.now()
    if (this.responseLast || this.ctx.closing) {
      this.finish(false)
      return
    }
    if (this.inResponder) return // `process` goes on by itself
    const socket = this.socket
    if (socket.writableLength >= socket.writableHighWaterMark) {
      this.waitingDrain = true
      socket.pause()
      return
    }
    socket.resume()
    this.process()
    if (this.state === STATE_FAST && !this.waitingDrain && this.response === undefined && this.readEnded) {
      this.endAfterInput()
    }
  }

  append(chunk: Buffer): void {
    const n = chunk.length
    if (this.buf === undefined || this.pos >= this.end) {
      this.buf = chunk
      this.owned = false
      this.pos = 0
      this.end = n
      this.scanFrom = 0
      return
    }
    const len = this.end - this.pos
    if (this.owned && this.end + n <= this.buf.length) {
      this.buf.set(chunk, this.end)
      this.end += n
      return
    }
    const cap = Math.max(1024, 2 * (len + n))
    const acc = Buffer.allocUnsafe(cap)
    acc.set(this.buf.subarray(this.pos, this.end), 0)
    acc.set(chunk, len)
    this.scanFrom -= this.pos
    this.buf = acc
    this.owned = true
    this.pos = 0
    this.end = len + n
  }

  /** Keeps a partial head: copied out of the socket's chunk, or moved to the front of ours. */
  keepPartial(): void {
    const buf = this.buf!
    const len = this.end - this.pos
    if (!this.owned) {
      const acc = Buffer.allocUnsafe(Math.max(1024, 2 * len))
      acc.set(buf.subarray(this.pos, this.end), 0)
      this.buf = acc
      this.owned = true
    } else if (this.pos > 0) {
      buf.copyWithin(0, this.pos, this.end)
    } else {
      return
    }
    this.scanFrom -= this.pos
    this.pos = 0
    this.end = len
  }

  process(): void {
    const ctx = this.ctx
    const socket = this.socket
    let corked = false
    let handOff = -1
    let last = false
    while (!this.waitingDrain) {
      const buf = this.buf
      if (buf === undefined) break
      const pos = this.pos
      const end = this.end
      if (pos >= end) {
        this.buf = undefined
        break
      }
      const crlf = buf.indexOf(CRLFCRLF, this.scanFrom)
      if (crlf === -1 || crlf + 4 > end) {
        // Incomplete head: wait for more, within limits.
        if (end - pos > ctx.maxHeaderBytes) handOff = REASON_TOO_LARGE
        else if (hasBadLineBreak(buf, pos, Math.max(pos, this.scanFrom - 1), end)) handOff = REASON_MALFORMED
        else {
          this.scanFrom = Math.max(pos, end - 3)
          if (this.headStart === 0) this.headStart = Date.now()
          this.keepPartial()
        }
        break
      }
      const next = crlf + 4
      if (next - pos > ctx.maxHeaderBytes) {
        handOff = REASON_TOO_LARGE
        break
      }
      const info = this.info
      const status = parseRequestHead(buf, pos, crlf + 2, info)
      if (status !== HEAD_OK) {
        handOff = status
        break
      }
      const req = new FastRequest(
        info.isHead ? 'HEAD' : 'GET',
        buf.toString('latin1', info.pathStart, info.pathEnd),
        buf.toString('latin1', info.hostStart, info.hostEnd),
        buf,
        pos,
        crlf + 2,
        socket,
      )
      let res: PreparedResponse | FastPathResponder | undefined
      try {
        res = ctx.lookup(req)
      } catch (err) {
        ctx.counters.lookupErrors++
        ctx.logger?.warn('fast path lookup threw; request goes to node:http', {
          err: (err as Error)?.message,
        })
        res = undefined
      }
      req.detach()
      if (res === undefined) {
        handOff = REASON_MISS
        break
      }
      this.pos = next
      this.scanFrom = next
      this.headStart = 0
      const now = Date.now()
      this.lastActive = now
      this.requests++
      last = ctx.closing || (ctx.maxRequestsPerSocket > 0 && this.requests >= ctx.maxRequestsPerSocket)
      if (typeof res === 'function') {
        // A streamed response: reading stops until it ends (or the connection goes).
        ctx.counters.streamed++
        const response = new FastPathResponse(this, info.isHead, last || ctx.closing)
        this.response = response
        this.responseLast = last
        this.inResponder = true
        try {
          res(response)
        } catch (err) {
          ctx.logger?.warn('fast path responder threw', { err: (err as Error)?.message })
          response.destroy()
        }
        this.inResponder = false
        if (this.response !== undefined || this.state !== STATE_FAST) {
          last = false // `responseDone` finishes the connection
          break
        }
        if (last || ctx.closing) break
        continue
      }
      if (!corked && !last && next < end) {
        socket.cork()
        corked = true
      }
      this.send(res, info.isHead, last, now)
      if (last) break
      if (socket.writableLength >= socket.writableHighWaterMark) {
        // Backpressure: stop parsing (and reading) until the socket drains.
        this.waitingDrain = true
        socket.pause()
      }
    }
    if (corked) socket.uncork()
    if (last) this.finish(false)
    else if (this.response !== undefined) return
    else if (handOff !== -1) this.handOff(handOff)
  }

  send(res: PreparedResponse, isHead: boolean, close: boolean, now: number): void {
    const ctx = this.ctx
    const socket = this.socket
    const head = res.head
    const tail = ctx.tails.get(now, res.date !== false, close)
    const body = isHead ? EMPTY : res.body
    const headLen = head.length + tail.length
    const total = headLen + body.length
    const onSent = res.onSent
    const cb = onSent === undefined ? undefined : (err?: Error | null) => err == null && onSent(total)
    if (total <= ctx.joinMaxBytes) {
      // A small response is joined once per (response, tail) and then written as is: the
      // same response of the same second costs no allocation and no copy.
      const joined = ctx.joined
      const second = Math.floor(now / 1000)
      if (second !== ctx.joinedSecond) {
        joined.clear()
        ctx.joinedSecond = second
      }
      let out: Buffer | undefined
      const cached = isHead ? undefined : joined.get(res)
      if (cached !== undefined && cached.tail === tail) out = cached.out
      else {
        const keep = !isHead && !close && joined.size < JOINED_MAX
        out = keep ? Buffer.allocUnsafeSlow(total) : Buffer.allocUnsafe(total)
        out.set(head, 0)
        out.set(tail, head.length)
        if (body.length > 0) out.set(body, headLen)
        if (keep) joined.set(res, { tail, out })
      }
      socket.write(out, cb)
    } else {
      const h = Buffer.allocUnsafe(headLen)
      h.set(head, 0)
      h.set(tail, head.length)
      if (body.length === 0) socket.write(h, cb)
      else {
        socket.cork()
        socket.write(h)
        socket.write(body, cb)
        socket.uncork()
      }
    }
    ctx.counters.requests++
    ctx.counters.bytes += total
  }

  handOff(reason: number): void {
    const ctx = this.ctx
    const socket = this.socket
    const counters = ctx.counters
    counters.handoffs++
    if (reason === REASON_MISS) counters.handoffsMiss++
    else if (reason === REASON_UNSUPPORTED) counters.handoffsUnsupported++
    else if (reason === REASON_MALFORMED) counters.handoffsMalformed++
    else counters.handoffsTooLarge++
    const rest = this.buf === undefined ? EMPTY : this.buf.subarray(this.pos, this.end)
    this.buf = undefined
    ctx.active.delete(this)
    if (this.readEnded || socket.destroyed) {
      // The stream already ended: it cannot be replayed to node:http. Drop it.
      this.state = STATE_ENDING
      socket.destroySoon()
      return
    }
    this.state = STATE_HANDED_OFF
    ctx.handedOff.add(socket)
    socket.removeListener('data', this.onData)
    socket.removeListener('drain', this.onDrain)
    socket.removeListener('end', this.onEnd)
    socket.removeListener('error', this.onError)
    // Paused, so that the replayed bytes stay buffered until node:http listens.
    socket.pause()
    if (rest.length > 0) socket.unshift(rest)
    // node:http would otherwise consume the handle natively and read new bytes *around*
    // the ones replayed through the stream; marked consumed, it reads the stream only,
    // which yields the replayed bytes first and then the socket's, in order.
    const handle = (socket as unknown as MaybeStreamHandle)._handle
    if (handle != null) handle._consumed = true
    ctx.fallback.emit('connection', socket)
    socket.resume()
  }

  /** Timers, from the sweep: headers timeout, keep-alive idle timeout, closing. */
  tick(now: number): void {
    if (this.state !== STATE_FAST) return
    const socket = this.socket
    const ctx = this.ctx
    if (this.waitingDrain || this.response !== undefined || socket.writableLength > 0) {
      this.lastActive = now
      // a response in flight: dropped when its client takes nothing for sendTimeoutMs
      const unsent = socket.writableLength
      if (unsent === 0 || this.drains !== this.sweepDrains || unsent !== this.sweepUnsent) {
        this.sweepDrains = this.drains
        this.sweepUnsent = unsent
        this.sendProgressAt = now
      } else if (now - this.sendProgressAt >= ctx.sendTimeoutMs) {
        ctx.counters.sendTimeouts++
        socket.destroy() // 'close' ends a streamed response (socketClosed)
      }
      return
    }
    const hasInput = this.buf !== undefined && this.end > this.pos
    if (this.headStart !== 0 && hasInput) {
      if (now - this.headStart >= ctx.headersTimeoutMs) {
        ctx.counters.headersTimeouts++
        socket.write(REQUEST_TIMEOUT_RESPONSE)
        this.finish(false)
      }
      return
    }
    if (ctx.closing) {
      this.finish(true)
    } else if (this.headStart !== 0) {
      // A connection that has sent nothing yet.
      if (now - this.headStart >= ctx.headersTimeoutMs) {
        ctx.counters.headersTimeouts++
        this.finish(true)
      }
    } else if (now - this.lastActive >= ctx.keepAliveTimeoutMs) {
      ctx.counters.idleCloses++
      this.finish(true)
    }
  }
}

/**
 * Creates the fast path. See the module comment for what it answers and how it hands off.
 *
 * @example
 * const fastPath = createFastPath({ keepAliveTimeoutMs: 5_000 }, { fallback, lookup })
 * net.createServer({ noDelay: true, allowHalfOpen: true }, fastPath.accept).listen(0, '127.0.0.1')
 */
export function createFastPath(init: FastPathInit, components: FastPathComponents): FastPath {
  if (typeof init !== 'object' || init === null) throw new InvalidArgumentError('init must be an object')
  if (typeof components !== 'object' || components === null)
    throw new InvalidArgumentError('components must be an object')
  const { fallback, lookup, logger } = components
  if (
    typeof fallback !== 'object' ||
    fallback === null ||
    typeof fallback.emit !== 'function' ||
    typeof fallback.closeIdleConnections !== 'function'
  ) {
    throw new InvalidArgumentError('fallback must be a node:http server')
  }
  if (typeof lookup !== 'function') throw new InvalidArgumentError('lookup must be a function')
  const maxHeaderBytes = checkInt('maxHeaderBytes', init.maxHeaderBytes, DEFAULT_MAX_HEADER_BYTES, 64)
  const headersTimeoutMs = checkInt('headersTimeoutMs', init.headersTimeoutMs, DEFAULT_HEADERS_TIMEOUT_MS, 1)
  const keepAliveTimeoutMs = checkInt(
    'keepAliveTimeoutMs',
    init.keepAliveTimeoutMs,
    DEFAULT_KEEP_ALIVE_TIMEOUT_MS,
    1,
  )
  const sendTimeoutMs = checkInt('sendTimeoutMs', init.sendTimeoutMs, DEFAULT_SEND_TIMEOUT_MS, 1)
  const maxRequestsPerSocket = checkInt(
    'maxRequestsPerSocket',
    init.maxRequestsPerSocket,
    DEFAULT_FAST_PATH_MAX_REQUESTS_PER_SOCKET,
    0,
  )
  const joinMaxBytes = checkInt('joinMaxBytes', init.joinMaxBytes, DEFAULT_FAST_PATH_JOIN_MAX_BYTES, 0)

  const sweepMs = Math.min(
    1000,
    Math.max(10, Math.floor(Math.min(headersTimeoutMs, keepAliveTimeoutMs, sendTimeoutMs) / 4)),
  )
  let sweepTimer: NodeJS.Timeout | undefined
  let closingTimer: NodeJS.Timeout | undefined
  let closed: Promise<void> | undefined
  let resolveClosed: (() => void) | undefined

  const counters: FastPathCounters = {
    connections: 0,
    requests: 0,
    streamed: 0,
    bytes: 0,
    handoffs: 0,
    handoffsMiss: 0,
    handoffsUnsupported: 0,
    handoffsMalformed: 0,
    handoffsTooLarge: 0,
    headersTimeouts: 0,
    idleCloses: 0,
    sendTimeouts: 0,
    lookupErrors: 0,
  }

  const ctx: Context = {
    maxHeaderBytes,
    headersTimeoutMs,
    keepAliveTimeoutMs,
    sendTimeoutMs,
    maxRequestsPerSocket,
    joinMaxBytes,
    fallback,
    lookup,
    logger,
    counters,
    tails: new HeadTails(),
    joined: new Map(),
    joinedSecond: -1,
    active: new Set(),
    handedOff: new Set(),
    closing: false,
    onConnectionClosed() {
      if (ctx.active.size === 0 && sweepTimer !== undefined && !ctx.closing) {
        clearInterval(sweepTimer)
        sweepTimer = undefined
      }
      checkClosed()
    },
  }

  // A server that never listens has no connection tracking; 'listening' starts it
  // (node:http's own listener), so headersTimeout/requestTimeout and closeIdleConnections
  // work for handed-off sockets.
  if (!fallback.listening) fallback.emit('listening')

  function sweep(): void {
    const now = Date.now()
    for (const conn of ctx.active) conn.tick(now)
    if (ctx.closing) fallback.closeIdleConnections()
  }

  function checkClosed(): void {
    if (!ctx.closing || ctx.active.size > 0 || ctx.handedOff.size > 0) return
    if (sweepTimer !== undefined) clearInterval(sweepTimer)
    if (closingTimer !== undefined) clearInterval(closingTimer)
    sweepTimer = undefined
    closingTimer = undefined
    resolveClosed?.()
  }

  const accept = (socket: Socket): void => {
    counters.connections++
    if (ctx.closing || socket.destroyed) {
      socket.destroy()
      return
    }
    // node:http's servers run half-open and end after the last response themselves;
    // so does the fast path, whatever the listening server was created with.
    socket.allowHalfOpen = true
    socket.setNoDelay(true)
    const conn = new Connection(ctx, socket, Date.now())
    ctx.active.add(conn)
    socket.on('data', conn.onData)
    socket.on('drain', conn.onDrain)
    socket.on('end', conn.onEnd)
    socket.on('error', conn.onError)
    socket.on('close', conn.onClose)
    if (sweepTimer === undefined) {
      sweepTimer = setInterval(sweep, sweepMs)
      sweepTimer.unref()
    }
  }

  return {
    accept,
    counters,
    get activeConnections() {
      return ctx.active.size
    },
    get handedOffConnections() {
      return ctx.handedOff.size
    },
    close(options: { signal?: AbortSignal } = {}): Promise<void> {
      const { signal } = options
      if (closed === undefined) {
        closed = new Promise<void>((resolve) => {
          resolveClosed = resolve
        })
        ctx.closing = true
        sweep()
        closingTimer = setInterval(sweep, CLOSING_SWEEP_MS)
        closingTimer.unref()
        checkClosed()
      }
      if (signal === undefined) return closed
      if (signal.aborted) return Promise.reject(new AbortError('fast path close aborted'))
      const done = closed
      return new Promise<void>((resolve, reject) => {
        const onAbort = (): void => reject(new AbortError('fast path close aborted'))
        signal.addEventListener('abort', onAbort, { once: true })
        done.then(
          () => {
            signal.removeEventListener('abort', onAbort)
            resolve()
          },
          () => {},
        )
      })
    },
    closeAllConnections(): void {
      for (const conn of ctx.active) conn.socket.destroy()
      for (const socket of ctx.handedOff) socket.destroy()
    },
  }
}
