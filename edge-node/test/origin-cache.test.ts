import { createHash } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import { afterEach, describe, expect, it } from 'vitest'
import { createOriginCache, type OriginCache, type OriginCacheInit } from '../src/origin/index.ts'
import { createObjectStore, type ObjectStore } from '../src/store/index.ts'
import { createHttpUpstream, type HttpUpstreamInit } from '../src/upstream/http-upstream.ts'

// ---------------------------------------------------------------------------------------
// Harness: a real origin (node:http) whose answers each test sets, an edge (node:http)
// whose handler is the origin cache over a real two-tier store, a client (undici), all on
// 127.0.0.1 port 0, and a virtual clock for freshness.
// ---------------------------------------------------------------------------------------

const KiB = 1024
const MiB = 1024 * KiB

interface Seen {
  method: string
  url: string
  headers: http.IncomingHttpHeaders
  body: Buffer
}

interface Reply {
  status: number
  headers: Record<string, string | number | string[]>
  body: Buffer
  text: string
}

interface Harness {
  cache: OriginCache
  store: ObjectStore
  /** Requests the origin received. */
  seen: Seen[]
  /** What the origin answers; replace per test. */
  origin: http.RequestListener
  originUrl: string
  edgeUrl: string
  originServer: http.Server
  advance(seconds: number): void
  now(): number
  /**
   * A request to the edge; waits for the fills it started to be committed (`idle`)
   * unless `settle` is false, so that a sequential next request sees the entry.
   */
  get(
    path: string,
    init?: { method?: string; headers?: Record<string, string>; body?: string | Buffer; settle?: boolean },
  ): Promise<Reply>
}

interface HarnessOptions {
  init?: OriginCacheInit
  upstream?: Partial<HttpUpstreamInit>
  memoryBytes?: number
  diskBytes?: number
  /** Collect the request body at the origin before answering (default true). */
  bufferOriginBody?: boolean
}

const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!()
})

async function listen(server: http.Server | net.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

async function setup(options: HarnessOptions = {}): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-origin-'))
  const store = createObjectStore({
    memory: { maxBytes: options.memoryBytes ?? 16 * MiB },
    disk: { dir, maxBytes: options.diskBytes ?? 1024 * MiB, durable: false },
  })
  await store.start()
  const upstream = createHttpUpstream({
    connectTimeoutMs: 2_000,
    headersTimeoutMs: 5_000,
    bodyTimeoutMs: 5_000,
    ...options.upstream,
  })
  let clock = Date.parse('2030-01-01T00:00:00Z')
  const seen: Seen[] = []
  const h = {
    store,
    seen,
    origin: ((_req, res) => res.end('default')) as http.RequestListener,
    advance(seconds: number) {
      clock += seconds * 1000
    },
    now: () => clock,
  } as Harness
  const originServer = http.createServer((req, res) => {
    if (options.bufferOriginBody === false) {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.alloc(0) })
      h.origin(req, res)
      return
    }
    const pieces: Buffer[] = []
    req.on('data', (piece: Buffer) => pieces.push(piece))
    req.on('end', () => {
      seen.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(pieces),
      })
      h.origin(req, res)
    })
  })
  h.originServer = originServer
  h.originUrl = await listen(originServer)
  h.cache = createOriginCache(
    { viaName: 'edge-test', now: () => clock, collapseTimeoutMs: 3_000, ...options.init },
    { store, upstream },
  )
  const edge = http.createServer((req, res) => {
    void h.cache.handle(req, res, { site: 'site', origin: h.originUrl, path: req.url ?? '/' })
  })
  h.edgeUrl = await listen(edge)
  const agent = new Agent({ keepAliveTimeout: 1_000 })
  h.get = async (path, init = {}) => {
    const res = await request(`${h.edgeUrl}${path}`, {
      dispatcher: agent,
      method: (init.method ?? 'GET') as 'GET',
      headers: init.headers,
      body: init.body,
    })
    const body = Buffer.from(await res.body.arrayBuffer())
    if (init.settle !== false) await h.cache.idle()
    return {
      status: res.statusCode,
      headers: res.headers as Reply['headers'],
      body,
      text: body.toString(),
    }
  }
  cleanups.push(async () => {
    await h.cache.idle()
    originServer.closeAllConnections()
    edge.closeAllConnections()
    await new Promise((resolve) => originServer.close(resolve))
    await new Promise((resolve) => edge.close(resolve))
    await agent.close()
    await upstream.close()
    await store.close()
    await rm(dir, { recursive: true, force: true })
  })
  return h
}

