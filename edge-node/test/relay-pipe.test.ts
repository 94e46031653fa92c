/**
 * The relay's byte path (`meteredPipe` without caps, and a tunnel's `meteredTunnel` with
 * its reused download buffer): every byte counted once, both ways, on real sockets; an
 * end or a failure on either side ends the other and calls `done` once. Receipts are
 * paid from these counts, so they are checked to the byte.
 */
import { once } from 'node:events'
import http from 'node:http'
import net, { type AddressInfo } from 'node:net'
import { ticketId } from '@shoal/protocol'
import { ProxyAgent, request } from 'undici'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { createTokenBucket, type TokenBucket } from '../src/limits/token-bucket.ts'
import { createRelay, type Relay, relayAuthorization } from '../src/relay/index.ts'
import { meteredPipe } from '../src/relay/pipe.ts'
import { meteredTunnel, TUNNEL_READ_BYTES, tunnelDownstream } from '../src/relay/tunnel.ts'
import { pattern } from './helpers/pattern.ts'
import { issuer, makeTicket, type Origin, raw, startEcho, startOrigin } from './relay-helpers.ts'

/** A connected pair of TCP sockets on 127.0.0.1 and a way to close the listener. */
async function socketPair(
  connect: Partial<net.TcpNetConnectOpts> = {},
  allowHalfOpen = false,
): Promise<{ a: net.Socket; b: net.Socket; close(): void }> {
  const server = net.createServer({ allowHalfOpen })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const accepted = once(server, 'connection')
  const a = net.connect({ ...connect, host: '127.0.0.1', port: (server.address() as AddressInfo).port })
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

/**
 * `app ⇄ [client | relay | upstream] ⇄ dest`: the relay's two sockets of a tunnel, the
 * upstream made with the download side's `onread` buffer as the relay makes it.
 */
async function tunneled(
  buckets: TokenBucket[] = [],
  beforeStart?: (dest: net.Socket, upstream: net.Socket) => Promise<void>,
) {
  // the client's socket half-open, as the relay's HTTP server makes it
  const front = await socketPair({}, true)
  const downstream = tunnelDownstream()
  const back = await socketPair({ onread: downstream.onread, noDelay: true })
  await beforeStart?.(back.b, back.a)
  const up: number[] = []
  const down: number[] = []
  let calls = 0
  const done = new Promise<void>((resolve) => {
    meteredTunnel(
      front.b,
      back.a,
      downstream,
      buckets,
      (n) => up.push(n),
      (n) => down.push(n),
      () => {
        calls++
        resolve()
      },
    )
  })
  for (const s of [front.a, front.b, back.a, back.b]) s.on('error', () => {})
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0)
  return {
    app: front.a,
    client: front.b,
    upstream: back.a,
    dest: back.b,
    up: () => sum(up),
    down: () => sum(down),
    calls: () => calls,
    done,
    close() {
      for (const s of [front.a, front.b, back.a, back.b]) s.destroy()
      front.close()
      back.close()
    },
  }
}

