/**
 * The relay's byte path (`meteredPipe` without caps): every byte counted once, both ways,
 * on real sockets; an end or a failure on either side ends the other and calls `done`
 * once. Receipts are paid from these counts, so they are checked to the byte.
 */
import { once } from 'node:events'
import http from 'node:http'
import net, { type AddressInfo } from 'node:net'
import { ticketId } from '@shoal/protocol'
import { ProxyAgent, request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRelay, type Relay, relayAuthorization } from '../src/relay/index.ts'
import { meteredPipe } from '../src/relay/pipe.ts'
import { issuer, makeTicket, type Origin, raw, startEcho, startOrigin } from './relay-helpers.ts'

/** A connected pair of TCP sockets on 127.0.0.1 and a way to close the listener. */
async function socketPair(): Promise<{ a: net.Socket; b: net.Socket; close(): void }> {
  const server = net.createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const accepted = once(server, 'connection')
  const a = net.connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port })
  const [b] = (await accepted) as [net.Socket]
  await once(a, 'connect')
  return { a, b, close: () => server.close() }
}

/** Resolves when `s` closed (errors included, which `once` would throw). */
const closed = (s: net.Socket) =>
  new Promise<void>((resolve) => {
    if (s.closed) resolve()
    else s.once('close', () => resolve())
  })

/** Sockets `from → [source ⇒ sink] → to`: writes on `from` cross the pipe and arrive on `to`. */
async function piped() {
  const left = await socketPair()
  const right = await socketPair()
  const counted: number[] = []
  const calls: (Error | null | undefined)[] = []
  const done = new Promise<Error | null | undefined>((resolve) => {
    meteredPipe(
      left.b,
      right.a,
      [],
      (n) => counted.push(n),
      (err) => {
        calls.push(err)
        resolve(err)
      },
    )
  })
  for (const s of [left.a, left.b, right.a, right.b]) s.on('error', () => {})
  // the far ends read and drop what arrives unless a test reads it itself
  right.b.resume()
  left.a.resume()
  return {
    from: left.a,
    source: left.b,
    sink: right.a,
    to: right.b,
    counted,
    calls,
    done,
    close() {
      for (const s of [left.a, left.b, right.a, right.b]) s.destroy()
      left.close()
      right.close()
    },
  }
}

describe('meteredPipe without caps', () => {
  it('carries and counts every byte once, through backpressure, and is done once the source ended', async () => {
    const p = await piped()
    try {
      const size = 8 * 2 ** 20 + 123
      const data = Buffer.alloc(size)
      for (let i = 0; i < size; i++) data[i] = i % 251
      // the far end reads slowly at first: the sink's buffer fills and the source is paused
      p.to.pause()
      p.to.removeAllListeners('data')
      p.from.end(data)
      await new Promise((r) => setTimeout(r, 50))
      const got: Buffer[] = []
      p.to.on('data', (d: Buffer) => got.push(d))
      p.to.resume()
      await once(p.to, 'end')
      expect(Buffer.concat(got).equals(data)).toBe(true)
      expect(p.counted.reduce((a, b) => a + b, 0)).toBe(size)
      expect(await p.done).toBeFalsy()
      await new Promise((r) => setTimeout(r, 20))
      expect(p.calls).toHaveLength(1)
    } finally {
      p.close()
    }
  })

  it('ends with an error and destroys the sink when the source fails mid-way', async () => {
    const p = await piped()
    try {
      p.from.write(Buffer.alloc(100_000, 1))
      while (p.counted.reduce((a, b) => a + b, 0) < 100_000) await new Promise((r) => setTimeout(r, 5))
      p.source.destroy(new Error('origin reset'))
      const err = await p.done
      expect(err).toBeInstanceOf(Error)
      await closed(p.to)
      expect(p.sink.destroyed).toBe(true)
      expect(p.calls).toHaveLength(1)
    } finally {
      p.close()
    }
  })

  it('ends with an error and destroys the source when the sink side goes away', async () => {
    const p = await piped()
    try {
      p.from.write(Buffer.alloc(10_000, 1))
      p.to.destroy()
      p.sink.destroy()
      const err = await p.done
      expect(err).toBeInstanceOf(Error)
      await closed(p.from)
      expect(p.source.destroyed).toBe(true)
      expect(p.calls).toHaveLength(1)
    } finally {
      p.close()
    }
  })
})

