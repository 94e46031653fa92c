/**
 * The raw keep-alive HTTP/1.1 origin client, against raw TCP servers on 127.0.0.1.
 */
import { once } from 'node:events'
import net from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterEach, describe, expect, it } from 'vitest'
import { createRawHttpUpstream, type RawHttpUpstream } from '../src/upstream/raw-http-upstream.ts'

/** A server that answers each request head with `answer`, and tells how sockets come and go. */
async function server(answer: (path: string, socket: net.Socket) => void) {
  const events: string[] = []
  let connections = 0
  const sockets = new Set<net.Socket>()
  const srv = net.createServer((socket) => {
    const id = ++connections
    sockets.add(socket)
    socket.on('error', () => {})
    socket.on('close', () => {
      sockets.delete(socket)
      events.push(`close ${id}`)
    })
    let buf = ''
    socket.on('data', (chunk) => {
      buf += chunk.toString('latin1')
      for (let end = buf.indexOf('\r\n\r\n'); end >= 0; end = buf.indexOf('\r\n\r\n')) {
        const path = buf.slice(0, end).split(' ')[1] ?? ''
        buf = buf.slice(end + 4)
        events.push(`request ${id} ${path}`)
        answer(path, socket)
      }
    })
  })
  srv.listen(0, '127.0.0.1')
  await once(srv, 'listening')
  return {
    url: `http://127.0.0.1:${(srv.address() as net.AddressInfo).port}`,
    events,
    close() {
      for (const s of sockets) s.destroy()
      srv.close()
    },
  }
}

async function text(body: AsyncIterable<Buffer>): Promise<string> {
  let out = ''
  for await (const chunk of body) out += chunk.toString('latin1')
  return out
}