/** An origin answer with fixed headers and body. */
function answer(
  headers: Record<string, string | number | string[]>,
  body: string | Buffer = 'hello',
  status = 200,
): http.RequestListener {
  return (_req, res) => {
    const payload = Buffer.from(body)
    const framed = status === 204 || status === 304 || 'content-length' in headers
    res.writeHead(status, framed ? headers : { ...headers, 'content-length': payload.length })
    res.end(payload)
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

// ---------------------------------------------------------------------------------------

describe('origin cache: freshness', () => {
  it('serves a fresh response from the cache with Age, Via and X-Cache', async () => {
    const h = await setup()
    h.origin = answer({ 'cache-control': 'max-age=60', 'content-type': 'text/plain' }, 'one')
    const miss = await h.get('/a.txt')
    expect(miss.status).toBe(200)
    expect(miss.text).toBe('one')
    expect(miss.headers['x-cache']).toBe('MISS')
    expect(miss.headers.via).toBe('1.1 edge-test')
    h.advance(10)
    const hit = await h.get('/a.txt')
    expect(hit.text).toBe('one')
    expect(hit.headers['x-cache']).toBe('HIT')
    expect(hit.headers.age).toBe('10')
    expect(hit.headers['content-type']).toBe('text/plain')
    expect(hit.headers['content-length']).toBe('3')
    expect(hit.headers.via).toBe('1.1 edge-test')
    expect(h.seen).toHaveLength(1)
    // The origin sees the node in Via and its own host, never the client's address.
    expect(h.seen[0]?.headers.via).toBe('1.1 edge-test')
    expect(h.seen[0]?.headers.host).toBe(new URL(h.originUrl).host)
    expect(h.seen[0]?.headers['x-forwarded-for']).toBeUndefined()
  })

  it('prefers s-maxage over max-age', async () => {
    const h = await setup()
    h.origin = answer({ 'cache-control': 'max-age=100, s-maxage=10' })
    await h.get('/s')
    h.advance(9)
    expect((await h.get('/s')).headers['x-cache']).toBe('HIT')
    h.advance(2)
    expect((await h.get('/s')).headers['x-cache']).toBe('MISS')
    expect(h.seen).toHaveLength(2)
  })

  it('prefers max-age over Expires', async () => {
    const h = await setup()
    h.origin = (_req, res) => {
      const date = Date.now()
      res.writeHead(200, {
        date: new Date(date).toUTCString(),
        expires: new Date(date + 3600_000).toUTCString(),
        'cache-control': 'max-age=10',
      })
      res.end('x')
    }
    await h.get('/m')
    h.advance(11)
    expect((await h.get('/m')).headers['x-cache']).toBe('MISS')
  })

  it('uses Expires relative to the origin Date', async () => {
    const h = await setup()
    h.origin = (_req, res) => {
      // The origin's clock is an hour off: only Expires − Date counts.
      const date = Date.now() - 3600_000
      res.writeHead(200, {
        date: new Date(date).toUTCString(),
        expires: new Date(date + 20_000).toUTCString(),
      })
      res.end('x')
    }
    await h.get('/e')
    h.advance(15)
    expect((await h.get('/e')).headers['x-cache']).toBe('HIT')
    h.advance(10)
    expect((await h.get('/e')).headers['x-cache']).toBe('MISS')
  })

  it('counts the Age the origin sent', async () => {
    const h = await setup()
    h.origin = answer({ 'cache-control': 'max-age=60', age: '50' })
    await h.get('/age')
    h.advance(5)
    const hit = await h.get('/age')
    expect(hit.headers['x-cache']).toBe('HIT')
    expect(hit.headers.age).toBe('55')
    h.advance(6)
    expect((await h.get('/age')).headers['x-cache']).toBe('MISS')
  })

  it('gives heuristic freshness of 10% of the time since Last-Modified, capped at a day', async () => {
    const h = await setup()
    const lastModified = new Date(Date.now() - 5 * 86400_000).toUTCString()
    h.origin = answer({ 'last-modified': lastModified })
    await h.get('/h')
    h.advance(11 * 3600)
    expect((await h.get('/h')).headers['x-cache']).toBe('HIT')
    h.advance(2 * 3600) // 13 h > 12 h
    expect((await h.get('/h')).headers['x-cache']).toBe('MISS')
    expect(h.seen[1]?.headers['if-modified-since']).toBe(lastModified)

    const old = new Date(Date.now() - 100 * 86400_000).toUTCString()
    h.origin = answer({ 'last-modified': old })
    await h.get('/old')
    h.advance(23 * 3600)
    expect((await h.get('/old')).headers['x-cache']).toBe('HIT')
    h.advance(2 * 3600) // 25 h: past the one-day cap, though 10% would be ten days
    expect((await h.get('/old')).headers['x-cache']).not.toBe('HIT')
  })

  it('gives no heuristic freshness to statuses that are not heuristically cacheable', async () => {
    const h = await setup()
    h.origin = answer(
      { location: '/elsewhere', 'last-modified': new Date(Date.now() - 86400_000).toUTCString() },
      '',
      302,
    )
    expect((await h.get('/r')).status).toBe(302)
    expect((await h.get('/r')).headers['x-cache']).toBe('MISS')
    expect(h.seen).toHaveLength(2)
  })

  it('does not store a response that is neither fresh nor revalidatable', async () => {
    const h = await setup()
    h.origin = answer({})
    await h.get('/plain')
    await h.get('/plain')
    expect(h.seen).toHaveLength(2)
  })

  it('caches a 404 and a 301 with explicit freshness, and passes redirects on without following them', async () => {
    const h = await setup()
    h.origin = (req, res) => {
      if (req.url === '/gone') {
        res.writeHead(404, { 'cache-control': 'max-age=60' })
        res.end('no')
      } else {
        res.writeHead(301, { location: '/new', 'cache-control': 'max-age=60' })
        res.end()
      }
    }
    expect((await h.get('/gone')).status).toBe(404)
    const again = await h.get('/gone')
    expect(again.status).toBe(404)
    expect(again.headers['x-cache']).toBe('HIT')
    const moved = await h.get('/moved')
    expect(moved.status).toBe(301)
    expect(moved.headers.location).toBe('/new')
    expect((await h.get('/moved')).headers['x-cache']).toBe('HIT')
    expect(h.seen.map((s) => s.url)).toEqual(['/gone', '/moved'])
  })

  it('serves a must-revalidate response while fresh and never stale', async () => {
    const h = await setup()
    h.origin = answer({ 'cache-control': 'max-age=10, must-revalidate', etag: '"v1"' })
    await h.get('/mr')
    expect((await h.get('/mr')).headers['x-cache']).toBe('HIT')
    h.advance(20)
    h.origin = (_req, res) => {
      res.writeHead(304, { etag: '"v1"' })
      res.end()
    }
    const r = await h.get('/mr', { headers: { 'cache-control': 'max-stale=3600' } })
    expect(r.headers['x-cache']).toBe('REVALIDATED')
    expect(h.seen).toHaveLength(2)
  })
})

describe('origin cache: what a shared cache may store', () => {
  it.each([
    ['no-store', 'max-age=60, no-store'],
    ['private', 'private, max-age=60'],
  ])('does not store %s responses', async (_name, cc) => {
    const h = await setup()
    h.origin = answer({ 'cache-control': cc })
    await h.get('/x')
    expect((await h.get('/x')).headers['x-cache']).toBe('MISS')
    expect(h.seen).toHaveLength(2)
  })

  it('does not store responses to requests with Authorization unless public, s-maxage or must-revalidate', async () => {
    const h = await setup()
    h.origin = answer({ 'cache-control': 'max-age=60' }, 'secret')
    await h.get('/auth', { headers: { authorization: 'Bearer a' } })
    await h.get('/auth', { headers: { authorization: 'Bearer a' } })
    expect(h.seen).toHaveLength(2)
    // Nor is an authorized request answered with a response stored for anyone else.
    await h.get('/auth')
    expect((await h.get('/auth')).headers['x-cache']).toBe('HIT')
    expect((await h.get('/auth', { headers: { authorization: 'Bearer b' } })).headers['x-cache']).toBe('MISS')
    expect(h.seen).toHaveLength(4)

    h.origin = answer({ 'cache-control': 'public, max-age=60' }, 'shared')
    await h.get('/pub', { headers: { authorization: 'Bearer a' } })
    const hit = await h.get('/pub', { headers: { authorization: 'Bearer b' } })
    expect(hit.headers['x-cache']).toBe('HIT')
    expect(hit.text).toBe('shared')
  })

  it('does not store responses with Set-Cookie unless public, and never replays the cookie', async () => {
    const h = await setup()
    h.origin = answer({ 'cache-control': 'max-age=60', 'set-cookie': 'session=1' })
    await h.get('/c')
    expect((await h.get('/c')).headers['x-cache']).toBe('MISS')

    h.origin = answer({ 'cache-control': 'public, max-age=60', 'set-cookie': ['a=1', 'b=2'] })
    const miss = await h.get('/p')
    expect(miss.headers['set-cookie']).toEqual(['a=1', 'b=2'])
    const hit = await h.get('/p')
    expect(hit.headers['x-cache']).toBe('HIT')
    expect(hit.headers['set-cookie']).toBeUndefined()
  })

  it('does not store when the request says no-store', async () => {
    const h = await setup()
    h.origin = answer({ 'cache-control': 'max-age=60' })
    await h.get('/ns', { headers: { 'cache-control': 'no-store' } })
    expect((await h.get('/ns')).headers['x-cache']).toBe('MISS')
  })

  it('does not store a 206 from the origin', async () => {
    const h = await setup()
    h.origin = answer({ 'cache-control': 'max-age=60', 'content-range': 'bytes 0-1/10' }, 'he', 206)
    await h.get('/partial')
    expect((await h.get('/partial')).headers['x-cache']).toBe('MISS')
  })
})

describe('origin cache: request directives', () => {
  async function cached() {
    const h = await setup()
    h.origin = (req, res) => {
      if (req.headers['if-none-match'] === '"v1"') {
        res.writeHead(304, { etag: '"v1"', 'cache-control': 'max-age=60' })
        res.end()
        return
      }
      res.writeHead(200, { etag: '"v1"', 'cache-control': 'max-age=60' })
      res.end('body')
    }
    await h.get('/r')
    return h
  }

  it('revalidates on no-cache', async () => {
    const h = await cached()
    const r = await h.get('/r', { headers: { 'cache-control': 'no-cache' } })
    expect(r.headers['x-cache']).toBe('REVALIDATED')
    expect(r.text).toBe('body')
    expect(h.seen[1]?.headers['if-none-match']).toBe('"v1"')
  })

  it('revalidates on Pragma: no-cache only without Cache-Control', async () => {
    const h = await cached()
    expect((await h.get('/r', { headers: { pragma: 'no-cache' } })).headers['x-cache']).toBe('REVALIDATED')
    const r = await h.get('/r', { headers: { pragma: 'no-cache', 'cache-control': 'max-stale' } })
    expect(r.headers['x-cache']).toBe('HIT')
  })

  it('revalidates when older than the request max-age', async () => {
    const h = await cached()
    h.advance(5)
    expect((await h.get('/r', { headers: { 'cache-control': 'max-age=10' } })).headers['x-cache']).toBe('HIT')
    expect((await h.get('/r', { headers: { 'cache-control': 'max-age=2' } })).headers['x-cache']).toBe(
      'REVALIDATED',
    )
  })

  it('revalidates when fresher than min-fresh is asked', async () => {
    const h = await cached()
    h.advance(30)
    expect((await h.get('/r', { headers: { 'cache-control': 'min-fresh=20' } })).headers['x-cache']).toBe(
      'HIT',
    )
    h.advance(15)
    expect((await h.get('/r', { headers: { 'cache-control': 'min-fresh=20' } })).headers['x-cache']).toBe(
      'REVALIDATED',
    )
  })

  it('serves stale within max-stale', async () => {
    const h = await cached()
    h.advance(70)
    const r = await h.get('/r', { headers: { 'cache-control': 'max-stale=30' } })
    expect(r.headers['x-cache']).toBe('STALE')
    expect(r.headers.age).toBe('70')
    expect((await h.get('/r', { headers: { 'cache-control': 'max-stale=5' } })).headers['x-cache']).toBe(
      'REVALIDATED',
    )
  })

  it('answers only-if-cached with 504 when nothing usable is cached', async () => {
    const h = await cached()
    expect((await h.get('/r', { headers: { 'cache-control': 'only-if-cached' } })).headers['x-cache']).toBe(
      'HIT',
    )
    const miss = await h.get('/other', { headers: { 'cache-control': 'only-if-cached' } })
    expect(miss.status).toBe(504)
    expect(JSON.parse(miss.text)).toEqual({
      error: { code: 'SHOAL_ERR_UPSTREAM_TIMEOUT', message: expect.any(String) },
    })
    h.advance(100)
    expect((await h.get('/r', { headers: { 'cache-control': 'only-if-cached' } })).status).toBe(504)
    expect(h.seen).toHaveLength(1)
  })

  it('can be told to ignore request directives', async () => {
    const h = await setup({ init: { honorRequestCacheControl: false } })
    h.origin = answer({ 'cache-control': 'max-age=60' })
    await h.get('/i')
    expect((await h.get('/i', { headers: { 'cache-control': 'no-cache' } })).headers['x-cache']).toBe('HIT')
  })
})

describe('origin cache: validation', () => {
  it('revalidates a stale entry; a 304 updates the stored headers and keeps the body', async () => {
    const h = await setup()
    const lastModified = new Date(Date.now() - 3600_000).toUTCString()
    h.origin = answer(
      { 'cache-control': 'max-age=10', etag: '"v1"', 'last-modified': lastModified, 'x-v': '1' },
      'v1 body',
    )
    await h.get('/v')
    h.advance(11)
    h.origin = (_req, res) => {
      res.writeHead(304, { etag: '"v1"', 'cache-control': 'max-age=100', 'x-v': '2', 'x-new': 'yes' })
      res.end()
    }
    const r = await h.get('/v')
    expect(r.headers['x-cache']).toBe('REVALIDATED')
    expect(r.text).toBe('v1 body')
    expect(r.headers['x-v']).toBe('2')
    expect(r.headers['x-new']).toBe('yes')
    expect(r.headers['cache-control']).toBe('max-age=100')
    expect(r.headers['content-length']).toBe('7')
    expect(r.headers.age).toBe('0')
    expect(h.seen[1]?.headers['if-none-match']).toBe('"v1"')
    expect(h.seen[1]?.headers['if-modified-since']).toBe(lastModified)
    h.advance(50)
    const hit = await h.get('/v')
    expect(hit.headers['x-cache']).toBe('HIT')
    expect(hit.headers['x-v']).toBe('2')
    expect(h.seen).toHaveLength(2)
  })

  it('replaces the entry when revalidation brings a 200', async () => {
    const h = await setup()
    h.origin = answer({ 'cache-control': 'max-age=10', etag: '"v1"' }, 'old')
    await h.get('/v')
    h.advance(11)
    h.origin = answer({ 'cache-control': 'max-age=10', etag: '"v2"' }, 'new')
    const r = await h.get('/v')
    expect(r.headers['x-cache']).toBe('MISS')
    expect(r.text).toBe('new')
    expect((await h.get('/v')).text).toBe('new')
    expect(h.seen).toHaveLength(2)
  })

  it('drops the entry when the new response may not be stored', async () => {
    const h = await setup()
    h.origin = answer({ 'cache-control': 'max-age=10', etag: '"v1"' }, 'old')
    await h.get('/v')
    h.advance(11)
    h.origin = answer({ 'cache-control': 'no-store' }, 'new')
    expect((await h.get('/v')).text).toBe('new')
    expect(h.store.keys()).toHaveLength(0)
  })

  it('answers client conditionals with 304 from the cache', async () => {
    const h = await setup()
    const lastModified = new Date(Date.now() - 3600_000).toUTCString()
    h.origin = answer({ 'cache-control': 'max-age=60', etag: '"v1"', 'last-modified': lastModified })
    // On the miss too: the origin gets no validators from the client; the node answers 304.
    const first = await h.get('/c', { headers: { 'if-none-match': '"v1"' } })
    expect(first.status).toBe(304)
    expect(first.headers['x-cache']).toBe('MISS')
    expect(h.seen[0]?.headers['if-none-match']).toBeUndefined()
    await h.cache.idle()
    const inm = await h.get('/c', { headers: { 'if-none-match': '"x", W/"v1"' } })
    expect(inm.status).toBe(304)
    expect(inm.headers['x-cache']).toBe('HIT')
    expect(inm.headers.etag).toBe('"v1"')
    expect((await h.get('/c', { headers: { 'if-none-match': '"v2"' } })).status).toBe(200)
    expect((await h.get('/c', { headers: { 'if-modified-since': lastModified } })).status).toBe(304)
    const older = new Date(Date.now() - 7200_000).toUTCString()
    expect((await h.get('/c', { headers: { 'if-modified-since': older } })).status).toBe(200)
    expect(h.seen).toHaveLength(1)
  })

  it('passes If-Match and If-Unmodified-Since requests to the origin', async () => {
    const h = await setup()
    h.origin = answer({ 'cache-control': 'max-age=60', etag: '"v1"' })
    await h.get('/im')
    const r = await h.get('/im', { headers: { 'if-match': '"v1"' } })
    expect(r.headers['x-cache']).toBe('BYPASS')
    expect(h.seen[1]?.headers['if-match']).toBe('"v1"')
  })
})

describe('origin cache: Vary', () => {
  it('stores variants separately, keyed by normalised request fields', async () => {
    const h = await setup()
    h.origin = (req, res) => {
      const ae = req.headers['accept-encoding'] ?? ''
      res.writeHead(200, { 'cache-control': 'max-age=60', vary: 'Accept-Encoding', 'x-ae': ae })
      res.end(`for ${ae}`)
    }
    const gzip = await h.get('/v', { headers: { 'accept-encoding': 'gzip' } })
    expect(gzip.text).toBe('for gzip')
    const plain = await h.get('/v', { headers: { 'accept-encoding': 'identity' } })
    expect(plain.text).toBe('for identity')
    const gzip2 = await h.get('/v', { headers: { 'accept-encoding': 'gzip;q=1,  deflate' } })
    expect(gzip2.headers['x-cache']).toBe('HIT')
    expect(gzip2.text).toBe('for gzip')
    const none = await h.get('/v')
    expect(none.headers['x-cache']).toBe('HIT')
    expect(none.text).toBe('for identity')
    const both = await h.get('/v', { headers: { 'accept-encoding': 'gzip, deflate, br, zstd' } })
    expect(both.text).toBe('for br, gzip, zstd')
    expect(h.seen.map((s) => s.headers['accept-encoding'])).toEqual(['gzip', 'identity', 'br, gzip, zstd'])
  })

  it('varies on other fields too', async () => {
    const h = await setup()
    h.origin = (req, res) => {
      res.writeHead(200, { 'cache-control': 'max-age=60', vary: 'Accept-Language' })
      res.end(`lang ${req.headers['accept-language'] ?? '-'}`)
    }
    expect((await h.get('/l', { headers: { 'accept-language': 'fr' } })).text).toBe('lang fr')
    expect((await h.get('/l', { headers: { 'accept-language': 'de' } })).text).toBe('lang de')
    const fr = await h.get('/l', { headers: { 'accept-language': ' fr ' } })
    expect(fr.text).toBe('lang fr')
    expect(fr.headers['x-cache']).toBe('HIT')
    expect(h.seen).toHaveLength(2)
  })

  it('never serves Vary: * from the cache', async () => {
    const h = await setup()
    h.origin = answer({ 'cache-control': 'max-age=60', vary: '*' })
    await h.get('/star')
    expect((await h.get('/star')).headers['x-cache']).toBe('MISS')
    expect(h.seen).toHaveLength(2)
  })

  it('treats a compressed response without Vary as varying on Accept-Encoding', async () => {
    const h = await setup()
    h.origin = (req, res) => {
      const gz = String(req.headers['accept-encoding']).includes('gzip')
      res.writeHead(200, { 'cache-control': 'max-age=60', ...(gz ? { 'content-encoding': 'gzip' } : {}) })
      res.end(gz ? 'GZ' : 'plain')
    }
    const gz = await h.get('/z', { headers: { 'accept-encoding': 'gzip' } })
    expect(gz.headers.vary).toBe('Accept-Encoding')
    expect(gz.text).toBe('GZ')
    const plain = await h.get('/z')
    expect(plain.text).toBe('plain')
    expect((await h.get('/z', { headers: { 'accept-encoding': 'gzip' } })).headers['x-cache']).toBe('HIT')
    expect(h.seen).toHaveLength(2)
  })
})

describe('origin cache: stale-while-revalidate and stale-if-error', () => {
  it('serves stale within stale-while-revalidate and refreshes once in the background', async () => {
    const h = await setup()
    let version = 1
    h.origin = (_req, res) => {
      const v = version
      setTimeout(() => {
        res.writeHead(200, { 'cache-control': 'max-age=10, stale-while-revalidate=60' })
        res.end(`v${v}`)
      }, 50)
    }
    await h.get('/swr')
    version = 2
    h.advance(20)
    const replies = await Promise.all(Array.from({ length: 10 }, () => h.get('/swr')))
    for (const r of replies) {
      expect(r.text).toBe('v1')
      expect(r.headers['x-cache']).toBe('STALE')
    }
    await h.cache.idle()
    expect(h.seen).toHaveLength(2)
    const fresh = await h.get('/swr')
    expect(fresh.text).toBe('v2')
    expect(fresh.headers['x-cache']).toBe('HIT')
    h.advance(100)
    expect((await h.get('/swr')).headers['x-cache']).toBe('MISS')
  })

  it('serves stale on a 500 within stale-if-error, and the 500 otherwise', async () => {
    const h = await setup()
    h.origin = answer({ 'cache-control': 'max-age=10, stale-if-error=60' }, 'good')
    await h.get('/sie')
    h.origin = answer({}, 'broken', 500)
    h.advance(30)
    const stale = await h.get('/sie')
    expect(stale.status).toBe(200)
    expect(stale.text).toBe('good')
    expect(stale.headers['x-cache']).toBe('STALE')
    h.advance(60)
    const failed = await h.get('/sie')
    expect(failed.status).toBe(500)
    expect(failed.text).toBe('broken')
  })

  it('serves stale when the origin is down within stale-if-error, else 502', async () => {
    const h = await setup()
    h.origin = (req, res) => {
      res.writeHead(200, { 'cache-control': `max-age=10${req.url === '/sie' ? ', stale-if-error=60' : ''}` })
      res.end('good')
    }
    await h.get('/sie')
    await h.get('/plain')
    h.originServer.closeAllConnections()
    await new Promise((resolve) => h.originServer.close(resolve))
    h.advance(30)
    const stale = await h.get('/sie')
    expect(stale.headers['x-cache']).toBe('STALE')
    expect(stale.text).toBe('good')
    // The client may ask for it too (RFC 5861).
    expect((await h.get('/plain', { headers: { 'cache-control': 'stale-if-error=60' } })).text).toBe('good')
    const down = await h.get('/plain')
    expect(down.status).toBe(502)
    expect(JSON.parse(down.text).error.code).toBe('SHOAL_ERR_UPSTREAM')
  })
})

describe('origin cache: collapsed misses', () => {
  it('makes one origin request for concurrent misses', async () => {
    const h = await setup()
    h.origin = (_req, res) => {
      setTimeout(() => {
        res.writeHead(200, { 'cache-control': 'max-age=60' })
        res.end('shared body')
      }, 100)
    }
    const replies = await Promise.all(Array.from({ length: 20 }, () => h.get('/hot')))
    expect(h.seen).toHaveLength(1)
    for (const r of replies) expect(r.text).toBe('shared body')
    expect(replies.filter((r) => r.headers['x-cache'] === 'MISS')).toHaveLength(1)
    expect(replies.filter((r) => r.headers['x-cache'] === 'HIT')).toHaveLength(19)
  })

  it('makes one revalidation for concurrent requests of a stale entry', async () => {
    const h = await setup()
    h.origin = answer({ 'cache-control': 'max-age=10', etag: '"1"' })
    await h.get('/st')
    h.advance(20)
    h.origin = (_req, res) => {
      setTimeout(() => {
        res.writeHead(304, { etag: '"1"', 'cache-control': 'max-age=10' })
        res.end()
      }, 100)
    }
    const replies = await Promise.all(Array.from({ length: 10 }, () => h.get('/st')))
    expect(h.seen).toHaveLength(2)
    for (const r of replies) expect(r.text).toBe('hello')
  })

  it('lets followers fetch on their own when the response is not cacheable', async () => {
    const h = await setup()
    h.origin = (_req, res) => {
      setTimeout(() => {
        res.writeHead(200, { 'cache-control': 'no-store' })
        res.end('private')
      }, 50)
    }
    const replies = await Promise.all(Array.from({ length: 5 }, () => h.get('/ns')))
    for (const r of replies) expect(r.text).toBe('private')
    expect(h.seen).toHaveLength(5)
  })

  it('shares an origin failure with the followers instead of retrying', async () => {
    const h = await setup({ upstream: { headersTimeoutMs: 300 } })
    h.origin = () => {
      // never answers
    }
    const replies = await Promise.all(Array.from({ length: 5 }, () => h.get('/slow')))
    for (const r of replies) expect(r.status).toBe(504)
    expect(h.seen).toHaveLength(1)
  })
})

describe('origin cache: streaming and failures', () => {
  it('never caches a truncated origin body', async () => {
    const h = await setup()
    let truncate = true
    h.origin = (_req, res) => {
      res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': '1000' })
      if (truncate) {
        res.write(Buffer.alloc(500, 1))
        setTimeout(() => res.socket?.destroy(), 20)
      } else res.end(Buffer.alloc(1000, 2))
    }
    await expect(h.get('/t')).rejects.toThrow()
    await h.cache.idle()
    expect(h.store.keys()).toHaveLength(0)
    truncate = false
    const r = await h.get('/t')
    expect(r.body.length).toBe(1000)
    expect(r.headers['x-cache']).toBe('MISS')
    expect((await h.get('/t')).headers['x-cache']).toBe('HIT')
  })

  it('never caches a chunked body cut short', async () => {
    const h = await setup()
    h.origin = (_req, res) => {
      res.writeHead(200, { 'cache-control': 'max-age=60' })
      res.write('part')
      setTimeout(() => res.socket?.destroy(), 20)
    }
    await expect(h.get('/tc')).rejects.toThrow()
    expect(h.store.keys()).toHaveLength(0)
  })

  it('answers 502 when the origin is down', async () => {
    const h = await setup()
    h.originServer.closeAllConnections()
    await new Promise((resolve) => h.originServer.close(resolve))
    const r = await h.get('/down')
    expect(r.status).toBe(502)
    expect(r.headers['content-type']).toContain('application/json')
    expect(JSON.parse(r.text).error.code).toBe('SHOAL_ERR_UPSTREAM')
  })

  it('answers 504 when the origin is too slow, and keeps serving others', async () => {
    const h = await setup({ upstream: { headersTimeoutMs: 200 } })
    h.origin = (req, res) => {
      if (req.url === '/slow') return
      res.writeHead(200, { 'cache-control': 'max-age=60' })
      res.end('fast')
    }
    const [slow, fast] = await Promise.all([h.get('/slow'), h.get('/fast')])
    expect(slow.status).toBe(504)
    expect(JSON.parse(slow.text).error.code).toBe('SHOAL_ERR_UPSTREAM_TIMEOUT')
    expect(fast.text).toBe('fast')
  })

  it('answers 502 to malformed or oversized origin headers and caches nothing', async () => {
    const h = await setup()
    const raw = net.createServer((socket) => {
      socket.on('error', () => {})
      socket.once('data', () => {
        socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nBad Header\r\n\r\nok')
      })
    })
    const rawUrl = await listen(raw)
    const huge = net.createServer((socket) => {
      socket.on('error', () => {})
      socket.once('data', () => {
        socket.end(`HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`)
      })
    })
    const hugeUrl = await listen(huge)
    cleanups.push(async () => {
      raw.close()
      huge.close()
    })
    for (const origin of [rawUrl, hugeUrl]) {
      const edge = http.createServer((req, res) => {
        void h.cache.handle(req, res, { site: 'raw', origin, path: req.url ?? '/' })
      })
      const edgeUrl = await listen(edge)
      const r = await request(`${edgeUrl}/x`)
      expect(r.statusCode).toBe(502)
      expect(JSON.parse(await r.body.text()).error.code).toBe('SHOAL_ERR_UPSTREAM')
      edge.closeAllConnections()
      edge.close()
    }
    expect(h.store.keys()).toHaveLength(0)
  })

  it('streams a 64 MiB object through without holding it whole, then serves it from disk', async () => {
    const h = await setup()
    const piece = Buffer.alloc(MiB)
    for (let i = 0; i < piece.length; i++) piece[i] = (i * 7) % 251
    const pieces = 64
    const expected = createHash('sha256')
    for (let i = 0; i < pieces; i++) expected.update(piece)
    const digest = expected.digest('hex')
    let sent = 0
    h.origin = (_req, res) => {
      res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': String(pieces * MiB) })
      const pump = (): void => {
        while (sent < pieces * MiB) {
          sent += MiB
          if (!res.write(piece)) {
            res.once('drain', pump)
            return
          }
        }
        res.end()
      }
      pump()
    }
    /** Reads the body, pausing once after 4 MiB; returns how far the origin got ahead meanwhile. */
    const fetchAll = async () => {
      const res = await request(`${h.edgeUrl}/big`)
      const hash = createHash('sha256')
      let bytes = 0
      let ahead = 0
      for await (const chunk of res.body) {
        hash.update(chunk)
        bytes += chunk.length
        if (ahead === 0 && bytes >= 4 * MiB) {
          await sleep(300)
          ahead = sent - bytes
        }
      }
      return { res, bytes, digest: hash.digest('hex'), ahead }
    }
    const first = await fetchAll()
    expect(first.res.headers['x-cache']).toBe('MISS')
    expect(first.bytes).toBe(pieces * MiB)
    expect(first.digest).toBe(digest)
    // Backpressure reaches the origin: while the client paused, the node did not read the
    // rest of the object (only socket and stream buffers' worth ran ahead).
    expect(first.ahead).toBeLessThan(40 * MiB)
    const second = await fetchAll()
    expect(second.res.headers['x-cache']).toBe('HIT')
    expect(second.bytes).toBe(pieces * MiB)
    expect(second.digest).toBe(digest)
    // Too large for the memory tier: served from disk, in pieces.
    expect(h.store.keys()).toHaveLength(1)
    expect(h.store.memory.has(h.store.keys()[0] as string)).toBe(false)
    expect(h.seen).toHaveLength(1)
  }, 60_000)

  it('passes objects larger than the store allows through uncached', async () => {
    const h = await setup({ diskBytes: 4 * MiB }) // largest object: 1 MiB
    h.origin = answer({ 'cache-control': 'max-age=60' }, Buffer.alloc(2 * MiB, 3))
    expect((await h.get('/huge')).body.length).toBe(2 * MiB)
    expect((await h.get('/huge')).headers['x-cache']).toBe('MISS')
    // Without Content-Length too: the write stops at the limit, the client still gets it all.
    h.origin = (_req, res) => {
      res.writeHead(200, { 'cache-control': 'max-age=60' })
      res.write(Buffer.alloc(MiB, 1))
      res.end(Buffer.alloc(MiB, 2))
    }
    expect((await h.get('/chunked')).body.length).toBe(2 * MiB)
    expect(h.store.keys()).toHaveLength(0)
  })

  it('finishes filling a cacheable object when its client disconnects', async () => {
    const h = await setup()
    h.origin = (_req, res) => {
      res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': String(2 * MiB) })
      res.write(Buffer.alloc(MiB, 1))
      setTimeout(() => res.end(Buffer.alloc(MiB, 2)), 200)
    }
    await new Promise<void>((resolve) => {
      const req = http.get(`${h.edgeUrl}/leave`, (res) => {
        res.once('data', () => {
          req.destroy()
          resolve()
        })
      })
      req.on('error', () => {})
    })
    await sleep(400)
    const r = await h.get('/leave')
    expect(r.headers['x-cache']).toBe('HIT')
    expect(r.body.length).toBe(2 * MiB)
    expect(h.seen).toHaveLength(1)
  })

  it('abandons a huge fill once its client is gone', async () => {
    const h = await setup({ init: { detachedFillMaxBytes: 256 * KiB } })
    h.origin = (_req, res) => {
      res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': String(4 * MiB) })
      res.write(Buffer.alloc(64 * KiB, 1))
      const timer = setTimeout(() => res.end(Buffer.alloc(4 * MiB - 64 * KiB, 2)), 300)
      res.on('close', () => clearTimeout(timer))
    }
    await new Promise<void>((resolve) => {
      const req = http.get(`${h.edgeUrl}/abandon`, (res) => {
        res.once('data', () => {
          req.destroy()
          resolve()
        })
      })
      req.on('error', () => {})
    })
    await sleep(500)
    expect(h.store.keys()).toHaveLength(0)
  })
})

describe('origin cache: ranges and HEAD', () => {
  it('serves ranges from a cached object, 416 when unsatisfiable', async () => {
    const h = await setup()
    h.origin = answer({ 'cache-control': 'max-age=60', etag: '"r1"' }, '0123456789')
    await h.get('/r')
    const part = await h.get('/r', { headers: { range: 'bytes=2-5' } })
    expect(part.status).toBe(206)
    expect(part.text).toBe('2345')
    expect(part.headers['content-range']).toBe('bytes 2-5/10')
    expect(part.headers['x-cache']).toBe('HIT')
    expect((await h.get('/r', { headers: { range: 'bytes=-3' } })).text).toBe('789')
    const bad = await h.get('/r', { headers: { range: 'bytes=20-' } })
    expect(bad.status).toBe(416)
    expect(bad.headers['content-range']).toBe('bytes */10')
    expect(JSON.parse(bad.text).error.code).toBe('SHOAL_ERR_RANGE_NOT_SATISFIABLE')
    // If-Range with another validator: the whole object.
    const whole = await h.get('/r', { headers: { range: 'bytes=2-5', 'if-range': '"other"' } })
    expect(whole.status).toBe(200)
    expect(whole.text).toBe('0123456789')
    expect(h.seen).toHaveLength(1)
  })

  it('serves ranges of large objects from disk', async () => {
    const h = await setup({ memoryBytes: 1 * MiB })
    const body = Buffer.alloc(2 * MiB)
    for (let i = 0; i < body.length; i++) body[i] = i % 256
    h.origin = answer({ 'cache-control': 'max-age=60' }, body)
    await h.get('/disk')
    await h.cache.idle()
    const part = await h.get('/disk', { headers: { range: 'bytes=1048576-1048580' } })
    expect(part.status).toBe(206)
    expect([...part.body]).toEqual([0, 1, 2, 3, 4])
  })

  it('fetches the whole object on a range miss, serves the range and caches the object', async () => {
    const h = await setup()
    h.origin = answer({ 'cache-control': 'max-age=60' }, '0123456789')
    const part = await h.get('/rm', { headers: { range: 'bytes=3-4' } })
    expect(part.status).toBe(206)
    expect(part.text).toBe('34')
    expect(h.seen[0]?.headers.range).toBeUndefined()
    await sleep(50)
    const whole = await h.get('/rm')
    expect(whole.headers['x-cache']).toBe('HIT')
    expect(whole.text).toBe('0123456789')
  })

  it('passes the range to the origin for objects it will not cache', async () => {
    const h = await setup()
    h.origin = (req, res) => {
      if (req.headers.range === 'bytes=0-1') {
        res.writeHead(206, { 'content-range': 'bytes 0-1/10', 'cache-control': 'no-store' })
        res.end('01')
        return
      }
      res.writeHead(200, { 'cache-control': 'no-store', 'content-length': '10' })
      res.end('0123456789')
    }
    const part = await h.get('/nr', { headers: { range: 'bytes=0-1' } })
    expect(part.status).toBe(206)
    expect(part.text).toBe('01')
    expect(h.seen.at(-1)?.headers.range).toBe('bytes=0-1')
  })

  it('answers HEAD from the cache and forwards a HEAD miss as HEAD', async () => {
    const h = await setup()
    h.origin = answer({ 'cache-control': 'max-age=60', 'content-type': 'text/plain' }, 'twelve bytes')
    const miss = await h.get('/head', { method: 'HEAD' })
    expect(miss.headers['x-cache']).toBe('MISS')
    expect(h.seen[0]?.method).toBe('HEAD')
    await h.get('/head')
    const hit = await h.get('/head', { method: 'HEAD' })
    expect(hit.headers['x-cache']).toBe('HIT')
    expect(hit.headers['content-length']).toBe('12')
    expect(hit.body.length).toBe(0)
    expect(h.seen).toHaveLength(2)
  })
})

describe('origin cache: other methods', () => {
  it('passes POST through with its body streamed, and invalidates the target', async () => {
    const h = await setup()
    h.origin = (req, res) => {
      const last = h.seen.at(-1)
      if (req.method === 'POST') {
        res.writeHead(201, { location: '/items/7', 'content-location': '/list' })
        res.end(`got ${last?.body.length}`)
        return
      }
      res.writeHead(200, { 'cache-control': 'max-age=60' })
      res.end(`${req.url}`)
    }
    await h.get('/list')
    await h.get('/items/7')
    await h.get('/other')
    expect((await h.get('/list')).headers['x-cache']).toBe('HIT')
    const body = Buffer.alloc(300 * KiB, 9)
    const post = await h.get('/list', {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/octet-stream' },
    })
    expect(post.status).toBe(201)
    expect(post.text).toBe(`got ${body.length}`)
    expect(post.headers['x-cache']).toBe('BYPASS')
    expect(h.seen.at(-1)?.body.equals(body)).toBe(true)
    expect(h.seen.at(-1)?.headers['content-type']).toBe('application/octet-stream')
    expect((await h.get('/list')).headers['x-cache']).toBe('MISS')
    expect((await h.get('/items/7')).headers['x-cache']).toBe('MISS')
    expect((await h.get('/other')).headers['x-cache']).toBe('HIT')
  })

  it('does not invalidate after an error response, nor after a safe method', async () => {
    const h = await setup()
    h.origin = (req, res) => {
      if (req.method === 'DELETE') res.writeHead(500)
      else res.writeHead(200, { 'cache-control': 'max-age=60' })
      res.end()
    }
    await h.get('/keep')
    await h.get('/keep', { method: 'DELETE' })
    await h.get('/keep', { method: 'OPTIONS' })
    expect((await h.get('/keep')).headers['x-cache']).toBe('HIT')
  })

  it('invalidates every variant of the target', async () => {
    const h = await setup()
    h.origin = (req, res) => {
      res.writeHead(200, { 'cache-control': 'max-age=60', vary: 'Accept-Encoding' })
      res.end(req.method)
    }
    await h.get('/v', { headers: { 'accept-encoding': 'gzip' } })
    await h.get('/v')
    await h.get('/v', { method: 'PUT', body: 'x' })
    expect((await h.get('/v', { headers: { 'accept-encoding': 'gzip' } })).headers['x-cache']).toBe('MISS')
    expect((await h.get('/v')).headers['x-cache']).toBe('MISS')
  })

  it('refuses TRACE and CONNECT-like methods', async () => {
    const h = await setup()
    const r = await h.get('/t', { method: 'TRACE' })
    expect(r.status).toBe(405)
    expect(h.seen).toHaveLength(0)
  })
})

describe('origin cache: headers', () => {
  it('removes hop-by-hop headers both ways', async () => {
    const h = await setup()
    h.origin = (_req, res) => {
      res.setHeader('connection', 'x-origin-hop')
      res.setHeader('x-origin-hop', '1')
      res.setHeader('keep-alive', 'timeout=77')
      res.setHeader('proxy-authenticate', 'Basic')
      res.setHeader('x-end', 'kept')
      res.end('ok')
    }
    await new Promise<void>((resolve, reject) => {
      const req = http.get(
        `${h.edgeUrl}/hop`,
        {
          headers: {
            connection: 'keep-alive, x-client-hop',
            'x-client-hop': '1',
            'keep-alive': 'timeout=5',
            te: 'trailers',
            'proxy-authorization': 'Basic abc',
            'x-end': 'kept',
          },
          agent: false,
        },
        (res) => {
          res.resume()
          res.on('end', resolve)
        },
      )
      req.on('error', reject)
    })
    const at = h.seen[0]?.headers ?? {}
    expect(at['x-client-hop']).toBeUndefined()
    expect(at.te).toBeUndefined()
    expect(at['keep-alive']).toBeUndefined()
    expect(at['proxy-authorization']).toBeUndefined()
    expect(at['x-end']).toBe('kept')
    const r = await h.get('/hop')
    expect(r.headers['x-origin-hop']).toBeUndefined()
    expect(r.headers['keep-alive']).not.toBe('timeout=77')
    expect(r.headers['proxy-authenticate']).toBeUndefined()
    expect(r.headers['x-end']).toBe('kept')
  })

  it('appends to Via both ways', async () => {
    const h = await setup()
    h.origin = answer({ via: '1.1 origin-proxy', 'cache-control': 'max-age=60' })
    await h.get('/via', { headers: { via: '1.0 client-proxy' } })
    expect(h.seen[0]?.headers.via).toBe('1.0 client-proxy, 1.1 edge-test')
    expect((await h.get('/via')).headers.via).toBe('1.1 origin-proxy, 1.1 edge-test')
  })

  it('forwards the client address only when told to', async () => {
    const h = await setup({ init: { forwardClientIp: true } })
    await h.get('/ip')
    expect(h.seen[0]?.headers['x-forwarded-for']).toBe('127.0.0.1')
  })
})

describe('origin cache: purge', () => {
  it('removes every variant and query of a path, and everything under a prefix', async () => {
    const h = await setup()
    h.origin = (req, res) => {
      res.writeHead(200, {
        'cache-control': 'max-age=600',
        ...(req.url?.startsWith('/v') === true ? { vary: 'Accept-Encoding' } : {}),
      })
      res.end(req.url)
    }
    for (const path of ['/a', '/a?x=1', '/ab', '/img/1.png', '/img/2.png', '/imgx', '/caf%C3%A9'])
      await h.get(path)
    await h.get('/v', { headers: { 'accept-encoding': 'gzip' } })
    await h.get('/v')
    expect(await h.cache.purge({ site: 'site', paths: ['/a', '/v', '/café'], prefixes: [] })).toBe(5)
    expect((await h.get('/a')).headers['x-cache']).toBe('MISS')
    expect((await h.get('/a?x=1')).headers['x-cache']).toBe('MISS')
    expect((await h.get('/ab')).headers['x-cache']).toBe('HIT')
    expect((await h.get('/caf%C3%A9')).headers['x-cache']).toBe('MISS')
    expect((await h.get('/v')).headers['x-cache']).toBe('MISS')
    expect(await h.cache.purge({ site: 'site', paths: [], prefixes: ['/img/'] })).toBe(2)
    expect((await h.get('/img/1.png')).headers['x-cache']).toBe('MISS')
    expect((await h.get('/imgx')).headers['x-cache']).toBe('HIT')
    expect(await h.cache.purge({ site: 'other', paths: [], prefixes: ['/'] })).toBe(0)
    expect(await h.cache.purge({ site: 'site', paths: [], prefixes: ['/'] })).toBeGreaterThan(0)
    expect(h.store.keys()).toHaveLength(0)
  })

  it('keeps a fill in flight during a purge from committing', async () => {
    const h = await setup()
    h.origin = (_req, res) => {
      res.writeHead(200, { 'cache-control': 'max-age=60' })
      res.write('a')
      setTimeout(() => res.end('b'), 100)
    }
    const pending = h.get('/p')
    await sleep(30)
    await h.cache.purge({ site: 'site', paths: ['/p'], prefixes: [] })
    expect((await pending).text).toBe('ab')
    expect((await h.get('/p')).headers['x-cache']).toBe('MISS')
  })
})

describe('origin cache: fast path hits', () => {
  it('prepares a fresh memory hit, with its head cached per second', async () => {
    const h = await setup()
    h.origin = answer({ 'cache-control': 'max-age=60', 'content-type': 'text/css' }, 'body{}')
    const none = (): undefined => undefined
    expect(h.cache.peekHit({ site: 'site', path: '/f.css' }, none)).toBeUndefined()
    await h.get('/f.css')
    const hit = h.cache.peekHit({ site: 'site', path: '/f.css' }, none)
    expect(hit?.body.toString()).toBe('body{}')
    expect(hit?.date).toBe(false)
    const head = hit?.head.toString('latin1') ?? ''
    expect(head.startsWith('HTTP/1.1 200 OK\r\n')).toBe(true)
    expect(head).toContain('content-type: text/css\r\n')
    expect(head).toContain('age: 0\r\n')
    expect(head).toContain('x-cache: HIT\r\n')
    expect(head).toContain('via: 1.1 edge-test\r\n')
    expect(head).toContain('content-length: 6\r\n')
    expect(head).toMatch(/\r\ndate: [^\r]+\r\n/)
    expect(head.endsWith('\r\n\r\n')).toBe(false)
    expect(h.cache.peekHit({ site: 'site', path: '/f.css' }, none)?.head).toBe(hit?.head)
    h.advance(1)
    expect(h.cache.peekHit({ site: 'site', path: '/f.css' }, none)?.head.toString()).toContain('age: 1\r\n')
    h.advance(60)
    expect(h.cache.peekHit({ site: 'site', path: '/f.css' }, none)).toBeUndefined()
  })

  it('selects the variant with the fast path headers, and refuses no-cache entries', async () => {
    const h = await setup()
    h.origin = (req, res) => {
      res.writeHead(200, {
        'cache-control': req.url === '/nc' ? 'no-cache' : 'max-age=60',
        etag: '"e"',
        vary: 'Accept-Encoding',
      })
      res.end(`ae=${req.headers['accept-encoding']}`)
    }
    await h.get('/v', { headers: { 'accept-encoding': 'gzip' } })
    await h.get('/nc')
    const gz = h.cache.peekHit({ site: 'site', path: '/v' }, (name) =>
      name === 'accept-encoding' ? 'gzip, deflate' : undefined,
    )
    expect(gz?.body.toString()).toBe('ae=gzip')
    expect(h.cache.peekHit({ site: 'site', path: '/v' }, () => undefined)).toBeUndefined()
    expect(h.cache.peekHit({ site: 'site', path: '/nc' }, () => undefined)).toBeUndefined()
  })
})

describe('origin cache: construction', () => {
  it('refuses bad options with typed errors', async () => {
    const h = await setup()
    const upstream = { request: async () => Promise.reject(new Error('unused')) }
    const invalid = expect.objectContaining({ code: 'SHOAL_ERR_INVALID_ARGUMENT' })
    expect(() => createOriginCache({ viaName: 'a b' }, { store: h.store, upstream })).toThrow(invalid)
    expect(() => createOriginCache({ heuristicFraction: -1 }, { store: h.store, upstream })).toThrow(invalid)
    expect(() => createOriginCache({}, { store: undefined as never, upstream })).toThrow(invalid)
    expect(() => createOriginCache({}, { store: h.store, upstream: undefined as never })).toThrow(invalid)
    expect(() =>
      createOriginCache({ diskAdmission: 'sometimes' as never }, { store: h.store, upstream }),
    ).toThrow(invalid)
  })
})

describe('origin cache: more edges', () => {
  it('keeps filling when the client leaves before the head arrives', async () => {
    const h = await setup()
    h.origin = (_req, res) => {
      setTimeout(() => {
        res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': '5' })
        res.end('early')
      }, 150)
    }
    await new Promise<void>((resolve) => {
      const req = http.get(`${h.edgeUrl}/early`)
      req.on('error', () => resolve())
      setTimeout(() => {
        req.destroy()
        resolve()
      }, 30)
    })
    await sleep(50)
    await h.cache.idle()
    const r = await h.get('/early')
    expect(r.headers['x-cache']).toBe('HIT')
    expect(h.seen).toHaveLength(1)
  })

  it('revalidates a no-cache response on every request', async () => {
    const h = await setup()
    h.origin = (req, res) => {
      if (req.headers['if-none-match'] === '"n"')
        res.writeHead(304, { etag: '"n"', 'cache-control': 'no-cache' })
      else res.writeHead(200, { etag: '"n"', 'cache-control': 'no-cache', 'content-length': '2' })
      res.end(req.headers['if-none-match'] === '"n"' ? undefined : 'nc')
    }
    await h.get('/nc')
    for (let i = 0; i < 3; i++) {
      const r = await h.get('/nc')
      expect(r.headers['x-cache']).toBe('REVALIDATED')
      expect(r.text).toBe('nc')
    }
    expect(h.seen).toHaveLength(4)
  })

  it('revalidates a stale entry for HEAD with a conditional GET', async () => {
    const h = await setup()
    h.origin = answer({ 'cache-control': 'max-age=10', etag: '"h"' }, 'head body')
    await h.get('/hs')
    h.advance(20)
    h.origin = (_req, res) => {
      res.writeHead(304, { etag: '"h"', 'cache-control': 'max-age=10' })
      res.end()
    }
    const r = await h.get('/hs', { method: 'HEAD' })
    expect(r.headers['x-cache']).toBe('REVALIDATED')
    expect(r.headers['content-length']).toBe('9')
    expect(r.body.length).toBe(0)
    expect(h.seen[1]?.method).toBe('GET')
    expect(h.seen[1]?.headers['if-none-match']).toBe('"h"')
  })

  it('fetches again when a 304 names another representation', async () => {
    const h = await setup()
    h.origin = answer({ 'cache-control': 'max-age=10', etag: '"a"' }, 'A')
    await h.get('/tag')
    h.advance(20)
    h.origin = (req, res) => {
      if (req.headers['if-none-match'] !== undefined) {
        res.writeHead(304, { etag: '"b"' })
        res.end()
        return
      }
      res.writeHead(200, { 'cache-control': 'max-age=10', etag: '"b"', 'content-length': '1' })
      res.end('B')
    }
    const r = await h.get('/tag')
    expect(r.text).toBe('B')
    expect(h.seen).toHaveLength(3)
    expect((await h.get('/tag')).headers['x-cache']).toBe('HIT')
  })

  it('counts hits and misses in the metrics', async () => {
    const { Registry } = await import('prom-client')
    const { createMetrics } = await import('../src/metrics.ts')
    const register = new Registry()
    const metrics = createMetrics(register)
    const dir = await mkdtemp(join(tmpdir(), 'shoal-origin-'))
    const store = createObjectStore({
      memory: { maxBytes: MiB },
      disk: { dir, maxBytes: 64 * MiB, durable: false },
    })
    await store.start()
    const upstream = createHttpUpstream({
      connectTimeoutMs: 1000,
      headersTimeoutMs: 1000,
      bodyTimeoutMs: 1000,
    })
    const origin = http.createServer(answer({ 'cache-control': 'max-age=60' }, 'm'))
    const originUrl = await listen(origin)
    const cache = createOriginCache({}, { store, upstream, metrics })
    const edge = http.createServer((req, res) => {
      void cache.handle(req, res, { site: 'm', origin: originUrl, path: req.url ?? '/' })
    })
    const edgeUrl = await listen(edge)
    cleanups.push(async () => {
      await cache.idle()
      origin.closeAllConnections()
      edge.closeAllConnections()
      origin.close()
      edge.close()
      await upstream.close()
      await store.close()
      await rm(dir, { recursive: true, force: true })
    })
    await (await request(`${edgeUrl}/m`)).body.text()
    await cache.idle()
    await (await request(`${edgeUrl}/m`)).body.text()
    expect(cache.peekHit({ site: 'm', path: '/m' }, () => undefined)).toBeDefined()
    const value = async (name: string, labels: Record<string, string>) =>
      (await register.getSingleMetric(name)?.get())?.values.find((v) =>
        Object.entries(labels).every(([k, l]) => v.labels[k] === l),
      )?.value
    expect(await value('shoal_edge_cache_hits_total', { tier: 'memory' })).toBe(2)
    expect(await value('shoal_edge_cache_misses_total', { kind: 'origin' })).toBe(1)
    expect(await value('shoal_edge_upstream_bytes_total', { upstream: 'origin' })).toBe(1)
  })

  it('never prepares a fast-path answer for a bodiless status', async () => {
    const h = await setup()
    h.origin = answer({ 'cache-control': 'max-age=60' }, '', 204)
    await h.get('/empty')
    expect((await h.get('/empty')).headers['x-cache']).toBe('HIT')
    expect(h.cache.peekHit({ site: 'site', path: '/empty' }, () => undefined)).toBeUndefined()
  })
})

describe('origin cache: admission to disk', () => {
  it('writes a pulled object to disk at its second use, and at its first with first-use', async () => {
    const h = await setup()
    h.origin = answer({ 'cache-control': 'max-age=60' }, 'twice')
    expect((await h.get('/a')).headers['x-cache']).toBe('MISS')
    const key = h.store.keys()[0] as string
    expect(h.store.memory.has(key)).toBe(true)
    expect(h.store.disk.has(key)).toBe(false)
    const hit = await h.get('/a')
    expect(hit.headers['x-cache']).toBe('HIT')
    expect(hit.text).toBe('twice')
    await h.store.saved()
    expect(h.store.disk.has(key)).toBe(true)
    expect(h.seen).toHaveLength(1)

    const eager = await setup({ init: { diskAdmission: 'first-use' } })
    eager.origin = answer({ 'cache-control': 'max-age=60' }, 'once')
    await eager.get('/b')
    expect(eager.store.disk.keys()).toHaveLength(1)
  })
})
