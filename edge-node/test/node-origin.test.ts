import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { encodePurgeRequest, type PurgeRequest, signPurgeRequest } from '@shoal/protocol'
import { request } from 'undici'
import { privateKeyToAccount } from 'viem/accounts'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createEdgeNode, type EdgeNode } from '../src/node.ts'

const publisher = privateKeyToAccount(`0x${'51'.repeat(32)}`)
const stranger = privateKeyToAccount(`0x${'52'.repeat(32)}`)

describe('edge node: origin-pull sites', () => {
  let dataDir: string
  let node: EdgeNode
  let origin: http.Server
  let originUrl: string
  const hits = new Map<string, number>()

  beforeEach(async () => {
    hits.clear()
    dataDir = await mkdtemp(join(tmpdir(), 'shoal-origin-node-'))
    origin = http.createServer((req, res) => {
      const path = req.url ?? '/'
      hits.set(path, (hits.get(path) ?? 0) + 1)
      const body = `origin says ${path}`
      res.writeHead(200, {
        'content-type': 'text/plain',
        'content-length': Buffer.byteLength(body),
        'cache-control': 'public, max-age=600',
      })
      res.end(body)
    })
    origin.listen(0, '127.0.0.1')
    await once(origin, 'listening')
    originUrl = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`
    node = createNode()
    await node.start()
  })

  const createNode = () =>
    createEdgeNode({
      dataDir,
      host: '127.0.0.1',
      port: 0,
      defaultOrigin: originUrl,
      defaultOriginPublisher: publisher.address,
      sites: [{ name: 'blog', origin: `${originUrl}/blog`, publisher: publisher.address }],
    })

  afterEach(async () => {
    await node.stop()
    origin.closeAllConnections()
    origin.close()
    await rm(dataDir, { recursive: true, force: true })
  })

  const get = async (path: string) => {
    const res = await request(`${node.url}${path}`)
    return {
      status: res.statusCode,
      xcache: res.headers['x-cache'],
      via: res.headers.via,
      body: await res.body.text(),
    }
  }

  const purgeRequest = (over: Partial<PurgeRequest> = {}): PurgeRequest => ({
    publisher: publisher.address,
    site: 'blog',
    paths: ['/a.txt'],
    prefixes: [],
    timestamp: Math.floor(Date.now() / 1000),
    nonce: `0x${Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('hex')}`,
    ...over,
  })

  const purge = async (signed: unknown) => {
    const res = await request(`${node.url}/admin/purge`, { method: 'POST', body: JSON.stringify(signed) })
    return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> }
  }

  it('serves --origin at / and a named site at /s/<name>/ as a shared cache', async () => {
    expect(await get('/index.html')).toMatchObject({
      status: 200,
      xcache: 'MISS',
      body: 'origin says /index.html',
    })
    expect(await get('/index.html')).toMatchObject({
      status: 200,
      xcache: 'HIT',
      body: 'origin says /index.html',
    })
    expect(hits.get('/index.html')).toBe(1)
    const blog = await get('/s/blog/a.txt')
    expect(blog).toMatchObject({ status: 200, body: 'origin says /blog/a.txt' })
    expect(blog.via).toContain('shoal')
  })

  it('keeps an object asked for twice across a restart, and lets one asked for once go', async () => {
    await get('/twice.txt')
    expect(await get('/twice.txt')).toMatchObject({ xcache: 'HIT' })
    await get('/once.txt')
    await node.stop()
    node = createNode()
    await node.start()
    expect(await get('/twice.txt')).toMatchObject({
      status: 200,
      xcache: 'HIT',
      body: 'origin says /twice.txt',
    })
    expect(await get('/once.txt')).toMatchObject({ status: 200, xcache: 'MISS' })
    expect(hits.get('/twice.txt')).toBe(1)
    expect(hits.get('/once.txt')).toBe(2)
  })

  it('purges only with a fresh request signed by the site publisher, once', async () => {
    await get('/s/blog/a.txt')
    expect((await get('/s/blog/a.txt')).xcache).toBe('HIT')

    const forged = await signPurgeRequest(stranger, purgeRequest({ publisher: stranger.address }))
    expect(await purge(JSON.parse(encodePurgeRequest(forged)))).toMatchObject({
      status: 403,
      body: { error: { code: 'SHOAL_ERR_FORBIDDEN' } },
    })
    const stale = await signPurgeRequest(
      publisher,
      purgeRequest({ timestamp: Math.floor(Date.now() / 1000) - 3600 }),
    )
    expect((await purge(JSON.parse(encodePurgeRequest(stale)))).status).toBe(401)
    const tampered = JSON.parse(encodePurgeRequest(await signPurgeRequest(publisher, purgeRequest())))
    tampered.message.paths = ['/b.txt']
    expect(await purge(tampered)).toMatchObject({
      status: 401,
      body: { error: { code: 'SHOAL_ERR_INVALID_SIGNATURE' } },
    })
    expect((await get('/s/blog/a.txt')).xcache).toBe('HIT')

    const signed = JSON.parse(encodePurgeRequest(await signPurgeRequest(publisher, purgeRequest())))
    expect(await purge(signed)).toMatchObject({ status: 200, body: { purged: 1 } })
    expect(await purge(signed)).toMatchObject({ status: 409, body: { error: { code: 'SHOAL_ERR_REPLAY' } } })
    expect((await get('/s/blog/a.txt')).xcache).toBe('MISS')
    expect(hits.get('/blog/a.txt')).toBe(2)
  })

  it('purges by prefix on the --origin site', async () => {
    for (const path of ['/img/1.png', '/img/2.png', '/css/x.css']) {
      await get(path)
      // the fill commits just after the client has its bytes
      await vi.waitFor(async () => expect((await get(path)).xcache).toBe('HIT'))
    }
    const signed = await signPurgeRequest(
      publisher,
      purgeRequest({ site: 'default', paths: [], prefixes: ['/img/'] }),
    )
    expect(await purge(JSON.parse(encodePurgeRequest(signed)))).toMatchObject({
      status: 200,
      body: { purged: 2 },
    })
    expect((await get('/css/x.css')).xcache).toBe('HIT')
    expect((await get('/img/1.png')).xcache).toBe('MISS')
  })
})
