import { EventEmitter } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Registry } from 'prom-client'
import { ProxyAgent, request } from 'undici'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { createEdgeNode } from '../src/node.ts'
import { createRelay, type Relay, relayAuthorization, relayMultiaddr } from '../src/relay/index.ts'
import {
  client,
  issuer,
  makeTicket,
  type Origin,
  raw,
  startEcho,
  startOrigin,
  tableResolver,
} from './relay-helpers.ts'

const PUBLIC = '93.184.216.34'
const resolver = tableResolver({
  'allowed.test': ['127.0.0.1'],
  'public.test': [PUBLIC],
  'evil.test': [PUBLIC],
  'local.test': ['127.0.0.2'],
  'ten.test': ['10.1.2.3'],
  'mixed.test': [PUBLIC, '10.0.0.1'],
  'v6local.test': ['::1'],
  'mapped.test': ['::ffff:127.0.0.1'],
  'own.test': ['203.0.114.9'],
  'deniedcidr.test': ['198.20.0.1'],
  'meta.test': ['169.254.169.254'],
})

let origin: Origin
let echo: { port: number; close(): Promise<void> }
let relay: Relay
let auth: string
let relayPort: number

function startRelay(extra: Partial<Parameters<typeof createRelay>[0]> = {}) {
  return createRelay(
    {
      port: 0,
      issuers: [issuer.address],
      egress: {
        // the explicit operator opening tests need to reach their own servers
        allowCidrs: ['127.0.0.1/32'],
        denyCidrs: ['198.20.0.0/16'],
        denyHosts: ['.denied.example'],
      },
      ...extra,
    },
    { resolve: resolver, localNetworks: () => [{ address: '203.0.114.5', prefix: 24 }] },
  )
}

beforeAll(async () => {
  origin = await startOrigin()
  echo = await startEcho()
  relay = startRelay()
  await relay.start()
  relayPort = Number(new URL(relay.url).port)
  auth = relayAuthorization(await makeTicket())
})

afterAll(async () => {
  await relay.stop()
  await origin.close()
  await echo.close()
})

const get = (target: string, authorization: string | null = auth) =>
  raw(
    relayPort,
    `GET ${target} HTTP/1.1\r\nhost: x\r\n${authorization === null ? '' : `proxy-authorization: ${authorization}\r\n`}connection: close\r\n\r\n`,
  )

const connect = (authority: string, authorization: string | null = auth) =>
  raw(
    relayPort,
    `CONNECT ${authority} HTTP/1.1\r\nhost: ${authority}\r\n${authorization === null ? '' : `proxy-authorization: ${authorization}\r\n`}\r\n`,
    { untilHead: true },
  )

describe('relay tickets', () => {
  it('answers 407 with Proxy-Authenticate and a JSON reason without a ticket, over http and CONNECT', async () => {
    const a = await get(`${origin.url}/`, null)
    expect(a.status).toBe(407)
    expect(a.headers['proxy-authenticate']).toMatch(/^Shoal /)
    expect(JSON.parse(a.body).error.code).toBe('SHOAL_ERR_PROXY_AUTH_REQUIRED')
    const c = await connect(`127.0.0.1:${echo.port}`, null)
    c.socket.destroy()
    expect(c.status).toBe(407)
    expect(c.headers['proxy-authenticate']).toMatch(/^Shoal /)
  })

  it('refuses expired, foreign, tampered and malformed tickets with 407', async () => {
    const expired = relayAuthorization(await makeTicket({ expiry: Math.floor(Date.now() / 1000) - 3600 }))
    const { privateKeyToAccount, generatePrivateKey } = await import('viem/accounts')
    const stranger = privateKeyToAccount(generatePrivateKey())
    const foreign = relayAuthorization(await makeTicket({}, stranger))
    const good = await makeTicket()
    const tampered = relayAuthorization({ ...good, message: { ...good.message, budget: 2 ** 40 } })
    const cases: [string, string][] = [
      [expired, 'SHOAL_ERR_EXPIRED'],
      [foreign, 'SHOAL_ERR_UNAUTHORIZED'],
      [tampered, 'SHOAL_ERR_INVALID_SIGNATURE'],
      ['Shoal !!!', 'SHOAL_ERR_PROXY_AUTH_REQUIRED'],
      ['Basic dXNlcjpwYXNz', 'SHOAL_ERR_PROXY_AUTH_REQUIRED'],
      [`Shoal ${Buffer.from('{"message":{}}').toString('base64url')}`, 'SHOAL_ERR_INVALID_FORMAT'],
    ]
    for (const [header, code] of cases) {
      const a = await get(`${origin.url}/`, header)
      expect(a.status, header).toBe(407)
      expect(JSON.parse(a.body).error.code, header).toBe(code)
      const c = await connect(`127.0.0.1:${echo.port}`, expired)
      c.socket.destroy()
      expect(c.status).toBe(407)
    }
    expect(origin.hits.length).toBe(0)
  })
})