/** Everything `s` delivers until its end or close. */
const collect = (s: net.Socket) =>
  new Promise<{ data: Buffer; ended: boolean }>((resolve) => {
    const parts: Buffer[] = []
    let ended = false
    s.on('data', (d: Buffer) => parts.push(d))
    s.once('end', () => {
      ended = true
    })
    s.once('close', () => resolve({ data: Buffer.concat(parts), ended }))
  })

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('meteredTunnel (download through one reused buffer)', () => {
  for (const capped of [false, true]) {
    it(`carries both ways intact through a stalled client, holding one buffer at most, counted to the byte${capped ? ' (under caps)' : ''}`, async () => {
      const t = await tunneled(capped ? [createTokenBucket({ rate: 2 ** 30 })] : [])
      try {
        const downData = pattern(24 * 2 ** 20 + 321, 3)
        const upData = pattern(3 * 2 ** 20 + 17, 5)
        // the app does not read at first: the kernel's buffers fill and the relay's writes stop completing at once
        t.app.pause()
        const gotDown = collect(t.app)
        const gotUp = collect(t.dest)
        t.dest.end(downData)
        t.app.end(upData)
        const held: number[] = []
        const read: number[] = []
        for (let i = 0; i < 20; i++) {
          await sleep(10)
          held.push(t.client.writableLength)
          read.push(t.upstream.bytesRead)
        }
        // a write of the buffer was pending (the path where reading must stop), never more than one buffer queued
        expect(Math.max(...held)).toBeGreaterThan(0)
        expect(Math.max(...held)).toBeLessThanOrEqual(TUNNEL_READ_BYTES)
        // reading stopped: the destination is held back, nothing is read and dropped
        expect(read.at(-1)).toBe(read.at(-5))
        expect(read.at(-1)).toBeLessThan(downData.length)
        expect(t.down()).toBe(t.upstream.bytesRead)
        t.app.resume()
        const [down, up] = await Promise.all([gotDown, gotUp])
        expect(down.ended).toBe(true)
        expect(down.data.equals(downData)).toBe(true)
        expect(up.data.equals(upData)).toBe(true)
        expect(t.down()).toBe(downData.length)
        expect(t.up()).toBe(upData.length)
        await t.done
        expect(t.calls()).toBe(1)
      } finally {
        t.close()
      }
    })
  }

  it('gives a stalled client every byte and an end after the destination ended, then is done once the client closes', async () => {
    const t = await tunneled()
    try {
      const data = pattern(2 ** 20 + 1, 9)
      t.app.pause()
      const got = collect(t.app)
      await new Promise<void>((resolve) => t.dest.end(data, () => resolve()))
      await sleep(50)
      // the destination is done sending; the client still owes bytes: the tunnel stays
      expect(t.calls()).toBe(0)
      expect(t.client.destroyed).toBe(false)
      t.app.resume()
      const { data: received, ended } = await got
      expect(ended).toBe(true)
      expect(received.equals(data)).toBe(true)
      expect(t.down()).toBe(data.length)
      // the app's own end closes the client's socket, which ends the tunnel
      await t.done
      expect(t.calls()).toBe(1)
    } finally {
      t.close()
    }
  })

  it('holds what the destination sent before the tunnel started and delivers it first', async () => {
    const early = pattern(1000, 41)
    const t = await tunneled([], async (dest, upstream) => {
      dest.write(early)
      // read into the buffer before there is anyone to give it to
      while (upstream.bytesRead < early.length) await sleep(5)
    })
    try {
      const got = collect(t.app)
      const later = pattern(300_000, 42)
      t.dest.end(later)
      await sleep(20)
      t.app.end()
      const { data } = await got
      expect(data.equals(Buffer.concat([early, later]))).toBe(true)
      expect(t.down()).toBe(early.length + later.length)
    } finally {
      t.close()
    }
  })

  it('tears both sides down once when the client aborts mid-transfer, having counted exactly what was read', async () => {
    const t = await tunneled()
    try {
      const destClosed = closed(t.dest)
      // the destination keeps sending until its socket goes away
      const chunk = pattern(2 ** 20, 11)
      const pump = () => {
        while (!t.dest.destroyed && t.dest.write(chunk));
      }
      t.dest.on('drain', pump)
      pump()
      let got = 0
      t.app.on('data', (d: Buffer) => {
        got += d.length
        if (got >= 3 * 2 ** 20) t.app.destroy()
      })
      await t.done
      await destClosed
      expect(t.client.destroyed).toBe(true)
      expect(t.upstream.destroyed).toBe(true)
      expect(got).toBeGreaterThanOrEqual(3 * 2 ** 20)
      expect(t.down()).toBe(t.upstream.bytesRead)
      expect(t.down()).toBeGreaterThanOrEqual(got)
      await sleep(20)
      expect(t.calls()).toBe(1)
    } finally {
      t.close()
    }
  })

  it('tears both sides down once when the destination resets mid-transfer', async () => {
    const t = await tunneled()
    try {
      const appClosed = collect(t.app)
      t.dest.write(pattern(2 ** 20, 13))
      while (t.down() < 2 ** 20) await sleep(5)
      // unread bytes from the client make the destination's close a reset
      t.app.write(Buffer.alloc(1000, 1))
      await sleep(20)
      t.dest.resetAndDestroy()
      await t.done
      const { data } = await appClosed
      expect(t.client.destroyed).toBe(true)
      expect(t.down()).toBe(2 ** 20)
      expect(data.length).toBe(2 ** 20)
      expect(t.up()).toBe(1000)
      expect(t.calls()).toBe(1)
    } finally {
      t.close()
    }
  })
})

