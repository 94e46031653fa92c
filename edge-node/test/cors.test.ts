import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { computeCid } from '@shoal/protocol'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CORS_ALLOW_HEADERS, CORS_EXPOSE_HEADERS } from '../src/http/cors.ts'
import { createEdgeNode, type EdgeNode } from '../src/node.ts'

const PAGE = { origin: 'http://127.0.0.1:1' }

describe('CORS on the public content routes, never on operator routes', () => {
  let dataDir: string
  let node: EdgeNode
  let cid: string
  const bytes = Buffer.alloc(200_000, 7)

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'shoal-cors-'))
    node = createEdgeNode({
      dataDir,
      host: '127.0.0.1',
      port: 0,
      acceptPushes: 'any',
      shutdownGraceMs: 100,
      // an origin-pull site whose origin is not listening: its own CORS policy would apply
      sites: [{ name: 'pulled', origin: 'http://127.0.0.1:9' }],
    })
    await node.start()
    cid = (await computeCid(bytes, { chunkSize: 65536 })).cid.text
    const put = await request(`${node.url}/c/${cid}`, { method: 'PUT', body: bytes, headers: PAGE })
    // a push is an operator action: no CORS
    expect(put.headers['access-control-allow-origin']).toBeUndefined()
    await put.body.dump()
  })
  afterAll(async () => {
    await node.stop()
    await rm(dataDir, { recursive: true, force: true })
  })

  it('content answers (fast path, ranges, leaves, errors) carry allow-origin * and the exposed headers', async () => {
    const cases: [string, Record<string, string>, number][] = [
      [`/c/${cid}`, {}, 200], // a memory hit: answered by the fast path
      [`/c/${cid}`, { range: 'bytes=70000-70009' }, 206],
      [`/c/${cid}/leaves`, {}, 200],
      [`/c/${'saejacwl7zmysqljumvgcadjudd6kk4c4mshl6mtoy46y3xxrdba7q5wy'}`, {}, 404],
      ['/s/blog/index.html', {}, 404],
    ]
    for (const [path, headers, status] of cases) {
      const res = await request(`${node.url}${path}`, { headers: { ...PAGE, ...headers } })
      await res.body.dump()
      expect(res.statusCode, path).toBe(status)
      expect(res.headers['access-control-allow-origin'], path).toBe('*')
      expect(res.headers['access-control-expose-headers'], path).toBe(CORS_EXPOSE_HEADERS)
      expect(res.headers['access-control-allow-credentials'], path).toBeUndefined()
    }
    expect(CORS_EXPOSE_HEADERS).toContain('content-range')
  })

  it('answers a preflight for Range on content and leaves with 204', async () => {
    for (const path of [`/c/${cid}`, `/c/${cid}/leaves`, '/s/blog/a.css']) {
      const res = await request(`${node.url}${path}`, {
        method: 'OPTIONS',
        headers: {
          ...PAGE,
          'access-control-request-method': 'GET',
          'access-control-request-headers': 'range',
        },
      })
      await res.body.dump()
      expect(res.statusCode, path).toBe(204)
      expect(res.headers['access-control-allow-origin']).toBe('*')
      expect(res.headers['access-control-allow-methods']).toBe('GET, HEAD')
      expect(res.headers['access-control-allow-headers']).toBe(CORS_ALLOW_HEADERS)
      expect(String(res.headers['access-control-allow-headers'])).toContain('range')
      expect(Number(res.headers['access-control-max-age'])).toBeGreaterThan(0)
    }
  })

  it('gives operator routes and origin-pull sites no CORS headers and no preflight', async () => {
    for (const [method, path] of [
      ['GET', '/metrics'],
      ['GET', '/health'],
      ['OPTIONS', '/admin/purge'],
      ['OPTIONS', '/metrics'],
      ['OPTIONS', '/manifests/blog'],
      ['GET', '/s/pulled/x.js'],
    ] as const) {
      const res = await request(`${node.url}${path}`, { method, headers: PAGE })
      await res.body.dump()
      expect(res.headers['access-control-allow-origin'], `${method} ${path}`).toBeUndefined()
      expect(res.headers['access-control-allow-methods'], `${method} ${path}`).toBeUndefined()
      if (method === 'OPTIONS') expect(res.statusCode, path).toBe(405)
    }
  })
})