describe('relay egress policy', () => {
  const port = () => origin.port
  // every form names a destination the policy must refuse (127.0.0.1 itself is the
  // operator's explicit opening, so the loopback forms aim at 127.0.0.2)
  const forward: [string, () => string][] = [
    ['loopback', () => `http://127.0.0.2:${port()}/`],
    ['decimal IPv4', () => `http://2130706434:${port()}/`],
    ['octal IPv4', () => `http://0177.0.0.2:${port()}/`],
    ['hex IPv4', () => `http://0x7f000002:${port()}/`],
    ['hex-octet IPv4', () => `http://0x7f.0.0.2:${port()}/`],
    ['short-form IPv4', () => `http://127.2:${port()}/`],
    ['IPv6 loopback', () => `http://[::1]:${port()}/`],
    ['IPv4-mapped IPv6 of the opened address', () => `http://[::ffff:127.0.0.1]:${port()}/`],
    ['IPv4-mapped IPv6 in hex', () => `http://[::ffff:7f00:1]:${port()}/`],
    ['IPv4-mapped IPv6 of RFC 1918', () => 'http://[0:0:0:0:0:ffff:10.0.0.1]/'],
    ['RFC 1918 10/8', () => 'http://10.0.0.1/'],
    ['RFC 1918 172.16/12', () => 'http://172.16.5.4/'],
    ['RFC 1918 192.168/16', () => 'http://192.168.1.1/'],
    ['CGNAT 100.64/10', () => 'http://100.64.0.1/'],
    ['link-local cloud metadata', () => 'http://169.254.169.254/latest/meta-data/'],
    ['multicast', () => 'http://224.0.0.1/'],
    ['unspecified', () => `http://0.0.0.0:${port()}/`],
    ['broadcast', () => 'http://255.255.255.255/'],
    ['reserved 240/4', () => 'http://240.0.0.1/'],
    ['benchmarking 198.18/15', () => 'http://198.18.0.1/'],
    ['IPv6 ULA', () => 'http://[fc00::1]/'],
    ['IPv6 link-local', () => 'http://[fe80::1]/'],
    ['IPv6 multicast', () => 'http://[ff02::1]/'],
    ['NAT64 of loopback', () => 'http://[64:ff9b::7f00:1]/'],
    ['6to4 of loopback', () => 'http://[2002:7f00:1::1]/'],
    ['name resolving to loopback', () => `http://local.test:${port()}/`],
    ['name resolving to RFC 1918', () => 'http://ten.test/'],
    ['name with one private answer among public ones', () => 'http://mixed.test/'],
    ['name resolving to IPv6 loopback', () => 'http://v6local.test/'],
    ['name resolving to IPv4-mapped loopback', () => 'http://mapped.test/'],
    ['name resolving to link-local metadata', () => 'http://meta.test/'],
    ["name resolving into the node's own LAN", () => 'http://own.test/'],
    ['userinfo before the host (evil@127.0.0.2)', () => `http://evil@127.0.0.2:${port()}/`],
    ['userinfo looking like a host (127.0.0.1@evil)', () => 'http://127.0.0.1@evil.test/'],
    ['userinfo with password', () => `http://a:b@allowed.test:${port()}/`],
    ['SMTP port 25', () => 'http://public.test:25/'],
    ['operator-denied host', () => 'http://www.denied.example/'],
    ['operator-denied CIDR', () => 'http://deniedcidr.test/'],
  ]
  for (const [name, target] of forward) {
    it(`refuses ${name} with 403 and a JSON reason`, async () => {
      const before = origin.hits.length
      const a = await get(target())
      expect(a.status).toBe(403)
      expect(a.headers['shoal-relay-error']).toBe('SHOAL_ERR_FORBIDDEN')
      expect(JSON.parse(a.body).error).toMatchObject({
        code: 'SHOAL_ERR_FORBIDDEN',
        message: expect.any(String),
      })
      expect(origin.hits.length).toBe(before)
    })
  }

  const tunnels: [string, () => string][] = [
    ['CONNECT loopback', () => `127.0.0.2:${echo.port}`],
    ['CONNECT decimal IPv4', () => `2130706434:${echo.port}`],
    ['CONNECT hex-octet short IPv4', () => `0x7f.2:${echo.port}`],
    ['CONNECT IPv6 loopback', () => `[::1]:${echo.port}`],
    ['CONNECT IPv4-mapped', () => `[::ffff:127.0.0.1]:${echo.port}`],
    ['CONNECT name resolving to loopback', () => `local.test:${echo.port}`],
    ['CONNECT to port 25', () => 'public.test:25'],
    ['CONNECT to port 465', () => 'public.test:465'],
    ['CONNECT to port 587', () => 'public.test:587'],
    ['CONNECT with userinfo', () => `evil@127.0.0.1:${echo.port}`],
    ['CONNECT RFC 1918', () => '192.168.0.1:443'],
  ]
  for (const [name, authority] of tunnels) {
    it(`refuses ${name}`, async () => {
      const c = await connect(authority())
      c.socket.destroy()
      expect(c.status).toBe(403)
      expect(c.headers['shoal-relay-error']).toBe('SHOAL_ERR_FORBIDDEN')
    })
  }

  it('resolves once and connects to the checked address, keeping the name in Host', async () => {
    const before = resolver.calls.length
    const a = await get(`http://allowed.test:${origin.port}/`)
    expect(a.status).toBe(200)
    expect(a.body).toContain(`hello allowed.test:${origin.port}`)
    expect(resolver.calls.length - before).toBe(1)
  })

  it('refuses CONNECT without a port and origin-form requests with 400', async () => {
    const c = await connect('allowed.test')
    c.socket.destroy()
    expect(c.status).toBe(400)
    const a = await get('/c/whatever')
    expect(a.status).toBe(400)
    expect(JSON.parse(a.body).error.code).toBe('SHOAL_ERR_INVALID_ARGUMENT')
  })
})

