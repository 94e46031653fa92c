/**
 * Origin-pull misses on the fast path (raw socket in, `createRawHttpUpstream` out), against
 * a raw TCP origin that frames its answers byte by byte: split heads, chunked bodies,
 * early closes, `Connection: close`, bodiless answers, keep-alive reuse.
 */
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Agent, request } from 'undici'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { parseCommand } from '../src/cli/args.ts'
import { resolveOptions } from '../src/config.ts'
import { createEdgeNode, type EdgeNode } from '../src/node.ts'
import { pattern } from './helpers/pattern.ts'

interface OriginRequest {
  method: string
  path: string
  head: string
  connection: number
}

/** Writes the answer to one request; may close the socket. */
type Answer = (req: OriginRequest, socket: net.Socket) => Promise<void> | void

/** A TCP origin that reads request heads (no bodies) in order and answers each by script. */
async function startRawOrigin(answer: Answer) {
  const requests: OriginRequest[] = []
  let connections = 0
  const sockets = new Set<net.Socket>()
  const server = net.createServer((socket) => {
    const id = ++connections
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    let buf = ''
    let busy = Promise.resolve()
    socket.on('data', (chunk) => {
      buf += chunk.toString('latin1')
      for (;;) {
        const end = buf.indexOf('\r\n\r\n')
        if (end < 0) return
        const head = buf.slice(0, end)
        buf = buf.slice(end + 4)
        const [method = '', path = ''] = head.split(' ')
        const req = { method, path, head, connection: id }
        requests.push(req)
        busy = busy.then(() => (socket.destroyed ? undefined : answer(req, socket)))
      }
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    requests,
    get connections() {
      return connections
    },
    async close() {
      for (const socket of sockets) socket.destroy()
      server.close()
    },
  }
}

const CACHEABLE = 'cache-control: public, max-age=600\r\n'

function fixed(body: string | Buffer, extra = ''): Buffer {
  const b = typeof body === 'string' ? Buffer.from(body) : body
  return Buffer.concat([
    Buffer.from(`HTTP/1.1 200 OK\r\n${CACHEABLE}${extra}content-length: ${b.length}\r\n\r\n`, 'latin1'),
    b,
  ])
}

/** Writes `bytes` in pieces cut at `cuts`, with a pause between them. */
async function writeSplit(socket: net.Socket, bytes: Buffer, cuts: number[]): Promise<void> {
  let from = 0
  for (const cut of [...cuts, bytes.length]) {
    socket.write(bytes.subarray(from, cut))
    from = cut
    await sleep(15)
  }
}

/** Sends raw bytes to the node and collects everything until the node closes or `ms` pass. */
async function rawExchange(url: string, text: string, ms = 1500): Promise<{ data: string; closed: boolean }> {
  const { port } = new URL(url)
  const socket = net.connect({ host: '127.0.0.1', port: Number(port) })
  let data = ''
  socket.on('data', (chunk) => {
    data += chunk.toString('latin1')
  })
  socket.on('error', () => {})
  await once(socket, 'connect')
  socket.write(text)
  const closed = await Promise.race([once(socket, 'close').then(() => true), sleep(ms).then(() => false)])
  socket.destroy()
  return { data, closed }
}

describe('the fast-miss option', () => {
  it('is on by default, and read from --fast-miss, SHOAL_FAST_MISS and the config file', () => {
    expect(resolveOptions({ dataDir: '/d' }).fastMiss).toBe(true)
    expect(parseCommand(['start', '--fast-miss', 'off'], {}, undefined)).toMatchObject({
      options: { fastMiss: false },
    })
    expect(parseCommand(['start'], { SHOAL_FAST_MISS: 'off' }, {})).toMatchObject({
      options: { fastMiss: false },
    })
    expect(parseCommand(['start'], {}, { fastMiss: 'on' })).toMatchObject({ options: { fastMiss: true } })
    expect(() => parseCommand(['start', '--fast-miss', 'maybe'], {}, undefined)).toThrow(
      expect.objectContaining({ code: 'SHOAL_ERR_INVALID_ARGUMENT' }),
    )
    expect(() => resolveOptions({ dataDir: '/d', fastMiss: 'yes' as never })).toThrow(
      expect.objectContaining({ code: 'SHOAL_ERR_INVALID_ARGUMENT' }),
    )
  })
})

describe('fast-path misses against a raw TCP origin', () => {
  let dataDir: string
  let node: EdgeNode | undefined
  let origin: Awaited<ReturnType<typeof startRawOrigin>> | undefined

  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'shoal-fast-miss-'))
  })

  afterEach(async () => {
    await node?.stop()
    await origin?.close()
    node = undefined
    origin = undefined
    await rm(dataDir, { recursive: true, force: true })
  })

  const start = async (answer: Answer, fastMiss = true) => {
    origin = await startRawOrigin(answer)
    node = createEdgeNode({
      dataDir,
      host: '127.0.0.1',
      port: 0,
      defaultOrigin: origin.url,
      fastMiss,
      sites: [{ name: 'blog', origin: `${origin.url}/blog` }],
    })
    await node.start()
    return { node, origin }
  }

  const counter = async (name: string): Promise<number> => {
    // its own connection: a /metrics request hands its connection to node:http for good
    const agent = new Agent()
    const text = await (await request(`${node!.url}/metrics`, { dispatcher: agent })).body.text()
    await agent.close()
    const line = text.split('\n').find((l) => l.startsWith(`${name} `))
    return Number(line?.split(' ')[1] ?? Number.NaN)
  }

  const get = async (path: string, headers: Record<string, string> = {}) => {
    const res = await request(`${node!.url}${path}`, { headers })
    return { status: res.statusCode, headers: res.headers, body: Buffer.from(await res.body.arrayBuffer()) }
  }

  it('streams a miss whose head arrives split, stores it, and serves the next request as a fast hit', async () => {
    await start(async (_req, socket) => {
      const bytes = fixed(
        'hello, edge',
        'content-type: text/plain\r\nconnection: keep-alive\r\nkeep-alive: timeout=5\r\n',
      )
      await writeSplit(socket, bytes, [9, 30, 31, bytes.length - 3])
    })
    const first = await get('/a.txt', { 'user-agent': 'test', accept: '*/*' })
    expect(first.status).toBe(200)
    expect(first.body.toString()).toBe('hello, edge')
    expect(first.headers['x-cache']).toBe('MISS')
    expect(first.headers.via).toBe('1.1 shoal')
    expect(first.headers['content-type']).toBe('text/plain')
    expect(first.headers['keep-alive']).not.toBe('timeout=5') // hop-by-hop, removed
    expect(await counter('shoal_edge_fast_path_streamed_total')).toBe(1)
    // the request the origin saw: hop-by-hop fields gone, Via appended, its own Host
    const seen = origin!.requests[0]!
    expect(seen.head).toMatch(/^GET \/a\.txt HTTP\/1\.1\r\nhost: 127\.0\.0\.1:\d+\r\n/)
    expect(seen.head).toContain('via: 1.1 shoal')
    expect(seen.head).toContain('user-agent: test')
    expect(seen.head).toContain('accept-encoding: identity')
    await sleep(50) // the fill commits just after the client's response ends
    const second = await get('/a.txt')
    expect(second.headers['x-cache']).toBe('HIT')
    expect(second.body.toString()).toBe('hello, edge')
    expect(origin!.requests).toHaveLength(1)
    expect(await counter('shoal_edge_fast_path_handoffs_total')).toBe(2) // the two /metrics requests
    expect(await counter('shoal_edge_fast_path_responses_total')).toBe(1)
  })

  it('decodes a chunked body (extensions, trailers, awkward cuts) and stores it with its length', async () => {
    const body = pattern(70_000)
    await start(async (_req, socket) => {
      const head = `HTTP/1.1 200 OK\r\n${CACHEABLE}transfer-encoding: chunked\r\ntrailer: x-sum\r\n\r\n`
      const parts = [body.subarray(0, 1), body.subarray(1, 40_000), body.subarray(40_000)]
      const pieces: Buffer[] = [Buffer.from(head, 'latin1')]
      for (const [i, part] of parts.entries()) {
        pieces.push(Buffer.from(`${part.length.toString(16)}${i === 1 ? ';ext=1' : ''}\r\n`, 'latin1'), part)
        pieces.push(Buffer.from('\r\n', 'latin1'))
      }
      pieces.push(Buffer.from('0\r\nx-sum: 1\r\n\r\n', 'latin1'))
      const bytes = Buffer.concat(pieces)
      await writeSplit(socket, bytes, [
        head.length - 1,
        head.length + 2,
        head.length + 4,
        bytes.length - 7,
        bytes.length - 1,
      ])
    })
    const first = await get('/chunked')
    expect(first.status).toBe(200)
    expect(first.body.equals(body)).toBe(true)
    expect(first.headers['x-cache']).toBe('MISS')
    const second = await get('/chunked')
    expect(second.headers['x-cache']).toBe('HIT')
    expect(second.headers['content-length']).toBe(String(body.length))
    expect(second.body.equals(body)).toBe(true)
    expect(origin!.requests).toHaveLength(1)
  })

  it('aborts the client response and caches nothing when the origin closes mid-body', async () => {
    let calls = 0
    await start(async (_req, socket) => {
      calls++
      const body = pattern(100_000)
      const bytes = fixed(body)
      if (calls === 1) {
        socket.write(bytes.subarray(0, 20_000))
        await sleep(20)
        socket.destroy()
      } else socket.write(bytes)
    })
    const { data, closed } = await rawExchange(node!.url, 'GET /big HTTP/1.1\r\nHost: x\r\n\r\n')
    expect(closed).toBe(true)
    expect(data).toMatch(/^HTTP\/1\.1 200 OK\r\n/)
    expect(data).toContain('content-length: 100000')
    expect(data.length - data.indexOf('\r\n\r\n') - 4).toBeLessThan(100_000)
    // nothing was stored: the next request goes to the origin again, and gets it all
    const again = await get('/big')
    expect(again.headers['x-cache']).toBe('MISS')
    expect(again.body.equals(pattern(100_000))).toBe(true)
    expect(origin!.requests).toHaveLength(2)
  })

  it('reuses a kept-alive origin connection, and opens a new one after Connection: close', async () => {
    await start((req, socket) => {
      const close = req.path === '/close-me'
      socket.write(fixed(`body of ${req.path}`, close ? 'connection: close\r\n' : ''))
      if (close) socket.end()
    })
    expect((await get('/one')).body.toString()).toBe('body of /one')
    expect((await get('/two')).body.toString()).toBe('body of /two')
    expect(origin!.connections).toBe(1)
    expect((await get('/close-me')).body.toString()).toBe('body of /close-me')
    expect((await get('/three')).body.toString()).toBe('body of /three')
    expect(origin!.connections).toBe(2)
    expect(origin!.requests.map((r) => r.connection)).toEqual([1, 1, 1, 2])
    expect(await counter('shoal_edge_fast_path_streamed_total')).toBe(4)
  })

  it('retries once on a new connection when a kept-alive one was closed by the origin', async () => {
    await start((req, socket) => {
      socket.write(fixed(`body of ${req.path}`))
      // closes quietly after answering, without saying so: the client's idle socket goes stale
      setTimeout(() => socket.destroy(), 20)
    })
    expect((await get('/x')).body.toString()).toBe('body of /x')
    await sleep(60)
    expect((await get('/y')).body.toString()).toBe('body of /y')
    expect(origin!.requests).toHaveLength(2)
  })

  it('passes 204 and 304 on without a body, keeping the connection in step', async () => {
    await start((req, socket) => {
      if (req.path === '/empty') socket.write(`HTTP/1.1 204 No Content\r\n${CACHEABLE}\r\n`)
      else if (req.path === '/same') socket.write('HTTP/1.1 304 Not Modified\r\netag: "v1"\r\n\r\n')
      else socket.write(fixed('after'))
    })
    const { data } = await rawExchange(
      node!.url,
      'GET /empty HTTP/1.1\r\nHost: x\r\n\r\nGET /same HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n',
      600,
    )
    const responses = data.split(/(?=HTTP\/1\.1 )/)
    expect(responses).toHaveLength(3)
    expect(responses[0]).toMatch(/^HTTP\/1\.1 204 No Content\r\n/)
    expect(responses[0]).toMatch(/\r\n\r\n$/)
    expect(responses[0]).not.toContain('transfer-encoding')
    expect(responses[1]).toMatch(/^HTTP\/1\.1 304 Not Modified\r\n/)
    expect(responses[1]).toMatch(/\r\n\r\n$/)
    expect(responses[2]).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nafter$/)
    // same origin connection throughout: the bodiless answers were framed right
    expect(new Set(origin!.requests.map((r) => r.connection)).size).toBe(1)
  })

  it('answers HEAD misses without a body', async () => {
    await start((req, socket) => {
      socket.write(
        `HTTP/1.1 200 OK\r\n${CACHEABLE}content-length: 5\r\n\r\n${req.method === 'HEAD' ? '' : 'hello'}`,
      )
    })
    const { data } = await rawExchange(
      node!.url,
      'HEAD /h HTTP/1.1\r\nHost: x\r\n\r\nGET /h HTTP/1.1\r\nHost: x\r\n\r\n',
      600,
    )
    const responses = data.split(/(?=HTTP\/1\.1 )/)
    expect(responses).toHaveLength(2)
    expect(responses[0]).toMatch(/content-length: 5\r\n/i)
    expect(responses[0]).toMatch(/\r\n\r\n$/)
    expect(responses[1]).toMatch(/\r\n\r\nhello$/)
    expect(origin!.requests.map((r) => r.method)).toEqual(['HEAD', 'GET'])
    expect(await counter('shoal_edge_fast_path_streamed_total')).toBe(2)
  })

  it('answers pipelined requests in order: a miss, then the hit it made', async () => {
    await start(async (_req, socket) => {
      await sleep(30)
      socket.write(fixed('pipelined body'))
    })
    const { data } = await rawExchange(
      node!.url,
      'GET /p HTTP/1.1\r\nHost: x\r\n\r\nGET /p HTTP/1.1\r\nHost: x\r\n\r\nGET /p HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    )
    const responses = data.split(/(?=HTTP\/1\.1 )/)
    expect(responses).toHaveLength(3)
    expect(responses[0]).toContain('x-cache: MISS')
    expect(responses[1]).toContain('x-cache: HIT')
    for (const r of responses) expect(r).toMatch(/\r\n\r\npipelined body$/)
    expect(origin!.requests).toHaveLength(1)
  })

  it('coalesces concurrent misses of one object into one origin request', async () => {
    const body = pattern(64 * 1024)
    await start(async (_req, socket) => {
      await sleep(150)
      socket.write(fixed(body))
    })
    const results = await Promise.all(Array.from({ length: 5 }, () => get('/same-object')))
    for (const r of results) {
      expect(r.status).toBe(200)
      expect(r.body.equals(body)).toBe(true)
    }
    expect(origin!.requests).toHaveLength(1)
  })

  it('reads a close-delimited body to the end of the connection', async () => {
    await start((_req, socket) => {
      socket.end(`HTTP/1.1 200 OK\r\n${CACHEABLE}\r\nuntil the end`)
    })
    const first = await get('/eof')
    expect(first.body.toString()).toBe('until the end')
    expect(first.headers['transfer-encoding']).toBe('chunked')
    const second = await get('/eof')
    expect(second.headers['x-cache']).toBe('HIT')
    expect(second.body.toString()).toBe('until the end')
  })

  it('answers 502 JSON for a malformed origin head, a switch of protocols or conflicting framing', async () => {
    await start((req, socket) => {
      if (req.path === '/bad-header')
        socket.write('HTTP/1.1 200 OK\r\nbad header\r\ncontent-length: 1\r\n\r\nx')
      else if (req.path === '/bad-status') socket.write('HTTP/1.1 2x0 OK\r\ncontent-length: 1\r\n\r\nx')
      else if (req.path === '/bare-lf')
        socket.write('HTTP/1.1 200 OK\r\nx-a: 1\nx-b: 2\r\ncontent-length: 1\r\n\r\nx')
      else if (req.path === '/upgrade') socket.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: x\r\n\r\n')
      else if (req.path === '/both')
        socket.write(
          'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
        )
      else socket.write(`HTTP/1.1 200 OK\r\nx-big: ${'a'.repeat(20_000)}\r\ncontent-length: 1\r\n\r\nx`)
    })
    for (const path of ['/bad-header', '/bad-status', '/bare-lf', '/upgrade', '/both', '/huge-head']) {
      const res = await get(path)
      expect(res.status, path).toBe(502)
      expect(JSON.parse(res.body.toString()).error.code, path).toBe('SHOAL_ERR_UPSTREAM')
    }
    expect(origin!.requests).toHaveLength(6)
  })

  it('skips interim 1xx answers', async () => {
    await start((_req, socket) => {
      socket.write('HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\n')
      socket.write(fixed('final'))
    })
    const res = await get('/hints')
    expect(res.status).toBe(200)
    expect(res.body.toString()).toBe('final')
  })

  it('serves origin-pull sites too, and leaves misses to node:http when turned off', async () => {
    await start((req, socket) => {
      socket.write(fixed(`site ${req.path}`))
    }, false)
    const res = await get('/s/blog/post')
    expect(res.body.toString()).toBe('site /blog/post')
    expect(await counter('shoal_edge_fast_path_streamed_total')).toBe(0)
    expect(await counter('shoal_edge_fast_path_handoffs_total')).toBeGreaterThan(0)
  })

  it('takes site misses on the fast path when on', async () => {
    await start((req, socket) => {
      socket.write(fixed(`site ${req.path}`))
    })
    const res = await get('/s/blog/post?x=1')
    expect(res.body.toString()).toBe('site /blog/post?x=1')
    expect(res.headers['x-cache']).toBe('MISS')
    expect(await counter('shoal_edge_fast_path_streamed_total')).toBe(1)
    expect((await get('/s/blog/post?x=1')).headers['x-cache']).toBe('HIT')
  })

  it('streams a presized body to a client that reads late, and stores every byte of it', async () => {
    const body = pattern(900 * 1024, 3)
    await start(async (_req, socket) => {
      await writeSplit(socket, fixed(body), [100, 70_000, 300_000, 600_000])
    })
    const { port } = new URL(node!.url)
    const client = net.connect({ host: '127.0.0.1', port: Number(port) })
    await once(client, 'connect')
    client.pause()
    client.write('GET /big.bin HTTP/1.1\r\nhost: x\r\n\r\n')
    // not reading while the origin sends it all: the node must hold or pause, not lose bytes
    await sleep(400)
    const pieces: Buffer[] = []
    let total = 0
    const headEnd = (): number => Buffer.concat(pieces).indexOf('\r\n\r\n')
    client.on('data', (chunk: Buffer) => {
      pieces.push(chunk)
      total += chunk.length
    })
    client.resume()
    for (let i = 0; i < 200 && (headEnd() < 0 || total - headEnd() - 4 < body.length); i++) await sleep(25)
    client.destroy()
    const all = Buffer.concat(pieces)
    expect(all.subarray(0, headEnd()).toString('latin1')).toMatch(/^HTTP\/1\.1 200 /)
    expect(all.subarray(headEnd() + 4).equals(body)).toBe(true)
    await sleep(50)
    const again = await get('/big.bin')
    expect(again.headers['x-cache']).toBe('HIT')
    expect(again.body.equals(body)).toBe(true)
    expect(origin!.requests).toHaveLength(1)
  })

  it('answers 504 when the origin does not answer in time', async () => {
    origin = await startRawOrigin(() => {})
    node = createEdgeNode({
      dataDir,
      host: '127.0.0.1',
      port: 0,
      defaultOrigin: origin.url,
      upstreamHeadersTimeoutMs: 150,
    })
    await node.start()
    const res = await get('/slow')
    expect(res.status).toBe(504)
    expect(JSON.parse(res.body.toString()).error.code).toBe('SHOAL_ERR_UPSTREAM_TIMEOUT')
  })
})