describe('raw HTTP/1.1 upstream client', () => {
  let client: RawHttpUpstream | undefined
  let srv: Awaited<ReturnType<typeof server>> | undefined
  afterEach(async () => {
    await client?.close()
    srv?.close()
    client = undefined
    srv = undefined
  })
  const make = (over: Partial<Parameters<typeof createRawHttpUpstream>[0]> = {}) => {
    client = createRawHttpUpstream({
      connectTimeoutMs: 1000,
      headersTimeoutMs: 1000,
      bodyTimeoutMs: 1000,
      ...over,
    })
    return client
  }

  it('reuses a socket only once its response was read to the end', async () => {
    srv = await server((path, socket) => {
      socket.write(`HTTP/1.1 200 OK\r\ncontent-length: ${path.length}\r\nx-dup: a\r\nx-dup: b\r\n\r\n/`)
      setTimeout(() => socket.write(path.slice(1)), 50)
    })
    const raw = make()
    const a = await raw.request(`${srv.url}/first`, { method: 'GET' })
    expect(a.status).toBe(200)
    expect(a.headers['x-dup']).toEqual(['a', 'b'])
    // the first body has not all arrived yet: a second request needs a second socket
    const b = await raw.request(`${srv.url}/second`, { method: 'GET' })
    expect(await text(a.body)).toBe('/first')
    expect(await text(b.body)).toBe('/second')
    const c = await raw.request(`${srv.url}/third`, { method: 'GET' })
    expect(await text(c.body)).toBe('/third')
    expect(srv.events.filter((e) => e.startsWith('request'))).toEqual([
      'request 1 /first',
      'request 2 /second',
      expect.stringMatching(/^request [12] \/third$/),
    ])
    expect(raw.sockets).toBe(2)
  })

  it('closes the socket of a body its consumer abandons', async () => {
    srv = await server((_path, socket) => {
      socket.write('HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\n')
      socket.write(Buffer.alloc(10_000, 1))
    })
    const raw = make()
    const res = await raw.request(`${srv.url}/big`, { method: 'GET' })
    for await (const chunk of res.body) {
      expect(chunk.length).toBeGreaterThan(0)
      break
    }
    for (let i = 0; i < 50 && !srv.events.includes('close 1'); i++) await sleep(10)
    expect(srv.events).toContain('close 1')
    expect(raw.sockets).toBe(0)
  })

  it('fails the body with UpstreamError when the origin closes mid-body, and does not reuse the socket', async () => {
    srv = await server((path, socket) => {
      if (path === '/cut') {
        socket.write('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly this')
        setTimeout(() => socket.destroy(), 10)
      } else socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok')
    })
    const raw = make()
    const res = await raw.request(`${srv.url}/cut`, { method: 'GET' })
    await expect(text(res.body)).rejects.toMatchObject({ code: 'SHOAL_ERR_UPSTREAM' })
    const next = await raw.request(`${srv.url}/ok`, { method: 'GET' })
    expect(await text(next.body)).toBe('ok')
    expect(srv.events).toContain('request 2 /ok')
  })

  it('does not reuse a socket whose origin sent bytes past the response', async () => {
    srv = await server((_path, socket) => {
      socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokEXTRA')
    })
    const raw = make()
    expect(await text((await raw.request(`${srv.url}/a`, { method: 'GET' })).body)).toBe('ok')
    expect(await text((await raw.request(`${srv.url}/b`, { method: 'GET' })).body)).toBe('ok')
    expect(srv.events.filter((e) => e.startsWith('request'))).toEqual(['request 1 /a', 'request 2 /b'])
  })

  it('answers HEAD without reading a body, and keeps the socket', async () => {
    srv = await server((_path, socket) => {
      socket.write('HTTP/1.1 200 OK\r\ncontent-length: 5000\r\n\r\n')
    })
    const raw = make()
    const res = await raw.request(`${srv.url}/h`, { method: 'HEAD' })
    expect(res.headers['content-length']).toBe('5000')
    expect(await text(res.body)).toBe('')
    expect(await text((await raw.request(`${srv.url}/h2`, { method: 'HEAD' })).body)).toBe('')
    expect(srv.events.filter((e) => e.startsWith('request'))).toEqual(['request 1 /h', 'request 1 /h2'])
  })

  it('times out a head that does not come, and a body that stalls', async () => {
    srv = await server((path, socket) => {
      if (path === '/stall') socket.write('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc')
    })
    const raw = make({ headersTimeoutMs: 100, bodyTimeoutMs: 100 })
    await expect(raw.request(`${srv.url}/never`, { method: 'GET' })).rejects.toMatchObject({
      code: 'SHOAL_ERR_UPSTREAM_TIMEOUT',
    })
    const res = await raw.request(`${srv.url}/stall`, { method: 'GET' })
    await expect(text(res.body)).rejects.toMatchObject({ code: 'SHOAL_ERR_UPSTREAM_TIMEOUT' })
  })

  it('bounds the sockets per origin: requests beyond wait for a free one', async () => {
    srv = await server((path, socket) => {
      setTimeout(() => socket.write(`HTTP/1.1 200 OK\r\ncontent-length: ${path.length}\r\n\r\n${path}`), 20)
    })
    const raw = make({ connections: 2 })
    const bodies = await Promise.all(
      ['/1', '/2', '/3', '/4', '/5'].map(async (p) =>
        text((await raw.request(`${srv!.url}${p}`, { method: 'GET' })).body),
      ),
    )
    expect(bodies).toEqual(['/1', '/2', '/3', '/4', '/5'])
    expect(srv.events.filter((e) => e.startsWith('request')).every((e) => /^request [12] /.test(e))).toBe(
      true,
    )
  })

  it('drops a waiting request aborted by its signal without losing the socket slot', async () => {
    srv = await server((path, socket) => {
      setTimeout(() => socket.write(`HTTP/1.1 200 OK\r\ncontent-length: ${path.length}\r\n\r\n${path}`), 30)
    })
    const raw = make({ connections: 1 })
    const first = raw.request(`${srv.url}/first`, { method: 'GET' })
    const controller = new AbortController()
    const waiting = raw.request(`${srv.url}/aborted`, { method: 'GET', signal: controller.signal })
    controller.abort()
    await expect(waiting).rejects.toMatchObject({ code: 'SHOAL_ERR_ABORTED' })
    expect(await text((await first).body)).toBe('/first')
    expect(await text((await raw.request(`${srv.url}/third`, { method: 'GET' })).body)).toBe('/third')
    expect(srv.events.filter((e) => e.startsWith('request'))).toEqual([
      'request 1 /first',
      'request 1 /third',
    ])
  })

  it('presizes a body of known length: its pieces are views of one buffer, intact after later reads', async () => {
    const body = Buffer.alloc(200 * 1024)
    for (let i = 0; i < body.length; i++) body[i] = (i * 31 + (i >>> 8)) & 0xff
    srv = await server((path, socket) => {
      const n = path === '/longer' ? body.length - 1000 : body.length
      socket.write(`HTTP/1.1 200 OK\r\ncontent-length: ${n}\r\n\r\n`)
      // in pieces, apart, so the client reads (into its one reused buffer) many times
      let at = 0
      const next = (): void => {
        socket.write(body.subarray(at, at + 30_000))
        at += 30_000
        if (at < body.length) setTimeout(next, 2)
      }
      next()
    })
    const raw = make()
    const pieces: Buffer[] = []
    for await (const piece of (await raw.request(`${srv.url}/exact`, { method: 'GET' })).body)
      pieces.push(piece)
    expect(pieces.length).toBeGreaterThan(1)
    let offset = 0
    for (const piece of pieces) {
      expect(piece.buffer.byteLength).toBe(body.length)
      expect(piece.byteOffset).toBe(offset)
      offset += piece.length
    }
    expect(Buffer.concat(pieces).equals(body)).toBe(true)

    // Bytes past the declared length are not the body's (and not written into it).
    const longer: Buffer[] = []
    for await (const piece of (await raw.request(`${srv.url}/longer`, { method: 'GET' })).body)
      longer.push(piece)
    expect(longer[0]?.buffer.byteLength).toBe(body.length - 1000)
    expect(Buffer.concat(longer).equals(body.subarray(0, body.length - 1000))).toBe(true)
  })

  it('fails a presized body cut short with UpstreamError', async () => {
    srv = await server((_path, socket) => {
      socket.write('HTTP/1.1 200 OK\r\ncontent-length: 5000\r\n\r\n')
      socket.end(Buffer.alloc(3000, 7))
    })
    const res = await make().request(`${srv.url}/short`, { method: 'GET' })
    await expect(text(res.body)).rejects.toMatchObject({ code: 'SHOAL_ERR_UPSTREAM' })
  })

  it('copies each piece out of its read buffer when not presized (chunked, or past presizeBodyBytes)', async () => {
    const body = Buffer.alloc(300 * 1024)
    for (let i = 0; i < body.length; i++) body[i] = (i * 7 + (i >>> 10)) & 0xff
    srv = await server((path, socket) => {
      const chunked = path === '/chunked'
      socket.write(
        `HTTP/1.1 200 OK\r\n${chunked ? 'transfer-encoding: chunked' : `content-length: ${body.length}`}\r\n\r\n`,
      )
      let at = 0
      const next = (): void => {
        const piece = body.subarray(at, at + 20_000)
        socket.write(
          chunked
            ? Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')])
            : piece,
        )
        at += 20_000
        if (at < body.length) setTimeout(next, 2)
        else if (chunked) socket.write('0\r\n\r\n')
      }
      next()
    })
    const raw = make({ presizeBodyBytes: 1000 })
    for (const path of ['/chunked', '/large']) {
      const pieces: Buffer[] = []
      for await (const piece of (await raw.request(`${srv.url}${path}`, { method: 'GET' })).body)
        pieces.push(piece)
      expect(pieces.length).toBeGreaterThan(1)
      // held across later reads, every piece still has its own bytes
      expect(Buffer.concat(pieces).equals(body)).toBe(true)
      expect(new Set(pieces.map((p) => p.buffer)).size).toBeGreaterThan(1)
    }
  })

  it('stops reading while the consumer lags, and hands on every byte intact when it catches up', async () => {
    const size = 32 * 1024 * 1024
    const body = Buffer.allocUnsafe(size)
    for (let i = 0; i < size; i += 4) body.writeUInt32LE(i, i)
    let origin: net.Socket | undefined
    srv = await server((_path, socket) => {
      origin = socket
      socket.write(`HTTP/1.1 200 OK\r\ncontent-length: ${size}\r\n\r\n`)
      socket.write(body)
    })
    const res = await make({ bodyTimeoutMs: 30_000 }).request(`${srv.url}/big`, { method: 'GET' })
    // Not read at all for now: wait until the origin's unsent bytes stop shrinking.
    let left = -1
    for (let round = 0; round < 100; round++) {
      await sleep(50)
      const now = origin?.writableLength ?? 0
      if (now === left && now > 0) break
      left = now
    }
    // the client stopped reading long before the end (a queue's worth plus the kernel's buffers)
    expect(origin?.writableLength).toBeGreaterThan(size / 2)
    const iterator = res.body[Symbol.asyncIterator]()
    let offset = 0
    let bad = -1
    for (let r = await iterator.next(); !r.done; r = await iterator.next()) {
      const piece = r.value as Buffer
      if (bad < 0 && !piece.equals(body.subarray(offset, offset + piece.length))) bad = offset
      offset += piece.length
    }
    expect(bad).toBe(-1)
    expect(offset).toBe(size)
  })

  it('refuses what it does not speak with InvalidArgumentError, and connection failures with UpstreamError', async () => {
    const raw = make()
    await expect(raw.request('https://127.0.0.1:1/x', { method: 'GET' })).rejects.toMatchObject({
      code: 'SHOAL_ERR_INVALID_ARGUMENT',
    })
    await expect(raw.request('http://127.0.0.1:1/x', { method: 'POST' })).rejects.toMatchObject({
      code: 'SHOAL_ERR_INVALID_ARGUMENT',
    })
    await expect(
      raw.request('http://127.0.0.1:1/x', { method: 'GET', headers: { 'x-evil': 'a\r\nhost: b' } }),
    ).rejects.toMatchObject({ code: 'SHOAL_ERR_INVALID_ARGUMENT' })
    const closed = net.createServer()
    closed.listen(0, '127.0.0.1')
    await once(closed, 'listening')
    const port = (closed.address() as net.AddressInfo).port
    closed.close()
    await once(closed, 'close')
    await expect(raw.request(`http://127.0.0.1:${port}/x`, { method: 'GET' })).rejects.toMatchObject({
      code: 'SHOAL_ERR_UPSTREAM',
    })
  })
})