describe('relay forwarding and tunnels', () => {
  it('forwards http through undici ProxyAgent, strips the ticket and hop-by-hop headers, and meters both ways', async () => {
    const ticket = await makeTicket()
    const dispatcher = new ProxyAgent({
      uri: relay.url,
      token: relayAuthorization(ticket),
      proxyTunnel: false,
    })
    try {
      const res = await request(`${origin.url}/bytes/100000`, { dispatcher })
      const body = Buffer.from(await res.body.arrayBuffer())
      expect(res.statusCode).toBe(200)
      expect(body.length).toBe(100_000)
      const hit = origin.hits.at(-1)!
      expect(hit.headers['proxy-authorization']).toBeUndefined()
      expect(hit.headers['x-forwarded-for']).toBeUndefined()
      const plain = await request(`${origin.url}/`, { dispatcher })
      expect(plain.headers['x-hop']).toBeUndefined()
      await plain.body.text()
      const posted = await request(`${origin.url}/echo`, {
        dispatcher,
        method: 'POST',
        body: Buffer.alloc(5000, 1),
      })
      expect((await posted.body.arrayBuffer()).byteLength).toBe(5000)
      const { ticketId } = await import('@shoal/protocol')
      const usage = relay.meter.get(ticketId(ticket.message))!
      expect(usage.client).toBe(client.address)
      expect(usage.down).toBeGreaterThan(105_000)
      expect(usage.up).toBeGreaterThanOrEqual(5000)
    } finally {
      await dispatcher.close()
    }
  })

  it('passes redirects to the client and never follows them', async () => {
    const before = origin.hits.length
    const a = await get(`${origin.url}/redirect`)
    expect(a.status).toBe(302)
    expect(a.headers.location).toBe('/secret')
    expect(origin.hits.slice(before).map((h) => h.url)).toEqual(['/redirect'])
  })

  it('tunnels CONNECT to an allowed server and meters the bytes', async () => {
    const ticket = await makeTicket()
    const c = await connect(`127.0.0.1:${echo.port}`, relayAuthorization(ticket))
    expect(c.status).toBe(200)
    const got: Buffer[] = []
    c.socket.removeAllListeners('data')
    c.socket.on('data', (d: Buffer) => got.push(d))
    c.socket.write(Buffer.alloc(20_000, 3))
    const { ticketId } = await import('@shoal/protocol')
    for (let i = 0; i < 200 && Buffer.concat(got).length < 20_000; i++)
      await new Promise((r) => setTimeout(r, 10))
    expect(Buffer.concat(got)).toEqual(Buffer.alloc(20_000, 3))
    c.socket.destroy()
    const usage = relay.meter.get(ticketId(ticket.message))!
    expect(usage.up).toBe(20_000)
    expect(usage.down).toBe(20_000)
  })

  it('answers 502 when an allowed destination refuses the connection', async () => {
    const closed = await startEcho()
    const port = closed.port
    await closed.close()
    const a = await get(`http://127.0.0.1:${port}/`)
    expect(a.status).toBe(502)
    expect(a.headers['shoal-relay-error']).toBe('SHOAL_ERR_UPSTREAM')
  })
})

