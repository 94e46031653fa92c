import { once } from 'node:events'
import http from 'node:http'
import net from 'node:net'
import tls from 'node:tls'
import fc from 'fast-check'
import { Client } from 'undici'
import { afterEach, describe, expect, it } from 'vitest'
import {
  createFastPath,
  type FastPath,
  type FastPathInit,
  type FastPathRequest,
  type PreparedResponse,
  prepareResponse,
} from '../src/http/fast-path.ts'

// ---------------------------------------------------------------------------------------
// Harness: a node:http fallback that answers `x-path: slow`, a fast path whose lookup hits
// `/hit…` paths with `x-path: fast`, both behind a net.Server on 127.0.0.1:0.
// ---------------------------------------------------------------------------------------

const HIT_BODY = 'hello from the fast path\n'

interface Harness {
  port: number
  fastPath: FastPath
  fallback: http.Server
  /** Server-side sockets, in accept order. */
  sockets: net.Socket[]
  seen: FastPathRequest[]
  close(): Promise<void>
}

interface HarnessOptions {
  init?: FastPathInit
  lookup?: (req: FastPathRequest) => PreparedResponse | undefined
  fallbackOptions?: http.ServerOptions
  slowDelayMs?: number
  tls?: boolean
  onSlow?: (req: http.IncomingMessage) => void
}

const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!()
})

function fallbackHandler(delayMs = 0, onRequest?: (req: http.IncomingMessage) => void): http.RequestListener {
  return (req, res) => {
    onRequest?.(req)
    const answer = (): void => {
      res.setHeader('x-path', 'slow')
      res.setHeader('x-req', `${req.method} ${req.url}`)
      res.end(`slow ${req.method} ${req.url}`)
    }
    req.resume()
    if (req.url?.startsWith('/delay') === true || delayMs > 0) setTimeout(answer, delayMs || 150)
    else answer()
  }
}

const hit = prepareResponse({
  headers: { 'content-type': 'text/plain', 'x-path': 'fast' },
  body: HIT_BODY,
})

function defaultLookup(req: FastPathRequest): PreparedResponse | undefined {
  return req.path.startsWith('/hit') ? hit : undefined
}

async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const fallback = http.createServer(
    options.fallbackOptions ?? {},
    fallbackHandler(options.slowDelayMs, options.onSlow),
  )
  const seen: FastPathRequest[] = []
  const lookup = options.lookup ?? defaultLookup
  const fastPath = createFastPath(options.init ?? {}, {
    fallback,
    lookup: (req) => {
      seen.push(req)
      return lookup(req)
    },
  })
  const sockets: net.Socket[] = []
  const onSocket = (socket: net.Socket): void => {
    sockets.push(socket)
    fastPath.accept(socket)
  }
  const server =
    options.tls === true
      ? tls.createServer({ key: TEST_KEY, cert: TEST_CERT }).on('secureConnection', onSocket)
      : net.createServer({ noDelay: true }, onSocket)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const harness: Harness = {
    port: (server.address() as net.AddressInfo).port,
    fastPath,
    fallback,
    sockets,
    seen,
    async close() {
      server.close()
      fastPath.closeAllConnections()
      fallback.close()
    },
  }
  cleanups.push(() => harness.close())
  return harness
}

interface RawOptions {
  /** Half-close after writing (the server then ends after its answers). */
  end?: boolean
  /** Delay between chunks, in ms (each chunk goes out as its own segment). */
  gapMs?: number
  /** Stop reading after this long (the connection may be kept alive). */
  timeoutMs?: number
  /** Resolve as soon as this many complete responses arrived. */
  responses?: number
  tls?: boolean
}

/** Connects, writes each chunk, collects every byte until the server closes, `responses` arrive, or the timeout. */
async function exchange(
  port: number,
  chunks: (string | Uint8Array)[],
  options: RawOptions = {},
): Promise<Buffer> {
  const socket =
    options.tls === true
      ? tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false })
      : net.connect({ port, host: '127.0.0.1', allowHalfOpen: true, noDelay: true })
  await once(socket, options.tls === true ? 'secureConnect' : 'connect')
  const parts: Buffer[] = []
  const done = new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, options.timeoutMs ?? 3000)
    socket.on('data', (d: Buffer) => {
      parts.push(d)
      if (options.responses !== undefined) {
        try {
          if (parseResponses(Buffer.concat(parts)).length >= options.responses) {
            clearTimeout(timer)
            resolve()
          }
        } catch {}
      }
    })
    // The server is done sending when it ends its side (the client may stay half-open).
    const finished = (): void => {
      clearTimeout(timer)
      resolve()
    }
    socket.on('end', finished)
    socket.on('close', finished)
    socket.on('error', () => {})
  })
  for (const chunk of chunks) {
    if (socket.destroyed) break
    await new Promise<void>((resolve) => socket.write(chunk, () => resolve()))
    if (options.gapMs !== undefined) await sleep(options.gapMs)
  }
  if (options.end === true) socket.end()
  await done
  socket.destroy()
  return Buffer.concat(parts)
}

interface ParsedResponse {
  status: number
  headers: Record<string, string>
  /** Header lines in order, as sent. */
  rawHead: string
  body: Buffer
}

/**
 * Parses consecutive responses. A response whose `x-req` starts with `HEAD ` (or that
 * answers a HEAD in `methods`) has no body; one without Content-Length runs to the end.
 * Incomplete trailing bytes are ignored.
 */
