/**
 * The fast path's streamed response over a real socket pair: framing as node:http does it,
 * and never a response the client could take for complete when it is not.
 */
import { once } from 'node:events'
import net from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterEach, describe, expect, it } from 'vitest'
import { FastPathResponse, type StreamOwner } from '../src/http/fast-path-stream.ts'

async function socketPair() {
  const server = net.createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1')
  const [accepted] = (await once(server, 'connection')) as [net.Socket]
  let received = ''
  client.on('data', (chunk) => {
    received += chunk.toString('latin1')
  })
  client.on('error', () => {})
  accepted.on('error', () => {})
  const done: boolean[] = []
  const owner: StreamOwner = {
    socket: accepted,
    responseDone: (_res, ok) => done.push(ok),
    countBytes: () => {},
  }
  return {
    owner,
    done,
    received: () => received,
    /** Waits until the client has `text`'s length (or 2 s), then returns what it got. */
    async settle(length: number) {
      for (let i = 0; i < 200 && received.length < length; i++) await sleep(10)
      return received
    },
    closed: () => once(client, 'close'),
    close() {
      client.destroy()
      accepted.destroy()
      server.close()
    },
  }
}

describe('FastPathResponse', () => {
  let pair: Awaited<ReturnType<typeof socketPair>> | undefined
  afterEach(() => pair?.close())

  it('frames with the given Content-Length, adds Date, and emits finish once flushed', async () => {
    pair = await socketPair()
    const res = new FastPathResponse(pair.owner, false, false)
    res.writeHead(200, { 'content-length': '10', 'x-a': ['1', '2'], connection: 'keep-alive' })
    expect(res.write('hello')).toBe(true)
    res.end(Buffer.from('world'))
    await once(res, 'finish')
    expect(res.writableFinished).toBe(true)
    const text = await pair.settle(100)
    expect(text).toMatch(
      /^HTTP\/1\.1 200 OK\r\ncontent-length: 10\r\nx-a: 1\r\nx-a: 2\r\ndate: .+ GMT\r\n\r\nhelloworld$/,
    )
    expect(text).not.toContain('connection')
    expect(pair.done).toEqual([true])
  })

  it('uses chunked coding without a length, and says Connection: close on a last response', async () => {
    pair = await socketPair()
    const res = new FastPathResponse(pair.owner, false, true)
    res.writeHead(200, { date: 'Tue, 24 Nov 2026 00:00:00 GMT' })
    res.write('abc')
    res.end()
    await once(res, 'finish')
    expect(await pair.settle(122)).toBe(
      'HTTP/1.1 200 OK\r\ndate: Tue, 24 Nov 2026 00:00:00 GMT\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
    )
  })

  it('sends no body for HEAD, 204 and 304', async () => {
    pair = await socketPair()
    const head = new FastPathResponse(pair.owner, true, false)
    head.writeHead(200, { 'content-length': '5', date: 'x' })
    head.write('hello')
    head.end()
    const empty = new FastPathResponse(pair.owner, false, false)
    empty.writeHead(304, { date: 'x' })
    empty.end()
    await once(empty, 'finish')
    expect(await pair.settle(94)).toBe(
      'HTTP/1.1 200 OK\r\ncontent-length: 5\r\ndate: x\r\n\r\nHTTP/1.1 304 Not Modified\r\ndate: x\r\n\r\n',
    )
  })

  it('aborts the connection when the body is longer or shorter than declared', async () => {
    pair = await socketPair()
    const long = new FastPathResponse(pair.owner, false, false)
    long.writeHead(200, { 'content-length': '2', date: 'x' })
    expect(long.write('abc')).toBe(false)
    expect(long.destroyed).toBe(true)
    await pair.closed()
    expect(pair.received()).toBe('')
    expect(pair.done).toEqual([false])
    pair.close()

    pair = await socketPair()
    const short = new FastPathResponse(pair.owner, false, false)
    short.writeHead(200, { 'content-length': '5', date: 'x' })
    short.write('ab')
    short.end()
    await pair.closed()
    expect(pair.received()).toBe('HTTP/1.1 200 OK\r\ncontent-length: 5\r\ndate: x\r\n\r\nab')
    expect(short.writableFinished).toBe(false)
    expect(pair.done).toEqual([false])
  })

  it('refuses header values with control characters, as node:http does', async () => {
    pair = await socketPair()
    const res = new FastPathResponse(pair.owner, false, false)
    expect(() => res.writeHead(200, { 'x-bad': 'a\r\nset-cookie: x' })).toThrow(TypeError)
    expect(() => res.writeHead(200, { 'x-bad': 'a\u0001b' })).toThrow(TypeError)
    expect(() => res.writeHead(200, { 'bad name': 'x' })).toThrow(TypeError)
  })
})