describe('relay limits', () => {
  let limited: Relay
  afterEach(async () => {
    await limited?.stop()
  })

  it('caps concurrent tunnels per client with 429 and frees slots when tunnels close', async () => {
    limited = startRelay({ maxConcurrentPerClient: 2 })
    await limited.start()
    const p = Number(new URL(limited.url).port)
    const open = (a = auth) =>
      raw(p, `CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\nproxy-authorization: ${a}\r\n\r\n`, {
        untilHead: true,
      })
    const one = await open()
    const two = await open()
    const three = await open()
    expect([one.status, two.status, three.status]).toEqual([200, 200, 429])
    expect(three.headers['shoal-relay-error']).toBe('SHOAL_ERR_RATE_LIMITED')
    // another client is not held back by the first one's tunnels
    const { privateKeyToAccount, generatePrivateKey } = await import('viem/accounts')
    const other = await makeTicket({ client: privateKeyToAccount(generatePrivateKey()).address })
    const four = await open(relayAuthorization(other))
    expect(four.status).toBe(200)
    one.socket.destroy()
    await new Promise((r) => setTimeout(r, 50))
    const five = await open()
    expect(five.status).toBe(200)
    for (const s of [two, three, four, five]) s.socket.destroy()
  })

  it('stops carrying a ticket once its budget is spent here', async () => {
    const small = relayAuthorization(await makeTicket({ budget: 1000 }))
    const first = await get(`${origin.url}/bytes/5000`, small)
    expect(first.status).toBe(200)
    const second = await get(`${origin.url}/bytes/10`, small)
    expect(second.status).toBe(429)
    expect(second.headers['shoal-relay-error']).toBe('SHOAL_ERR_RATE_LIMITED')
    const c = await connect(`127.0.0.1:${echo.port}`, small)
    c.socket.destroy()
    expect(c.status).toBe(429)
  })

  it('closes idle tunnels', async () => {
    limited = startRelay({ idleTimeoutMs: 100 })
    await limited.start()
    const p = Number(new URL(limited.url).port)
    const t = await raw(
      p,
      `CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\nproxy-authorization: ${auth}\r\n\r\n`,
      {
        untilHead: true,
      },
    )
    expect(t.status).toBe(200)
    await new Promise<void>((resolve) => {
      if (t.socket.destroyed) resolve()
      else t.socket.once('close', () => resolve())
    })
    expect(t.socket.destroyed).toBe(true)
  })

  it('keeps a tunnel that carries bytes open past the idle timeout (reads into the reused buffer count as activity)', async () => {
    limited = startRelay({ idleTimeoutMs: 300 })
    await limited.start()
    // a destination that sends 4 KiB every 30 ms for 1.2 s and then ends: never idle for 300 ms
    const drip = net.createServer((s) => {
      s.on('error', () => {})
      let sent = 0
      const timer = setInterval(() => {
        s.write(Buffer.alloc(4096, 3))
        if (++sent === 40) {
          clearInterval(timer)
          s.end()
        }
      }, 30)
      s.once('close', () => clearInterval(timer))
    })
    drip.listen(0, '127.0.0.1')
    await new Promise((r) => drip.once('listening', r))
    try {
      const t = await raw(
        Number(new URL(limited.url).port),
        `CONNECT 127.0.0.1:${(drip.address() as net.AddressInfo).port} HTTP/1.1\r\nproxy-authorization: ${auth}\r\n\r\n`,
        { untilHead: true },
      )
      expect(t.status).toBe(200)
      t.socket.removeAllListeners('data')
      let got = 0
      t.socket.on('data', (d: Buffer) => {
        got += d.length
      })
      // the client sends nothing: only the download keeps the tunnel busy
      await new Promise<void>((resolve) => t.socket.once('end', () => resolve()))
      expect(got).toBe(40 * 4096)
      t.socket.destroy()
    } finally {
      drip.close()
    }
  })

  it('keeps a few listeners per tunnel socket, capped or not (regression: MaxListenersExceededWarning on every tunnel)', async () => {
    // a tunnel used to hang 11 close listeners on the client's socket (two pipelines);
    // with the default lowered to 8, any pile-up on the relay's sockets warns
    const previous = EventEmitter.defaultMaxListeners
    const warnings: { count: number; type: string }[] = []
    const onWarning = (w: Error & { emitter?: unknown; type?: string; count?: number }) => {
      if (w.name === 'MaxListenersExceededWarning' && w.emitter instanceof net.Socket)
        warnings.push({ type: String(w.type), count: Number(w.count) })
    }
    process.on('warning', onWarning)
    EventEmitter.defaultMaxListeners = 8
    limited = startRelay({ clientBytesPerSecond: 64 * 2 ** 20 })
    await limited.start()
    try {
      for (const r of [relay, limited]) {
        const p = Number(new URL(r.url).port)
        for (let i = 0; i < 3; i++) {
          const t = await raw(
            p,
            `CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\nproxy-authorization: ${auth}\r\n\r\n`,
            {
              untilHead: true,
            },
          )
          expect(t.status).toBe(200)
          const got: Buffer[] = []
          t.socket.removeAllListeners('data')
          t.socket.on('data', (d: Buffer) => got.push(d))
          t.socket.write(Buffer.alloc(50_000, i))
          await vi.waitFor(() => expect(Buffer.concat(got).length).toBe(50_000))
          t.socket.destroy()
        }
        // keep-alive forwards on one connection do not add up either
        const dispatcher = new ProxyAgent({ uri: r.url, token: auth, proxyTunnel: false, connections: 1 })
        try {
          for (let i = 0; i < 15; i++) {
            const res = await request(`${origin.url}/bytes/1000`, { dispatcher })
            expect((await res.body.arrayBuffer()).byteLength).toBe(1000)
          }
        } finally {
          await dispatcher.close()
        }
      }
      await new Promise((r) => setImmediate(r))
      expect(warnings).toEqual([])
    } finally {
      EventEmitter.defaultMaxListeners = previous
      process.off('warning', onWarning)
    }
  })

  it('delivers every byte under per-client and relay-wide caps, metered once', async () => {
    limited = startRelay({ clientBytesPerSecond: 4 * 2 ** 20, bytesPerSecond: 8 * 2 ** 20 })
    await limited.start()
    const ticket = await makeTicket()
    const dispatcher = new ProxyAgent({
      uri: limited.url,
      token: relayAuthorization(ticket),
      proxyTunnel: false,
    })
    try {
      const res = await request(`${origin.url}/bytes/300000`, { dispatcher })
      expect((await res.body.arrayBuffer()).byteLength).toBe(300_000)
      const { ticketId } = await import('@shoal/protocol')
      const usage = limited.meter.get(ticketId(ticket.message))!
      expect(usage.down).toBeGreaterThan(300_000)
      expect(usage.down).toBeLessThan(301_000)
    } finally {
      await dispatcher.close()
    }
  })
})