function parseResponses(buf: Buffer, methods: string[] = []): ParsedResponse[] {
  const out: ParsedResponse[] = []
  let pos = 0
  while (pos < buf.length) {
    const headEnd = buf.indexOf('\r\n\r\n', pos)
    if (headEnd === -1) break
    const rawHead = buf.toString('latin1', pos, headEnd)
    const [statusLine, ...lines] = rawHead.split('\r\n')
    const status = Number(statusLine!.split(' ')[1])
    const headers: Record<string, string> = {}
    for (const line of lines) {
      const i = line.indexOf(':')
      headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim()
    }
    let start = headEnd + 4
    if (status >= 100 && status < 200) {
      pos = start
      continue
    }
    const isHead = methods[out.length] === 'HEAD' || headers['x-req']?.startsWith('HEAD ') === true
    const length = isHead
      ? 0
      : headers['content-length'] === undefined
        ? -1
        : Number(headers['content-length'])
    const end = length === -1 ? buf.length : start + length
    if (end > buf.length) break
    out.push({ status, headers, rawHead, body: buf.subarray(start, end) })
    start = end
    pos = start
  }
  return out
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

async function until(check: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await sleep(5)
  }
}

const GET_HIT = 'GET /hit HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'
const DATE = /^Date: [A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/

function expectFastHit(r: ParsedResponse | undefined): void {
  expect(r?.status).toBe(200)
  expect(r?.headers['x-path']).toBe('fast')
  expect(r?.body.toString()).toBe(HIT_BODY)
}

// ---------------------------------------------------------------------------------------

describe('createFastPath options', () => {
  const fallback = http.createServer()
  const lookup = (): undefined => undefined

  it('refuses bad options and components with a typed error', () => {
    const bad = expect.objectContaining({ code: 'SHOAL_ERR_INVALID_ARGUMENT' })
    expect(() => createFastPath({ maxHeaderBytes: 0 }, { fallback, lookup })).toThrow(bad)
    expect(() => createFastPath({ keepAliveTimeoutMs: -1 }, { fallback, lookup })).toThrow(bad)
    expect(() => createFastPath({ headersTimeoutMs: 1.5 }, { fallback, lookup })).toThrow(bad)
    expect(() => createFastPath({ maxRequestsPerSocket: -1 }, { fallback, lookup })).toThrow(bad)
    expect(() => createFastPath(null as never, { fallback, lookup })).toThrow(bad)
    expect(() => createFastPath({}, { fallback: {} as never, lookup })).toThrow(bad)
    expect(() => createFastPath({}, { fallback, lookup: 'x' as never })).toThrow(bad)
  })

  it('prepareResponse refuses header injection, framing headers and bodiless statuses', () => {
    const bad = expect.objectContaining({ code: 'SHOAL_ERR_INVALID_ARGUMENT' })
    expect(() => prepareResponse({ headers: { 'x-a': 'ok\r\nx-b: injected' }, body: '' })).toThrow(bad)
    expect(() => prepareResponse({ headers: { 'x-a': 'ok\n' }, body: '' })).toThrow(bad)
    expect(() => prepareResponse({ headers: { 'bad name': 'v' }, body: '' })).toThrow(bad)
    expect(() => prepareResponse({ headers: { 'Content-Length': '3' }, body: '' })).toThrow(bad)
    expect(() => prepareResponse({ headers: { 'transfer-encoding': 'chunked' }, body: '' })).toThrow(bad)
    expect(() => prepareResponse({ headers: { connection: 'close' }, body: '' })).toThrow(bad)
    expect(() => prepareResponse({ headers: { date: 'x' }, body: '' })).toThrow(bad)
    expect(() => prepareResponse({ status: 304, body: '' })).toThrow(bad)
    const p = prepareResponse({ status: 404, headers: { 'x-list': ['a', 'b'], n: 1 }, body: 'abc' })
    expect(p.head.toString()).toBe(
      'HTTP/1.1 404 Not Found\r\nx-list: a\r\nx-list: b\r\nn: 1\r\nContent-Length: 3\r\n',
    )
    expect(
      prepareResponse({ headers: { date: 'Tue, 24 Nov 2026 12:00:00 GMT' }, body: '', date: false }).date,
    ).toBe(false)
  })
})

describe('fast path answers hits', () => {
  it('answers a hit with exactly the prepared head, a Date and the body', async () => {
    const h = await startHarness()
    const bytes = await exchange(h.port, [GET_HIT], { responses: 1 })
    const text = bytes.toString('latin1')
    const lines = text.split('\r\n')
    expect(lines.slice(0, 4)).toEqual([
      'HTTP/1.1 200 OK',
      'content-type: text/plain',
      'x-path: fast',
      `Content-Length: ${HIT_BODY.length}`,
    ])
    expect(lines[4]).toMatch(DATE)
    expect(text.slice(text.indexOf('\r\n\r\n') + 4)).toBe(HIT_BODY)
    expect(bytes.length).toBe(hit.head.length + 37 + 2 + HIT_BODY.length)
    expect(h.fastPath.counters).toMatchObject({ requests: 1, handoffs: 0, bytes: bytes.length })
    expect(h.seen[0]).toMatchObject({ method: 'GET', path: '/hit', host: '127.0.0.1' })
  })

  it('reuses a keep-alive connection (undici)', async () => {
    const h = await startHarness()
    const client = new Client(`http://127.0.0.1:${h.port}`)
    cleanups.push(() => client.close())
    for (let i = 0; i < 5; i++) {
      const res = await client.request({ path: `/hit/${i}?q=${i}`, method: 'GET' })
      expect(res.statusCode).toBe(200)
      expect(res.headers['x-path']).toBe('fast')
      expect(await res.body.text()).toBe(HIT_BODY)
    }
    expect(h.fastPath.counters).toMatchObject({ connections: 1, requests: 5, handoffs: 0 })
    expect(h.seen.map((r) => r.path)).toEqual([0, 1, 2, 3, 4].map((i) => `/hit/${i}?q=${i}`))
  })

  it('answers HEAD with the head only, then the next request on the same connection', async () => {
    const h = await startHarness()
    const bytes = await exchange(h.port, [`HEAD /hit HTTP/1.1\r\nHost: a\r\n\r\n${GET_HIT}`], {
      responses: 2,
    })
    const [head, get] = parseResponses(bytes, ['HEAD', 'GET'])
    expect(head?.status).toBe(200)
    expect(head?.headers['content-length']).toBe(String(HIT_BODY.length))
    expect(head?.body.length).toBe(0)
    expectFastHit(get)
    expect(h.seen[0]?.method).toBe('HEAD')
    expect(h.fastPath.counters.requests).toBe(2)
  })

  it('answers each response with its own bytes when small responses are joined once and reused', async () => {
    const other = prepareResponse({ headers: { 'x-path': 'fast', 'x-n': '2' }, body: 'another body' })
    const h = await startHarness({
      lookup: (req) => (req.path === '/hit/other' ? other : req.path.startsWith('/hit') ? hit : undefined),
    })
    const get = (path: string) => `GET ${path} HTTP/1.1\r\nHost: a\r\n\r\n`
    const bytes = await exchange(
      h.port,
      [
        `${get('/hit')}${get('/hit/other')}${get('/hit')}HEAD /hit HTTP/1.1\r\nHost: a\r\n\r\n${get('/hit/other')}`,
      ],
      { responses: 5 },
    )
    const answers = parseResponses(bytes, ['GET', 'GET', 'GET', 'HEAD', 'GET'])
    expect(answers.map((a) => a.body.toString())).toEqual([
      HIT_BODY,
      'another body',
      HIT_BODY,
      '',
      'another body',
    ])
    expect(answers.map((a) => a.headers['x-n'])).toEqual([undefined, '2', undefined, undefined, '2'])
    expect(answers[3]?.headers['content-length']).toBe(String(HIT_BODY.length))
    // A closing answer carries its own Connection: close, the cached join of the same response does not.
    const closing = await startHarness({ init: { maxRequestsPerSocket: 2 } })
    const both = parseResponses(
      await exchange(closing.port, [`${get('/hit')}${get('/hit')}`], { responses: 2 }),
      ['GET', 'GET'],
    )
    expect(both.map((a) => a.headers.connection)).toEqual([undefined, 'close'])
    expect(both.map((a) => a.body.toString())).toEqual([HIT_BODY, HIT_BODY])
  })

  it('lets the lookup read allowlisted headers (for Vary), repeated ones joined', async () => {
    let seen: (string | undefined)[] = []
    const h = await startHarness({
      lookup: (req) => {
        seen = [
          req.header('accept-encoding'),
          req.header('Origin'),
          req.header('cookie'),
          req.header('sec-fetch-mode'),
        ]
        return hit
      },
    })
    const req =
      'GET /hit HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip \r\nORIGIN:https://x.example\r\n' +
      'accept-encoding:\tbr\r\nSec-Fetch-Mode: cors\r\n\r\n'
    expectFastHit(parseResponses(await exchange(h.port, [req], { responses: 1 }))[0])
    expect(seen).toEqual(['gzip, br', 'https://x.example', undefined, 'cors'])
  })

  it('answers a browser-like request with only allowlisted headers', async () => {
    const h = await startHarness()
    const req = [
      'GET /hit/app.js?v=3 HTTP/1.1',
      'Host: cdn.example:8443',
      'Connection: Keep-Alive',
      'User-Agent: Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/140.0',
      'Accept: */*',
      'Accept-Language: en-US,en;q=0.5',
      'Accept-Encoding: gzip, deflate, br, zstd',
      'Referer: https://app.example/',
      'Origin: https://app.example',
      'DNT: 1',
      'Sec-Fetch-Dest: script',
      'Sec-Fetch-Mode: cors',
      'Sec-Fetch-Site: cross-site',
      'sec-ch-ua: "Chromium";v="140"',
      'Upgrade-Insecure-Requests: 1',
      'Priority: u=1',
      '',
      '',
    ].join('\r\n')
    expectFastHit(parseResponses(await exchange(h.port, [req], { responses: 1 }))[0])
    expect(h.seen[0]).toMatchObject({ path: '/hit/app.js?v=3', host: 'cdn.example:8443' })
  })

  it('calls onSent with the bytes written', async () => {
    const sent: number[] = []
    const counted = prepareResponse({
      headers: { 'x-path': 'fast' },
      body: HIT_BODY,
      onSent: (n) => sent.push(n),
    })
    const h = await startHarness({ lookup: () => counted })
    const bytes = await exchange(h.port, [GET_HIT, GET_HIT], { responses: 2 })
    await until(() => sent.length === 2)
    expect(sent[0]! + sent[1]!).toBe(bytes.length)
  })

  it('works over TLS', async () => {
    const h = await startHarness({ tls: true })
    const bytes = await exchange(h.port, [`${GET_HIT}GET /miss HTTP/1.1\r\nHost: a\r\n\r\n${GET_HIT}`], {
      tls: true,
      responses: 3,
    })
    const [a, b, c] = parseResponses(bytes)
    expectFastHit(a)
    expect(b?.headers['x-req']).toBe('GET /miss')
    expect(c?.headers['x-req']).toBe('GET /hit')
    expect(h.fastPath.counters).toMatchObject({ requests: 1, handoffsMiss: 1 })
  })
})

describe('hand-off to node:http', () => {
  it('sends a miss to node:http, and the rest of that connection too', async () => {
    const h = await startHarness()
    const bytes = await exchange(h.port, [`GET /miss?a=1 HTTP/1.1\r\nHost: a\r\n\r\n`, GET_HIT], {
      responses: 2,
      gapMs: 20,
    })
    const [miss, after] = parseResponses(bytes)
    expect(miss?.headers['x-path']).toBe('slow')
    expect(miss?.body.toString()).toBe('slow GET /miss?a=1')
    expect(after?.headers['x-path']).toBe('slow')
    expect(h.fastPath.counters).toMatchObject({ requests: 0, handoffs: 1, handoffsMiss: 1 })
    expect(h.fastPath.handedOffConnections).toBe(1)
  })

  it('sends a request whose lookup throws to node:http', async () => {
    const h = await startHarness({
      lookup: () => {
        throw new Error('boom')
      },
    })
    const [r] = parseResponses(await exchange(h.port, [GET_HIT], { responses: 1 }))
    expect(r?.headers['x-path']).toBe('slow')
    expect(h.fastPath.counters).toMatchObject({ lookupErrors: 1, handoffsMiss: 1 })
  })

  const disallowed: [string, string][] = [
    ['Range', 'Range: bytes=0-1'],
    ['If-None-Match', 'If-None-Match: "x"'],
    ['If-Modified-Since', 'If-Modified-Since: Tue, 24 Nov 2026 12:00:00 GMT'],
    ['If-Match', 'If-Match: *'],
    ['If-Unmodified-Since', 'If-Unmodified-Since: Tue, 24 Nov 2026 12:00:00 GMT'],
    ['If-Range', 'If-Range: "x"'],
    ['Content-Length', 'Content-Length: 0'],
    ['Transfer-Encoding', 'Transfer-Encoding: chunked\r\n\r\n0'],
    ['Expect', 'Expect: 100-continue'],
    ['Authorization', 'Authorization: Bearer x'],
    ['Proxy-Authorization', 'Proxy-Authorization: Basic eDp5'],
    ['Cookie', 'Cookie: a=b'],
    ['Cache-Control', 'Cache-Control: no-cache'],
    ['Pragma', 'Pragma: no-cache'],
    ['Connection: close', 'Connection: close'],
    ['Connection: keep-alive, x', 'Connection: keep-alive, x'],
    ['TE', 'TE: trailers'],
    ['Via', 'Via: 1.1 x'],
    ['X-Forwarded-For', 'X-Forwarded-For: 10.0.0.1'],
    ['Forwarded', 'Forwarded: for=10.0.0.1'],
    ['Max-Forwards', 'Max-Forwards: 0'],
    ['Keep-Alive', 'Keep-Alive: timeout=5'],
    ['X-Shoal-Ticket', 'X-Shoal-Ticket: abc'],
    ['duplicate Host', 'Host: b'],
    ['empty Host', 'Host:'],
  ]
  for (const [name, line] of disallowed) {
    it(`sends a request with ${name} to node:http`, async () => {
      const h = await startHarness()
      const bytes = await exchange(h.port, [`GET /hit HTTP/1.1\r\nHost: a\r\n${line}\r\n\r\n`], {
        responses: 1,
        end: true,
      })
      expect(h.fastPath.counters.requests).toBe(0)
      expect(h.fastPath.counters.handoffs).toBe(1)
      const [r] = parseResponses(bytes)
      // node:http answers (or refuses with 400 for what it finds malformed): never the fast path.
      expect(r?.headers['x-path']).not.toBe('fast')
    })
  }

  it('answers Upgrade requests through node:http, not the fast path', async () => {
    const h = await startHarness()
    await exchange(
      h.port,
      ['GET /hit HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n'],
      {
        timeoutMs: 300,
      },
    )
    expect(h.fastPath.counters).toMatchObject({ requests: 0, handoffsUnsupported: 1 })
  })

  it('answers pipelined fast, slow, fast requests in order, with exact bytes', async () => {
    const h = await startHarness()
    const bytes = await exchange(
      h.port,
      [`${GET_HIT}GET /delay/1 HTTP/1.1\r\nHost: a\r\n\r\n${GET_HIT}HEAD /miss HTTP/1.1\r\nHost: a\r\n\r\n`],
      { responses: 4 },
    )
    const responses = parseResponses(bytes, ['GET', 'GET', 'GET', 'HEAD'])
    expect(responses.map((r) => [r.status, r.headers['x-path'], r.headers['x-req']])).toEqual([
      [200, 'fast', undefined],
      [200, 'slow', 'GET /delay/1'],
      [200, 'slow', 'GET /hit'],
      [200, 'slow', 'HEAD /miss'],
    ])
    // The fast response is byte for byte the prepared one; nothing is lost or interleaved.
    const fastLen = hit.head.length + 37 + 2 + HIT_BODY.length
    expect(bytes.subarray(0, hit.head.length).equals(hit.head)).toBe(true)
    expect(bytes.toString('latin1', fastLen - HIT_BODY.length, fastLen)).toBe(HIT_BODY)
    expect(bytes.toString('latin1', fastLen, fastLen + 15)).toBe('HTTP/1.1 200 OK')
    expect(responses[1]?.body.toString()).toBe('slow GET /delay/1')
    expect(h.fastPath.counters).toMatchObject({ requests: 1, handoffsMiss: 1 })
  })

  it('keeps order when more requests keep arriving during and after the hand-off', async () => {
    const h = await startHarness()
    const n = 300
    const socket = net.connect({ port: h.port, host: '127.0.0.1', noDelay: true })
    await once(socket, 'connect')
    const parts: Buffer[] = []
    socket.on('data', (d: Buffer) => parts.push(d))
    // Fast hits, then a miss cut in the middle of its head, then a stream of small writes.
    socket.write(`${GET_HIT.repeat(3)}GET /miss/0 HTTP/1.1\r\nHo`)
    socket.write('st: a\r\n\r\n')
    for (let i = 1; i < n; i++)
      socket.write(`GET /${i % 2 === 0 ? 'hit' : 'miss'}/${i} HTTP/1.1\r\nHost: a\r\n\r\n`)
    await until(() => parseResponses(Buffer.concat(parts)).length === n + 3, 10_000)
    const responses = parseResponses(Buffer.concat(parts))
    expect(responses.slice(0, 3).map((r) => r.headers['x-path'])).toEqual(['fast', 'fast', 'fast'])
    expect(responses.slice(3).map((r) => r.headers['x-req'])).toEqual(
      Array.from({ length: n }, (_, i) => `GET /${i % 2 === 0 && i > 0 ? 'hit' : 'miss'}/${i}`),
    )
    socket.destroy()
  })

  it('reads requests split byte by byte, fast and slow', async () => {
    const h = await startHarness()
    const text = `${GET_HIT}GET /miss?x=1 HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n`
    const chunks = [...Buffer.from(text)].map((b) => Uint8Array.of(b))
    const bytes = await exchange(h.port, chunks, { responses: 2, gapMs: 1 })
    const [a, b] = parseResponses(bytes)
    expectFastHit(a)
    expect(b?.body.toString()).toBe('slow GET /miss?x=1')
    expect(h.fastPath.counters).toMatchObject({ requests: 1, handoffsMiss: 1 })
  })

  it('replays a partial head already read when it hands off (split head, then a disallowed header)', async () => {
    const h = await startHarness()
    const bytes = await exchange(
      h.port,
      ['GET /hit HTTP/1.1\r\nHo', 'st: a\r\nRange: bytes=0-3\r\n', '\r\n'],
      {
        responses: 1,
        gapMs: 20,
      },
    )
    const [r] = parseResponses(bytes)
    expect(r?.headers['x-req']).toBe('GET /hit')
    expect(h.fastPath.counters).toMatchObject({ requests: 0, handoffsUnsupported: 1 })
  })

  it('hands an oversized head to node:http, which answers 431 (complete and incomplete heads)', async () => {
    const h = await startHarness()
    const big = `X-Pad: ${'a'.repeat(20 * 1024)}\r\n`
    for (const tail of ['\r\n', '']) {
      const bytes = await exchange(h.port, [`GET /hit HTTP/1.1\r\nHost: a\r\n${big}${tail}`], {
        responses: 1,
      })
      expect(parseResponses(bytes)[0]?.status).toBe(431)
    }
    expect(h.fastPath.counters).toMatchObject({ requests: 0, handoffsTooLarge: 2 })
  })

  it('hands an allowlisted but oversized head to node:http (init.maxHeaderBytes)', async () => {
    const h = await startHarness({ init: { maxHeaderBytes: 256 } })
    const bytes = await exchange(
      h.port,
      [`GET /hit HTTP/1.1\r\nHost: a\r\nUser-Agent: ${'u'.repeat(300)}\r\n\r\n`],
      {
        responses: 1,
      },
    )
    expect(parseResponses(bytes)[0]?.headers['x-path']).toBe('slow')
    expect(h.fastPath.counters.handoffsTooLarge).toBe(1)
  })

  it('survives garbage: node:http answers 400 or closes, and the server keeps serving', async () => {
    const h = await startHarness()
    const garbage = [
      'HELLO WORLD\r\n\r\n',
      '\x00\x01\x02\x03\r\n\r\n',
      'GET\r\n\r\n',
      'GET / HTTP/1.1\r\r\r\n\r\n',
      Buffer.from([0xff, 0xfe, 0x0d, 0x0a, 0x0d, 0x0a]),
      'GET /hit HTTP/9.9\r\nHost: a\r\n\r\n',
      ' GET /hit HTTP/1.1\r\nHost: a\r\n\r\n',
    ]
    for (const g of garbage) {
      const bytes = await exchange(h.port, [g], { end: true, timeoutMs: 1000 })
      const r = parseResponses(bytes)
      if (r.length > 0) expect(r[0]?.status).toBe(400)
    }
    expect(h.fastPath.counters.requests).toBe(0)
    expectFastHit(parseResponses(await exchange(h.port, [GET_HIT], { responses: 1 }))[0])
  })

  const smuggling: [string, string][] = [
    [
      'Transfer-Encoding with Content-Length',
      'GET /hit HTTP/1.1\r\nHost: a\r\nContent-Length: 35\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /hit HTTP/1.1\r\nHost: a\r\n\r\n',
    ],
    [
      'Content-Length on a GET',
      'GET /hit HTTP/1.1\r\nHost: a\r\nContent-Length: 32\r\n\r\nGET /hit HTTP/1.1\r\nHost: a\r\n\r\n',
    ],
    ['obs-fold', 'GET /hit HTTP/1.1\r\nHost: a\r\nX-A: b\r\n Content-Length: 3\r\n\r\n'],
    ['obs-fold of Host', 'GET /hit HTTP/1.1\r\nHost: a\r\n\tb\r\n\r\n'],
    ['bare LF line ends', 'GET /hit HTTP/1.1\nHost: a\n\n'],
    ['one bare LF', 'GET /hit HTTP/1.1\r\nHost: a\nContent-Length: 3\r\n\r\nabc'],
    ['bare CR', 'GET /hit HTTP/1.1\r\nHost: a\rX: y\r\n\r\n'],
    ['space before colon', 'GET /hit HTTP/1.1\r\nHost: a\r\nContent-Length : 3\r\n\r\nabc'],
    ['space before colon on an allowed name', 'GET /hit HTTP/1.1\r\nHost : a\r\n\r\n'],
    ['NUL in a value', 'GET /hit HTTP/1.1\r\nHost: a\r\nUser-Agent: a\x00b\r\n\r\n'],
    ['obs-text in a value', 'GET /hit HTTP/1.1\r\nHost: a\r\nUser-Agent: caf\xe9\r\n\r\n'],
    ['absolute-form target', 'GET http://a/hit HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['HTTP/1.0', 'GET /hit HTTP/1.0\r\nHost: a\r\n\r\n'],
    ['lower-case method', 'get /hit HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['two spaces', 'GET  /hit HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['tab separator', 'GET\t/hit HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['fragment in target', 'GET /hit#x HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['no Host', 'GET /hit HTTP/1.1\r\n\r\n'],
    ['Host with a space', 'GET /hit HTTP/1.1\r\nHost: a b\r\n\r\n'],
    ['Host with @', 'GET /hit HTTP/1.1\r\nHost: evil@a\r\n\r\n'],
    [
      'chunked smuggle',
      'GET /hit HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /miss HTTP/1.1\r\nHost: a\r\n\r\n',
    ],
    [
      'Transfer-Encoding with a space',
      'GET /hit HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n',
    ],
  ]
  for (const [name, text] of smuggling) {
    it(`never answers a smuggling attempt on the fast path: ${name}`, async () => {
      const h = await startHarness()
      const bytes = await exchange(h.port, [text], { end: true, timeoutMs: 1500 })
      expect(h.fastPath.counters.requests).toBe(0)
      for (const r of parseResponses(bytes)) expect(r.headers['x-path']).not.toBe('fast')
    })
  }

  it('gives node:http the body of a Content-Length GET: one request, not two', async () => {
    const h = await startHarness()
    const text =
      'GET /hit HTTP/1.1\r\nHost: a\r\nContent-Length: 36\r\n\r\nGET /hit HTTP/1.1\r\nHost: smuggled\r\n\r\n'
    const responses = parseResponses(await exchange(h.port, [text], { end: true }))
    expect(responses.map((r) => r.headers['x-req'])).toEqual(['GET /hit'])
  })
})

describe('connection handling', () => {
  it('stops parsing while a slow reader has not drained (bounded buffering), then sends everything in order', async () => {
    const size = 8 * 2 ** 20
    const body = Buffer.alloc(size, 0x61)
    for (let i = 0; i < size; i += 4096) body[i] = 0x62
    const big = prepareResponse({ headers: { 'x-path': 'fast' }, body })
    const h = await startHarness({ lookup: () => big })
    const n = 16
    const client = net.connect({ port: h.port, host: '127.0.0.1' })
    await once(client, 'connect')
    client.pause()
    client.write(`GET /big HTTP/1.1\r\nHost: a\r\n\r\n`.repeat(n))
    await sleep(300)
    const server = h.sockets[0]!
    // At most one response beyond the high-water mark sits in user space; parsing paused.
    expect(server.writableLength).toBeLessThanOrEqual(size + server.writableHighWaterMark)
    expect(h.fastPath.counters.requests).toBeLessThan(n)
    const maxHeld = h.fastPath.counters.requests
    await sleep(200)
    expect(h.fastPath.counters.requests).toBe(maxHeld)
    // Now read everything: all n responses, complete and in order.
    let received = 0
    const expected = n * (big.head.length + 37 + 2 + size)
    const chunks: Buffer[] = []
    client.on('data', (d: Buffer) => {
      received += d.length
      if (chunks.length < 4) chunks.push(d)
    })
    client.resume()
    await until(() => received >= expected, 20_000)
    expect(received).toBe(expected)
    expect(h.fastPath.counters.requests).toBe(n)
    expect(Buffer.concat(chunks).toString('latin1', 0, 15)).toBe('HTTP/1.1 200 OK')
    client.destroy()
  })

  it('closes an idle keep-alive connection after keepAliveTimeoutMs', async () => {
    const h = await startHarness({ init: { keepAliveTimeoutMs: 100 } })
    const started = Date.now()
    const bytes = await exchange(h.port, [GET_HIT], { timeoutMs: 3000 })
    expectFastHit(parseResponses(bytes)[0])
    expect(Date.now() - started).toBeLessThan(2000)
    expect(h.fastPath.counters.idleCloses).toBe(1)
  })

  it('answers 408 and closes when a head does not arrive within headersTimeoutMs (slowloris)', async () => {
    const h = await startHarness({ init: { headersTimeoutMs: 150, keepAliveTimeoutMs: 5000 } })
    const chunks = [
      'GET /hit HTTP/1.1\r\n',
      'Host: a\r\n',
      'User-Agent: x\r\n',
      'Accept: */*\r\n',
      'DNT: 1\r\n',
    ]
    const bytes = await exchange(h.port, chunks, { gapMs: 60, timeoutMs: 3000 })
    expect(parseResponses(bytes)[0]?.status).toBe(408)
    expect(h.fastPath.counters).toMatchObject({ headersTimeouts: 1, requests: 0 })
  })

  it('closes a connection that sends nothing within headersTimeoutMs', async () => {
    const h = await startHarness({ init: { headersTimeoutMs: 100 } })
    const bytes = await exchange(h.port, [], { timeoutMs: 3000 })
    expect(bytes.length).toBe(0)
    expect(h.fastPath.counters.headersTimeouts).toBe(1)
  })

  it('closes after maxRequestsPerSocket responses, saying so', async () => {
    const h = await startHarness({ init: { maxRequestsPerSocket: 2 } })
    const bytes = await exchange(h.port, [GET_HIT + GET_HIT + GET_HIT], { timeoutMs: 3000 })
    const responses = parseResponses(bytes)
    expect(responses).toHaveLength(2)
    expect(responses[0]?.headers.connection).toBeUndefined()
    expect(responses[1]?.headers.connection).toBe('close')
  })

  it('answers pipelined requests then closes when the client half-closes, even through node:http', async () => {
    const h = await startHarness()
    const bytes = await exchange(h.port, [`${GET_HIT}GET /miss HTTP/1.1\r\nHost: a\r\n\r\n${GET_HIT}`], {
      end: true,
    })
    const responses = parseResponses(bytes)
    expect(responses.map((r) => r.headers['x-path'])).toEqual(['fast', 'slow', 'slow'])
  })

  it('answers 400 to a head cut short by the end of the stream, like node:http', async () => {
    const h = await startHarness()
    const bytes = await exchange(h.port, [`${GET_HIT}GET /hit HTTP/1.1\r\nHo`], { end: true })
    const responses = parseResponses(bytes)
    expect(responses.map((r) => r.status)).toEqual([200, 400])
  })

  it('never crashes on sockets reset mid-response', async () => {
    const big = prepareResponse({ body: Buffer.alloc(4 * 2 ** 20) })
    const h = await startHarness({ lookup: () => big })
    for (let i = 0; i < 5; i++) {
      const c = net.connect({ port: h.port, host: '127.0.0.1' })
      await once(c, 'connect')
      c.write('GET /big HTTP/1.1\r\nHost: a\r\n\r\n'.repeat(4))
      await sleep(10)
      c.resetAndDestroy()
    }
    await until(() => h.fastPath.activeConnections === 0)
    expect(h.fastPath.counters.connections).toBe(5)
  })
})

describe('send timeout', () => {
  it('drops a client that takes no bytes for sendTimeoutMs, and keeps a slow one that does', async () => {
    const big = prepareResponse({ body: Buffer.alloc(8 * 2 ** 20) })
    const h = await startHarness({
      lookup: () => big,
      init: { sendTimeoutMs: 1000, keepAliveTimeoutMs: 60_000 },
    })
    const open = async () => {
      const socket = net.connect({ port: h.port, host: '127.0.0.1' })
      await once(socket, 'connect')
      socket.on('error', () => {}) // the stalled one may see a reset
      let received = 0
      socket.on('data', (d: Buffer) => {
        received += d.length
      })
      socket.write('GET /big HTTP/1.1\r\nHost: a\r\n\r\n'.repeat(4))
      return { socket, received: () => received, closed: once(socket, 'close') }
    }
    // the stalled client reads nothing: the server's buffers fill and stay full
    const stalled = await open()
    stalled.socket.pause()
    // the slow client takes a little every 50 ms: progress, never a stall of a second
    const slow = await open()
    slow.socket.pause()
    const trickle = setInterval(() => {
      slow.socket.resume()
      setTimeout(() => slow.socket.pause(), 2)
    }, 50)
    try {
      await until(() => h.fastPath.counters.sendTimeouts === 1, 10_000)
      // a paused socket sees the server's reset only once it reads again
      stalled.socket.resume()
      await stalled.closed
      // slow but moving: it gets all four answers and is never dropped
      await until(() => slow.received() >= 4 * 8 * 2 ** 20, 20_000)
      expect(slow.socket.destroyed).toBe(false)
    } finally {
      clearInterval(trickle)
      slow.socket.destroy()
    }
    expect(h.fastPath.counters.sendTimeouts).toBe(1)
  })
})

describe('graceful close', () => {
  it('closes idle connections now, busy ones after their response, handed-off ones when idle', async () => {
    const size = 4 * 2 ** 20
    const big = prepareResponse({ headers: { 'x-path': 'fast' }, body: Buffer.alloc(size) })
    const h = await startHarness({
      lookup: (req) => (req.path === '/big' ? big : defaultLookup(req)),
      init: { keepAliveTimeoutMs: 60_000 },
    })
    const open = async (): Promise<{ socket: net.Socket; data: () => Buffer; closed: Promise<unknown> }> => {
      const socket = net.connect({ port: h.port, host: '127.0.0.1' })
      await once(socket, 'connect')
      const parts: Buffer[] = []
      socket.on('data', (d: Buffer) => parts.push(d))
      return { socket, data: () => Buffer.concat(parts), closed: once(socket, 'close') }
    }
    // a: idle fast-path keep-alive; b: a slow reader mid-response; c: handed off, idle; d: handed off, busy.
    const a = await open()
    a.socket.write(GET_HIT)
    const b = await open()
    b.socket.pause()
    b.socket.write('GET /big HTTP/1.1\r\nHost: a\r\n\r\n')
    const c = await open()
    c.socket.write('GET /miss HTTP/1.1\r\nHost: a\r\n\r\n')
    await until(() => parseResponses(a.data()).length === 1 && parseResponses(c.data()).length === 1)
    const d = await open()
    d.socket.write('GET /delay HTTP/1.1\r\nHost: a\r\n\r\n')
    await until(() => h.fastPath.handedOffConnections === 2)

    const closing = h.fastPath.close()
    await Promise.all([a.closed, c.closed])
    expect(b.socket.destroyed).toBe(false)
    // New connections are refused while closing.
    const late = net.connect({ port: h.port, host: '127.0.0.1' })
    late.on('error', () => {})
    await once(late, 'close')
    b.socket.resume()
    await Promise.all([b.closed, d.closed, closing])
    const [bigRes] = parseResponses(b.data())
    expect(bigRes?.body.length).toBe(size)
    expect(parseResponses(d.data())[0]?.headers['x-req']).toBe('GET /delay')
    expect(h.fastPath.activeConnections + h.fastPath.handedOffConnections).toBe(0)
  })

  it('answers a request that arrives while closing with Connection: close', async () => {
    const h = await startHarness({ init: { keepAliveTimeoutMs: 60_000 } })
    const socket = net.connect({ port: h.port, host: '127.0.0.1' })
    await once(socket, 'connect')
    socket.write('GET /hit HTTP/1.1\r\nHo')
    await sleep(30)
    const closing = h.fastPath.close()
    const parts: Buffer[] = []
    socket.on('data', (d: Buffer) => parts.push(d))
    socket.write('st: a\r\n\r\n')
    await Promise.all([once(socket, 'close'), closing])
    const [r] = parseResponses(Buffer.concat(parts))
    expectFastHit(r)
    expect(r?.headers.connection).toBe('close')
  })

  it('rejects with AbortError when the signal fires first; closeAllConnections then ends it', async () => {
    const h = await startHarness({ slowDelayMs: 2000 })
    const socket = net.connect({ port: h.port, host: '127.0.0.1' })
    socket.on('error', () => {})
    await once(socket, 'connect')
    socket.write('GET /miss HTTP/1.1\r\nHost: a\r\n\r\n')
    await until(() => h.fastPath.handedOffConnections === 1)
    await expect(h.fastPath.close({ signal: AbortSignal.timeout(50) })).rejects.toMatchObject({
      code: 'SHOAL_ERR_ABORTED',
    })
    h.fastPath.closeAllConnections()
    await h.fastPath.close()
    expect(socket.destroyed || (await once(socket, 'close'))).toBeTruthy()
  })
})

// ---------------------------------------------------------------------------------------
// Differential test: the same bytes, split anywhere, must be answered as the same sequence
// of requests by (fast path + node:http) as by node:http alone. A desync (a request the fast
// path sees that node:http would not, or at another boundary) shows up as a difference.
// ---------------------------------------------------------------------------------------

describe('agrees with node:http on request boundaries', () => {
  it('sees the same requests, in the same order, as node:http alone, and answers them in order (property)', async () => {
    // What each side parsed as requests, in order: the fast path's answers, then node:http's.
    // (Requests, not responses: whether node:http still flushes queued responses when a
    // parse error closes the connection depends on timing.)
    const viaFastPath: string[] = []
    const viaNode: string[] = []
    const h = await startHarness({
      lookup: (req) => {
        if (!req.path.startsWith('/hit')) return undefined
        viaFastPath.push(`${req.method} ${req.path}`)
        return prepareResponse({
          headers: { 'x-req': `${req.method} ${req.path}` },
          body: `fast ${req.path}`,
        })
      },
      onSlow: (req) => viaFastPath.push(`${req.method} ${req.url}`),
    })
    const plain = http.createServer((req, res) => {
      viaNode.push(`${req.method} ${req.url}`)
      fallbackHandler()(req, res)
    })
    plain.listen(0, '127.0.0.1')
    await once(plain, 'listening')
    cleanups.push(async () => {
      plain.closeAllConnections()
      plain.close()
    })
    const plainPort = (plain.address() as net.AddressInfo).port

    const piece = fc.oneof(
      fc.constantFrom(
        'GET /hit/a HTTP/1.1\r\nHost: a\r\n\r\n',
        'HEAD /hit/b HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n',
        'GET /miss/c HTTP/1.1\r\nHost: a\r\n\r\n',
        'GET /hit/d HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nAccept-Encoding: gzip\r\n\r\n',
        'GET /hit/e HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nabcde',
        'GET /hit/f HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
        'GET /hit/g HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
        'GET /hit/h HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n',
        'GET /hit/i HTTP/1.1\nHost: a\n\n',
        'GET /hit/j HTTP/1.1\r\nHost : a\r\n\r\n',
        'GET /hit/k HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n',
        'GET /hit/l HTTP/1.1\r\nHost: a\r\nRange: bytes=0-1\r\n\r\n',
        'GET /hit/m HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n',
        'POST /hit/n HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nok',
        'GET /hit/o HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
        'GET /hit/p HTTP/1.1\r\nHost: a\r\nContent-Length: 40\r\n\r\n',
        'GET /hit/q HTTP/1.1\r\nHost: a\r\nUser-Agent: \x00\r\n\r\n',
        'XYZ\r\n\r\n',
        '\r\n',
      ),
      fc.uint8Array({ minLength: 1, maxLength: 12 }).map((b) => Buffer.from(b).toString('latin1')),
    )
    const send = async (port: number, bytes: Buffer, cuts: number[]): Promise<string[]> => {
      const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((x, y) => x - y)
      const chunks: Buffer[] = []
      let prev = 0
      for (const p of [...points, bytes.length]) {
        if (p > prev) chunks.push(bytes.subarray(prev, p))
        prev = p
      }
      const out = await exchange(port, chunks, { end: true, gapMs: 2, timeoutMs: 2000 })
      return parseResponses(out)
        .map((r) => r.headers['x-req'])
        .filter((x) => x !== undefined)
    }
    await fc.assert(
      fc.asyncProperty(
        fc.array(piece, { minLength: 1, maxLength: 6 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        async (pieces, cuts) => {
          viaFastPath.length = 0
          viaNode.length = 0
          const bytes = Buffer.from(pieces.join(''), 'latin1')
          const [answered] = await Promise.all([send(h.port, bytes, cuts), send(plainPort, bytes, cuts)])
          expect(viaFastPath).toEqual(viaNode)
          // Answers come in request order (some may be cut off by a parse error).
          expect(viaFastPath.slice(0, answered.length)).toEqual(answered)
        },
      ),
      { numRuns: 150 },
    )
    expect(h.fastPath.counters.requests).toBeGreaterThan(0)
    expect(h.fastPath.counters.handoffs).toBeGreaterThan(0)
  }, 120_000)
})

// A throwaway self-signed certificate for 127.0.0.1 (P-256, valid to 2126). Test-only key.
const TEST_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgEOMLNg/msO3bvuJp
oWzAqcURg5madUKdClCBQt+quLihRANCAAQPjMGMeJPoL4nZLC4vJYH4gbCFRl9C
epGtxD7zYsdG2FvQCRIeESKbWdXfAknkrXrJSxjMGJ4o38KtW7uFgAJE
-----END PRIVATE KEY-----
`
const TEST_CERT = `-----BEGIN CERTIFICATE-----
MIIBmzCCAUGgAwIBAgIUEwOS+pNMjIFH73kwlT9chJhQ144wCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyNDE1MjIwNVoYDzIxMjYxMDMx
MTUyMjA1WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAAQPjMGMeJPoL4nZLC4vJYH4gbCFRl9CepGtxD7zYsdG2FvQCRIeESKb
WdXfAknkrXrJSxjMGJ4o38KtW7uFgAJEo28wbTAdBgNVHQ4EFgQUQHijbCXn9UQ0
2unOWZ+VzP08CvEwHwYDVR0jBBgwFoAUQHijbCXn9UQ02unOWZ+VzP08CvEwDwYD
VR0TAQH/BAUwAwEB/zAaBgNVHREEEzARhwR/AAABgglsb2NhbGhvc3QwCgYIKoZI
zj0EAwIDSAAwRQIhAMcMCD3IorGyPDGILou88D1NDy4F7uPObt7bU/hHg1iNAiAv
3ZvsOLeRIlIIAYFuuXUazNHnDEvYLz7TrGd1jHsWJA==
-----END CERTIFICATE-----
`
