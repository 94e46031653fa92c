/**
 * A streamed response of the fast path: the part of node:http's `ServerResponse` that the
 * origin cache's fill code uses (`writeHead`, `write` with backpressure, `end`, `destroy`,
 * `headersSent`, `destroyed`, `writableFinished`, `'drain'`, `'finish'`, `'close'`),
 * written straight to the raw socket. Framing follows node:http: the given
 * `Content-Length` (checked: a body longer or shorter aborts the connection, never a
 * wrong byte), else `Transfer-Encoding: chunked`; no body for `HEAD`, 1xx, 204 and 304;
 * `Date` added when absent; `Connection: close` when the connection ends after it.
 */
import { EventEmitter } from 'node:events'
import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
/** What node:http refuses in a header value (`validateHeaderValue`): any CTL but HTAB. */
const BAD_VALUE = /[^\t\x20-\x7e\x80-\xff]/
/** Framing and connection fields: set here, never taken from the caller. */
const FRAMING = new Set(['transfer-encoding', 'connection', 'keep-alive'])
const LAST_CHUNK = Buffer.from('0\r\n\r\n', 'latin1')
const CRLF = Buffer.from('\r\n', 'latin1')

/** What the response needs of its connection. */
export interface StreamOwner {
  readonly socket: Socket
  /** The response was ended (`ok`) or aborted. */
  responseDone(res: FastPathResponse, ok: boolean): void
  /** Bytes written, for the fast path's counters. */
  countBytes(n: number): void
}

type HeaderValue = string | number | readonly string[]

export class FastPathResponse extends EventEmitter {
  statusCode = 200
  headersSent = false
  writableFinished = false
  readonly #owner: StreamOwner
  readonly #isHead: boolean
  readonly #close: boolean
  #head: Buffer | undefined
  #noBody = false
  #chunked = false
  /** Declared body length, or -1. */
  #length = -1
  #written = 0
  #ended = false
  #destroyed = false
  /** Socket writes not yet handed to the kernel; 'finish' waits for them after `end`. */
  #pending = 0
  readonly #onWritten = (err?: Error | null): void => {
    this.#pending--
    if (err == null && this.#ended && this.#pending === 0) this.#finished()
  }

  constructor(owner: StreamOwner, isHead: boolean, close: boolean) {
    super()
    this.#owner = owner
    this.#isHead = isHead
    this.#close = close
  }

  get destroyed(): boolean {
    return this.#destroyed || this.#owner.socket.destroyed
  }

  /** Builds the head; it goes out with the first body bytes or the end. */
  writeHead(status: number, headers: Readonly<Record<string, HeaderValue | undefined>> = {}): this {
    if (this.headersSent) throw new Error('the head was already written')
    this.statusCode = status
    let text = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n`
    let hasDate = false
    let length: string | undefined
    for (const name in headers) {
      const raw = headers[name]
      if (raw === undefined) continue
      const lower = name.toLowerCase()
      if (FRAMING.has(lower)) continue
      if (!TOKEN.test(name)) throw new TypeError(`invalid header name ${JSON.stringify(name)}`)
      const values = typeof raw === 'object' ? raw : [String(raw)]
      for (const value of values) {
        if (BAD_VALUE.test(value)) throw new TypeError(`invalid value of header ${name}`)
        if (lower === 'content-length') {
          if (length !== undefined || !/^\d{1,15}$/.test(value)) throw new TypeError('invalid content-length')
          length = value
        } else if (lower === 'date') hasDate = true
        text += `${name}: ${value}\r\n`
      }
    }
    this.#noBody = this.#isHead || status === 204 || status === 304 || status < 200
    if (!this.#noBody) {
      if (length !== undefined) this.#length = Number(length)
      else {
        this.#chunked = true
        text += 'transfer-encoding: chunked\r\n'
      }
    }
    if (!hasDate) text += `date: ${new Date().toUTCString()}\r\n`
    text += this.#close ? 'connection: close\r\n\r\n' : '\r\n'
    this.#head = Buffer.from(text, 'latin1')
    this.headersSent = true
    return this
  }

  write(chunk: Uint8Array | string, cb?: (err?: Error | null) => void): boolean {
    if (this.#ended || this.destroyed) return false
    if (!this.headersSent) this.writeHead(this.statusCode)
    const body = typeof chunk === 'string' ? Buffer.from(chunk) : chunk
    const socket = this.#owner.socket
    if (this.#noBody || body.byteLength === 0) {
      this.#flushHead()
      if (cb !== undefined) queueMicrotask(cb)
      return socket.writableLength < socket.writableHighWaterMark
    }
    this.#written += body.byteLength
    if (this.#length >= 0 && this.#written > this.#length) {
      // More than declared: the client must not take this for a complete response.
      this.destroy()
      return false
    }
    // One syscall per piece: the head goes with the first one (writev), the rest alone.
    const batch = this.#head !== undefined || this.#chunked
    if (batch) socket.cork()
    this.#flushHead()
    this.#pending++
    if (this.#chunked) {
      socket.write(`${body.byteLength.toString(16)}\r\n`, 'latin1')
      socket.write(body)
      socket.write(CRLF, this.#onWritten)
      this.#owner.countBytes(body.byteLength + 4)
    } else {
      socket.write(body, this.#onWritten)
      this.#owner.countBytes(body.byteLength)
    }
    if (batch) socket.uncork()
    if (cb !== undefined) queueMicrotask(cb)
    return socket.writableLength < socket.writableHighWaterMark
  }

  end(chunk?: Uint8Array | string): this {
    if (this.#ended || this.destroyed) return this
    if (chunk !== undefined) this.write(chunk)
    if (this.destroyed) return this
    if (!this.headersSent) {
      this.writeHead(this.statusCode, this.#isHead ? {} : { 'content-length': '0' })
    }
    if (!this.#noBody && this.#length >= 0 && this.#written !== this.#length) {
      // Shorter than declared: abort, as node:http's client would see a cut response.
      this.destroy()
      return this
    }
    this.#ended = true
    const socket = this.#owner.socket
    if (this.#chunked) {
      socket.cork()
      this.#flushHead()
      this.#pending++
      socket.write(LAST_CHUNK, this.#onWritten)
      socket.uncork()
      this.#owner.countBytes(LAST_CHUNK.length)
    } else this.#flushHead()
    // 'finish' once every write is with the kernel: now, or at the last write's callback
    if (this.#pending === 0) queueMicrotask(() => this.#finished())
    this.#owner.responseDone(this, true)
    return this
  }

  #finished(): void {
    if (this.writableFinished || this.#destroyed) return
    this.writableFinished = true
    this.emit('finish')
    this.emit('close')
  }

  /** Aborts the response: the connection is destroyed, the client sees a cut response. */
  destroy(_err?: Error): this {
    if (this.#destroyed) return this
    this.#destroyed = true
    this.#owner.socket.destroy()
    if (!this.#ended) this.#owner.responseDone(this, false)
    this.emit('close')
    return this
  }

  /** The connection closed under the response. */
  socketClosed(): void {
    if (this.#destroyed || this.writableFinished) return
    this.#destroyed = true
    if (!this.#ended) this.#owner.responseDone(this, false)
    this.emit('close')
  }

  #flushHead(): void {
    const head = this.#head
    if (head === undefined) return
    this.#head = undefined
    this.#pending++
    this.#owner.socket.write(head, this.#onWritten)
    this.#owner.countBytes(head.length)
  }
}