describe('relay byte counts', () => {
  let relay: Relay
  let origin: Origin
  let echo: { port: number; close(): Promise<void> }
  let cut: http.Server
  let cutPort: number
  // `/SIZE/SEED` answers `pattern(SIZE, SEED)`, written in 1 MiB pieces with backpressure
  let patterned: http.Server
  let patternedUrl: string
  let patternedConnections = 0
  const patternedAnswers: { finished: boolean; closed: boolean }[] = []

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
    patterned = http.createServer(async (req, res) => {
      const [size, seed] = (req.url ?? '').split('/').slice(1).map(Number) as [number, number]
      const body = pattern(size, seed)
      const answer = { finished: false, closed: false }
      patternedAnswers.push(answer)
      res.once('close', () => {
        answer.closed = true
      })
      res.writeHead(200, { 'content-length': size })
      for (let at = 0; at < size && !res.destroyed; at += 2 ** 20)
        if (!res.write(body.subarray(at, at + 2 ** 20))) await once(res, 'drain').catch(() => {})
      res.end()
      res.once('finish', () => {
        answer.finished = true
      })
    })
    patterned.on('connection', () => patternedConnections++)
    patterned.listen(0, '127.0.0.1')
    await once(patterned, 'listening')
    patternedUrl = `http://127.0.0.1:${(patterned.address() as AddressInfo).port}`
    relay = createRelay({ port: 0, issuers: [issuer.address], egress: { allowCidrs: ['127.0.0.1/32'] } })
    await relay.start()
  })

  /** A new ticket and a dispatcher sending absolute-form requests through the relay with it. */
  const forwarding = async (options: { connections?: number } = {}) => {
    const ticket = await makeTicket()
    const dispatcher = new ProxyAgent({
      uri: relay.url,
      token: relayAuthorization(ticket),
      proxyTunnel: false,
      ...options,
    })
    return { ticket, dispatcher }
  }

  afterAll(async () => {
    await relay.stop()
    await origin.close()
    await echo.close()
    cut.closeAllConnections()
    cut.close()
    patterned.closeAllConnections()
    patterned.close()
  })

  it('forwards bodies intact to a slow reader over one reused upstream connection, metered to the byte', async () => {
    const { ticket, dispatcher } = await forwarding({ connections: 1 })
    const before = patternedConnections
    try {
      const size = 3 * 2 ** 20 + 7
      const downs: number[] = []
      for (const seed of [21, 22, 23]) {
        const was = relay.meter.get(ticketId(ticket.message))?.down ?? 0
        const res = await request(`${patternedUrl}/${size}/${seed}`, { dispatcher })
        const parts: Buffer[] = []
        let pieces = 0
        // the reader stalls now and then: the relay's socket to the client fills and the upstream waits
        for await (const chunk of res.body) {
          parts.push(chunk as Buffer)
          if (++pieces % 8 === 0) await sleep(15)
        }
        expect(Buffer.concat(parts).equals(pattern(size, seed))).toBe(true)
        downs.push(relay.meter.get(ticketId(ticket.message))!.down - was)
      }
      // the relay reused its connection to the destination (its read buffer with it)
      expect(patternedConnections - before).toBe(1)
      // each answer metered the same: the same head and the body, to the byte
      expect(new Set(downs).size).toBe(1)
      expect(downs[0]! - size).toBeGreaterThan(0)
      expect(downs[0]! - size).toBeLessThan(200)
    } finally {
      await dispatcher.close()
    }
  })

  it('lets go of the destination when the client aborts mid-body, metering what was read, and keeps serving', async () => {
    const { ticket, dispatcher } = await forwarding()
    try {
      const size = 64 * 2 ** 20
      const res = await request(`${patternedUrl}/${size}/31`, { dispatcher })
      const answer = patternedAnswers.at(-1)!
      let got = 0
      for await (const chunk of res.body) {
        got += (chunk as Buffer).length
        if (got >= 2 ** 20) break
      }
      // the relay closed its connection to the destination: the answer is cut short, not carried to its end
      await vi.waitFor(() => expect(answer.closed).toBe(true), { timeout: 5_000 })
      expect(answer.finished).toBe(false)
      const down = relay.meter.get(ticketId(ticket.message))!.down
      expect(down).toBeGreaterThanOrEqual(got)
      expect(down).toBeLessThan(size)
      const next = await request(`${patternedUrl}/1000/32`, { dispatcher })
      expect(Buffer.from(await next.body.arrayBuffer()).equals(pattern(1000, 32))).toBe(true)
    } finally {
      await dispatcher.close()
    }
  })

  it('meters a forwarded body to the byte', async () => {
    const { ticket, dispatcher } = await forwarding()
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