describe('relay byte counts', () => {
  let relay: Relay
  let origin: Origin
  let echo: { port: number; close(): Promise<void> }
  let cut: http.Server
  let cutPort: number

  beforeAll(async () => {
    origin = await startOrigin()
    echo = await startEcho()
    // promises 1 MiB, sends 100 000 bytes, then drops the connection
    cut = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-length': 2 ** 20 })
      res.write(Buffer.alloc(100_000, 9), () => setTimeout(() => res.socket?.destroy(), 20))
    })
    cut.listen(0, '127.0.0.1')
    await once(cut, 'listening')
    cutPort = (cut.address() as AddressInfo).port
    relay = createRelay({ port: 0, issuers: [issuer.address], egress: { allowCidrs: ['127.0.0.1/32'] } })
    await relay.start()
  })

  afterAll(async () => {
    await relay.stop()
    await origin.close()
    await echo.close()
    cut.closeAllConnections()
    cut.close()
  })

  it('meters a forwarded body to the byte', async () => {
    const ticket = await makeTicket()
    const dispatcher = new ProxyAgent({
      uri: relay.url,
      token: relayAuthorization(ticket),
      proxyTunnel: false,
    })
    try {
      const fetchBytes = async (n: number) => {
        const res = await request(`${origin.url}/bytes/${n}`, { dispatcher })
        expect((await res.body.arrayBuffer()).byteLength).toBe(n)
        return { ...relay.meter.get(ticketId(ticket.message))! }
      }
      const first = await fetchBytes(1_000_000)
      const second = await fetchBytes(3_000_001)
      // the same head both times (both lengths have 7 digits): what the second added, less the first, is the bodies' difference
      expect(second.down - first.down - first.down).toBe(3_000_001 - 1_000_000)
      expect(second.up).toBe(2 * first.up)
    } finally {
      await dispatcher.close()
    }
  })

  it('meters a tunnel to the byte both ways, 4 MiB each way', async () => {
    const ticket = await makeTicket()
    const c = await raw(
      Number(new URL(relay.url).port),
      `CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\nproxy-authorization: ${relayAuthorization(ticket)}\r\n\r\n`,
      { untilHead: true },
    )
    expect(c.status).toBe(200)
    c.socket.removeAllListeners('data')
    const size = 4 * 2 ** 20
    let got = 0
    const all = new Promise<void>((resolve) =>
      c.socket.on('data', (d: Buffer) => {
        got += d.length
        if (got >= size) resolve()
      }),
    )
    c.socket.write(Buffer.alloc(size, 5))
    await all
    c.socket.destroy()
    const usage = relay.meter.get(ticketId(ticket.message))!
    expect(got).toBe(size)
    expect(usage.up).toBe(size)
    expect(usage.down).toBe(size)
  })

  it('ends the client answer when the destination drops mid-body, and keeps serving', async () => {
    const a = await raw(
      Number(new URL(relay.url).port),
      `GET http://127.0.0.1:${cutPort}/ HTTP/1.1\r\nhost: x\r\nproxy-authorization: ${relayAuthorization(await makeTicket())}\r\n\r\n`,
    )
    // the relay closed the connection after what arrived: short of the promised length
    expect(a.status).toBe(200)
    expect(a.headers['content-length']).toBe(String(2 ** 20))
    expect(Buffer.byteLength(a.body, 'latin1')).toBe(100_000)
    const b = await raw(
      Number(new URL(relay.url).port),
      `GET ${origin.url}/bytes/10 HTTP/1.1\r\nhost: x\r\nproxy-authorization: ${relayAuthorization(await makeTicket())}\r\nconnection: close\r\n\r\n`,
    )
    expect(b.status).toBe(200)
    expect(b.body).toBe('\x07'.repeat(10))
  })
})
