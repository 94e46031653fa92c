import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { computeCid, encodeSiteManifest, signSiteManifest } from '@shoal/protocol'
import { request } from 'undici'
import { privateKeyToAccount } from 'viem/accounts'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { peerSource } from '../src/content/sources.ts'
import { createEdgeNode, type EdgeNode } from '../src/node.ts'
import { createHttpUpstream } from '../src/upstream/http-upstream.ts'
import { pattern } from './helpers/pattern.ts'

const publisher = privateKeyToAccount(`0x${'42'.repeat(32)}`)

function rawGet(base: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}/`, { path, method: 'GET', agent: false }, (res) => {
      const parts: Buffer[] = []
      res.on('data', (d: Buffer) => parts.push(d))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts).toString() }))
    })
    req.on('error', reject)
    req.end()
  })
}

interface Origin {
  url: string
  hits: Map<string, number>
  files: Map<string, Buffer>
  close(): Promise<void>
}

async function startOrigin(): Promise<Origin> {
  const hits = new Map<string, number>()
  const files = new Map<string, Buffer>()
  const server = http.createServer((req, res) => {
    const path = req.url ?? '/'
    hits.set(path, (hits.get(path) ?? 0) + 1)
    const body = files.get(path)
    if (body === undefined) {
      res.writeHead(404).end()
      return
    }
    // a little delay so concurrent requests really overlap
    setTimeout(() => res.writeHead(200, { 'content-length': body.length }).end(body), 30)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    hits,
    files,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

describe('edge node: content-addressed objects and manifest sites', () => {
  let dataDir: string
  let node: EdgeNode
  let origin: Origin

  const start = async () => {
    node = createEdgeNode({
      dataDir,
      host: '127.0.0.1',
      port: 0,
      memoryCacheBytes: 4 * 2 ** 20,
      acceptPushes: 'any',
    })
    await node.start()
  }

  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'shoal-node-'))
    origin = await startOrigin()
    await start()
  })

  afterEach(async () => {
    await node.stop()
    await origin.close()
    await rm(dataDir, { recursive: true, force: true })
  })

  const get = (path: string, headers: Record<string, string> = {}, method: 'GET' | 'HEAD' = 'GET') =>
    request(`${node.url}${path}`, { method, headers })

  it('accepts a push only when the bytes are the CID, then serves it with ranges and validators', async () => {
    const bytes = pattern(600_000)
    const { cid } = await computeCid(bytes, { chunkSize: 65536 })

    const wrong = Buffer.from(bytes)
    wrong[12345] = (wrong[12345] ?? 0) ^ 1
    const refused = await request(`${node.url}/c/${cid.text}`, { method: 'PUT', body: wrong })
    expect(refused.statusCode).toBe(422)
    expect(await refused.body.json()).toMatchObject({ error: { code: 'SHOAL_ERR_INTEGRITY' } })
    const missing = await get(`/c/${cid.text}`)
    expect(missing.statusCode).toBe(404)
    await missing.body.dump()

    const put = await request(`${node.url}/c/${cid.text}`, { method: 'PUT', body: bytes })
    expect(put.statusCode).toBe(201)
    await put.body.dump()

    const full = await get(`/c/${cid.text}`)
    expect(full.statusCode).toBe(200)
    expect(full.headers.etag).toBe(`"${cid.text}"`)
    expect(full.headers['cache-control']).toBe('public, max-age=31536000, immutable')
    expect(Buffer.from(await full.body.arrayBuffer()).equals(bytes)).toBe(true)

    const part = await get(`/c/${cid.text}`, { range: 'bytes=70000-200000' })
    expect(part.statusCode).toBe(206)
    expect(part.headers['content-range']).toBe(`bytes 70000-200000/${bytes.length}`)
    expect(Buffer.from(await part.body.arrayBuffer()).equals(bytes.subarray(70000, 200001))).toBe(true)

    const tooFar = await get(`/c/${cid.text}`, { range: 'bytes=700000-' })
    expect(tooFar.statusCode).toBe(416)
    expect(tooFar.headers['content-range']).toBe(`bytes */${bytes.length}`)
    expect(await tooFar.body.json()).toMatchObject({ error: { code: 'SHOAL_ERR_RANGE_NOT_SATISFIABLE' } })

    const cached = await get(`/c/${cid.text}`, { 'if-none-match': `"${cid.text}"` })
    expect(cached.statusCode).toBe(304)
    await cached.body.dump()

    const head = await get(`/c/${cid.text}`, {}, 'HEAD')
    expect(head.statusCode).toBe(200)
    expect(head.headers['content-length']).toBe(String(bytes.length))
    await head.body.dump()

    const leaves = await get(`/c/${cid.text}/leaves`)
    expect(leaves.statusCode).toBe(200)
    expect((await leaves.body.arrayBuffer()).byteLength).toBe(Math.ceil(bytes.length / 65536) * 32)
  })

  it('serves a manifest site from its origin, verified, coalescing concurrent misses', async () => {
    const bytes = pattern(300_000, 11)
    const { cid } = await computeCid(bytes)
    origin.files.set('/app.js', bytes)
    const signed = await signSiteManifest(publisher, {
      publisher: publisher.address,
      site: 'demo',
      sequence: 1,
      origin: `${origin.url}/`,
      timestamp: Math.floor(Date.now() / 1000),
      entries: [
        {
          path: '/app.js',
          cid: cid.text,
          size: bytes.length,
          contentType: 'text/javascript',
          cacheControl: 'public, max-age=300',
        },
      ],
    })
    const pushed = await request(`${node.url}/manifests/demo`, {
      method: 'PUT',
      body: encodeSiteManifest(signed),
    })
    expect(pushed.statusCode).toBe(200)
    await pushed.body.dump()

    const responses = await Promise.all(Array.from({ length: 6 }, () => get('/s/demo/app.js')))
    for (const res of responses) {
      expect(res.statusCode).toBe(200)
      expect(res.headers['content-type']).toBe('text/javascript')
      expect(Buffer.from(await res.body.arrayBuffer()).equals(bytes)).toBe(true)
    }
    expect(origin.hits.get('/app.js')).toBe(1)

    // a restart keeps both the manifest and the disk tier: the origin is not asked again
    await node.stop()
    await start()
    const again = await get('/s/demo/app.js')
    expect(Buffer.from(await again.body.arrayBuffer()).equals(bytes)).toBe(true)
    expect(origin.hits.get('/app.js')).toBe(1)

    // an older or equal sequence is refused
    const stale = await request(`${node.url}/manifests/demo`, {
      method: 'PUT',
      body: encodeSiteManifest(signed),
    })
    expect(stale.statusCode).toBe(409)
    expect(await stale.body.json()).toMatchObject({ error: { code: 'SHOAL_ERR_STALE' } })
  })

  it('never caches or serves bytes from an origin that do not match the CID', async () => {
    const bytes = pattern(100_000, 3)
    const { cid } = await computeCid(bytes)
    const corrupt = Buffer.from(bytes)
    corrupt[99_999] = (corrupt[99_999] ?? 0) ^ 0x80
    origin.files.set('/data.bin', corrupt)
    const signed = await signSiteManifest(publisher, {
      publisher: publisher.address,
      site: 'evil',
      sequence: 1,
      origin: `${origin.url}/`,
      timestamp: Math.floor(Date.now() / 1000),
      entries: [
        {
          path: '/data.bin',
          cid: cid.text,
          size: bytes.length,
          contentType: 'application/octet-stream',
          cacheControl: 'public, max-age=60',
        },
      ],
    })
    await (
      await request(`${node.url}/manifests/evil`, { method: 'PUT', body: encodeSiteManifest(signed) })
    ).body.dump()

    const first = await get('/s/evil/data.bin')
    expect(first.statusCode).toBe(502)
    expect(await first.body.json()).toMatchObject({ error: { code: 'SHOAL_ERR_UPSTREAM' } })
    expect(node.content.has(cid)).toBe(false)
    // fixed at the origin: now it is served, proving nothing wrong was kept
    origin.files.set('/data.bin', bytes)
    const second = await get('/s/evil/data.bin')
    expect(second.statusCode).toBe(200)
    expect(Buffer.from(await second.body.arrayBuffer()).equals(bytes)).toBe(true)
    expect(origin.hits.get('/data.bin')).toBe(2)
  })

  it('answers bad input with a status and the JSON error body', async () => {
    const cases: [string, number, string][] = [
      ['/c/not-a-cid', 400, 'SHOAL_ERR_INVALID_CID'],
      ['/s/demo/../../etc/passwd', 400, 'SHOAL_ERR_INVALID_ARGUMENT'],
      ['/s/demo/%2e%2e/x', 400, 'SHOAL_ERR_INVALID_ARGUMENT'],
      ['/s/nosuchsite/x', 404, 'SHOAL_ERR_NOT_FOUND'],
      ['/nothing-here', 404, 'SHOAL_ERR_NOT_FOUND'],
    ]
    for (const [path, status, code] of cases) {
      // raw request targets: a URL parser in the client would normalise the dots away
      const res = await rawGet(node.url, path)
      expect(res.status, path).toBe(status)
      expect(JSON.parse(res.body)).toMatchObject({ error: { code } })
    }
    const bigHeader = await get('/health', { 'x-big': 'a'.repeat(64 * 1024) })
    expect(bigHeader.statusCode).toBe(431)
    await bigHeader.body.dump()
    const health = await get('/health')
    expect(await health.body.json()).toMatchObject({ status: 'ok' })
  })

  it('fills from peers, verifying chunk by chunk, and fails over mid-stream without repeating a byte', async () => {
    const bytes = pattern(5 * 65536 + 123, 5)
    const { cid, leaves } = await computeCid(bytes, { chunkSize: 65536 })
    // a peer that has the right leaves but flips a bit in chunk 3
    const corrupt = Buffer.from(bytes)
    corrupt[3 * 65536 + 10] = (corrupt[3 * 65536 + 10] ?? 0) ^ 1
    origin.files.set(`/c/${cid.text}/leaves`, Buffer.from(leaves))
    origin.files.set(`/c/${cid.text}`, corrupt)
    // a good peer: the first node, holding the content
    const put = await request(`${node.url}/c/${cid.text}`, { method: 'PUT', body: bytes })
    expect(put.statusCode).toBe(201)
    await put.body.dump()

    const upstream = createHttpUpstream({
      connectTimeoutMs: 2000,
      headersTimeoutMs: 2000,
      bodyTimeoutMs: 2000,
    })
    const dir2 = await mkdtemp(join(tmpdir(), 'shoal-node-'))
    const second = createEdgeNode(
      { dataDir: dir2, host: '127.0.0.1', port: 0 },
      { contentSources: [peerSource(upstream, origin.url), peerSource(upstream, node.url)] },
    )
    await second.start()
    try {
      const res = await request(`${second.url}/c/${cid.text}`)
      expect(res.statusCode).toBe(200)
      const got = Buffer.from(await res.body.arrayBuffer())
      expect(got.length).toBe(bytes.length)
      expect(got.equals(bytes)).toBe(true)
      const metrics = await second.registry.getSingleMetricAsString('shoal_edge_integrity_failures_total')
      expect(metrics).toMatch(/source="peer"} 1/)
      // the client has every byte when the last verified chunk is sent; the commit follows
      await vi.waitFor(() => expect(second.content.has(cid)).toBe(true))
    } finally {
      await second.stop()
      await upstream.close()
      await rm(dir2, { recursive: true, force: true })
    }
  })

  it('resolves sites through the tracker named by --tracker', async () => {
    const bytes = pattern(2000, 9)
    const { cid } = await computeCid(bytes)
    origin.files.set('/index.html', bytes)
    const signed = await signSiteManifest(publisher, {
      publisher: publisher.address,
      site: 'tracked',
      sequence: 3,
      origin: `${origin.url}/`,
      timestamp: Math.floor(Date.now() / 1000),
      entries: [
        {
          path: '/index.html',
          cid: cid.text,
          size: bytes.length,
          contentType: 'text/html',
          cacheControl: '',
        },
      ],
    })
    // a stand-in tracker: a real HTTP server answering the tracker's sites route
    origin.files.set('/v1/sites/tracked', Buffer.from(encodeSiteManifest(signed)))
    const dir2 = await mkdtemp(join(tmpdir(), 'shoal-node-'))
    const tracked = createEdgeNode({ dataDir: dir2, host: '127.0.0.1', port: 0, trackerUrl: origin.url })
    await tracked.start()
    try {
      const res = await request(`${tracked.url}/s/tracked/`)
      expect(res.statusCode).toBe(200)
      expect(res.headers['content-type']).toBe('text/html')
      expect(Buffer.from(await res.body.arrayBuffer()).equals(bytes)).toBe(true)
      const unknown = await request(`${tracked.url}/s/nosuch/x`)
      expect(unknown.statusCode).toBe(404)
      await unknown.body.dump()
      // another key cannot take over a site the tracker knows, even with a higher sequence
      const squatter = privateKeyToAccount(`0x${'66'.repeat(32)}`)
      const hijack = await signSiteManifest(squatter, {
        ...signed.message,
        publisher: squatter.address,
        sequence: 9,
      })
      const refused = await request(`${tracked.url}/manifests/tracked`, {
        method: 'PUT',
        body: encodeSiteManifest(hijack),
      })
      expect(refused.statusCode).toBe(403)
      expect(await refused.body.json()).toMatchObject({ error: { code: 'SHOAL_ERR_FORBIDDEN' } })
    } finally {
      await tracked.stop()
      await rm(dir2, { recursive: true, force: true })
    }
  })

  it('by default stores pushes only of content a held manifest names', async () => {
    const dir2 = await mkdtemp(join(tmpdir(), 'shoal-node-'))
    const strict = createEdgeNode({ dataDir: dir2, host: '127.0.0.1', port: 0 })
    await strict.start()
    try {
      const bytes = pattern(5000, 21)
      const { cid } = await computeCid(bytes)
      const refused = await request(`${strict.url}/c/${cid.text}`, { method: 'PUT', body: bytes })
      expect(refused.statusCode).toBe(403)
      expect(await refused.body.json()).toMatchObject({ error: { code: 'SHOAL_ERR_FORBIDDEN' } })
      const signed = await signSiteManifest(publisher, {
        publisher: publisher.address,
        site: 'pushed',
        sequence: 1,
        origin: '',
        timestamp: Math.floor(Date.now() / 1000),
        entries: [
          {
            path: '/f.bin',
            cid: cid.text,
            size: bytes.length,
            contentType: 'application/octet-stream',
            cacheControl: '',
          },
        ],
      })
      const manifest = await request(`${strict.url}/manifests/pushed`, {
        method: 'PUT',
        body: encodeSiteManifest(signed),
      })
      expect(manifest.statusCode).toBe(200)
      await manifest.body.dump()
      const accepted = await request(`${strict.url}/c/${cid.text}`, { method: 'PUT', body: bytes })
      expect(accepted.statusCode).toBe(201)
      await accepted.body.dump()
      const served = await request(`${strict.url}/s/pushed/f.bin`)
      expect(Buffer.from(await served.body.arrayBuffer()).equals(bytes)).toBe(true)
    } finally {
      await strict.stop()
      await rm(dir2, { recursive: true, force: true })
    }
  })
})