describe('relay in the edge node', () => {
  it('is off by default, and on its own port with metrics when enabled', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shoal-relay-node-'))
    const off = createEdgeNode({ dataDir: join(dir, 'a'), port: 0 })
    expect(off.relay).toBeUndefined()
    const registry = new Registry()
    const node = createEdgeNode(
      {
        dataDir: join(dir, 'b'),
        port: 0,
        relay: { port: 0, issuers: [issuer.address], egress: { allowCidrs: ['127.0.0.1/32'] } },
      },
      { registry, relay: { resolve: resolver } },
    )
    await node.start()
    try {
      expect(node.relay!.url).not.toBe(node.url)
      expect(node.relay!.multiaddr).toBe(relayMultiaddr(node.relay!.url))
      expect(node.relay!.multiaddr).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/http$/)
      const p = Number(new URL(node.relay!.url).port)
      const a = await raw(
        p,
        `GET ${origin.url}/ HTTP/1.1\r\nhost: x\r\nproxy-authorization: ${auth}\r\nconnection: close\r\n\r\n`,
      )
      expect(a.status).toBe(200)
      const b = await raw(
        p,
        `GET http://10.0.0.1/ HTTP/1.1\r\nhost: x\r\nproxy-authorization: ${auth}\r\nconnection: close\r\n\r\n`,
      )
      expect(b.status).toBe(403)
      const text = await registry.metrics()
      expect(text).toMatch(/shoal_edge_relay_bytes_total\{direction="down"\} [1-9]/)
      expect(text).toMatch(/shoal_edge_relay_refusals_total\{status="403",reason="range"\} 1/)
    } finally {
      await node.stop()
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('refuses a relay without trusted issuers at construction', () => {
    expect(() => createEdgeNode({ dataDir: '/tmp/x', relay: { issuers: [] } })).toThrow(
      expect.objectContaining({ code: 'SHOAL_ERR_INVALID_ARGUMENT' }),
    )
  })
})
