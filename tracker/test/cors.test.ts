import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CORS_ALLOW_HEADERS, CORS_EXPOSE_HEADERS } from '../src/http/server.ts'
import { startTracker, type TrackerFixture } from './helpers/tracker.ts'

const PAGE = { origin: 'http://127.0.0.1:1' }
const CID = 'saejacwl7zmysqljumvgcadjudd6kk4c4mshl6mtoy46y3xxrdba7q5wy'

describe('CORS on the public API, never on node-facing or operator routes', () => {
  let t: TrackerFixture
  beforeAll(async () => {
    t = await startTracker()
  })
  afterAll(async () => {
    await t.close()
  })

  it('public answers (errors included) carry allow-origin * and the exposed headers', async () => {
    const cases: [string, string, number, string?][] = [
      ['GET', '/health', 200],
      ['GET', `/v1/select?cid=${CID}&count=2`, 200],
      ['GET', '/v1/stats', 200],
      ['GET', '/v1/sites/nosuchsite', 404],
      ['GET', '/v1/sites/nosuchsite/entries?path=/x', 404],
      ['GET', `/v1/nodes/0x${'12'.repeat(20)}`, 404],
      ['GET', '/v1/select?cid=nope', 400],
      ['POST', '/v1/reports', 400, '{}'],
      ['POST', '/v1/tickets', 400, '{}'],
    ]
    for (const [method, path, status, body] of cases) {
      const res = await request(`${t.url}${path}`, {
        method: method as 'GET',
        headers: { ...PAGE, 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body }),
      })
      const text = await res.body.text()
      expect(res.statusCode, `${method} ${path}: ${text}`).toBe(status)
      expect(res.headers['access-control-allow-origin'], path).toBe('*')
      expect(res.headers['access-control-expose-headers'], path).toBe(CORS_EXPOSE_HEADERS)
      expect(res.headers['access-control-allow-credentials'], path).toBeUndefined()
      if (status >= 400) expect(JSON.parse(text).error.code).toMatch(/^SHOAL_ERR_/)
    }
  })

  it('answers preflights for JSON GETs and POSTs with 204 and the methods of the path', async () => {
    const cases: [string, string, string][] = [
      ['/v1/select', 'GET', 'GET, HEAD'],
      ['/v1/sites/blog', 'GET', 'GET, HEAD'],
      ['/v1/sites/blog/entries', 'GET', 'GET, HEAD'],
      ['/v1/reports', 'POST', 'POST'],
      ['/v1/tickets', 'POST', 'POST'],
    ]
    for (const [path, asked, allowed] of cases) {
      const res = await request(`${t.url}${path}`, {
        method: 'OPTIONS',
        headers: {
          ...PAGE,
          'access-control-request-method': asked,
          'access-control-request-headers': 'content-type',
        },
      })
      await res.body.dump()
      expect(res.statusCode, path).toBe(204)
      expect(res.headers['access-control-allow-origin'], path).toBe('*')
      expect(res.headers['access-control-allow-methods'], path).toBe(allowed)
      expect(res.headers['access-control-allow-headers'], path).toBe(CORS_ALLOW_HEADERS)
      expect(String(res.headers['access-control-allow-headers'])).toContain('content-type')
      expect(res.headers.allow, path).toBe(`${allowed}, OPTIONS`)
    }
  })

  it('gives registration, heartbeats, publishing and metrics no CORS and no preflight', async () => {
    for (const path of ['/v1/nodes', '/v1/nodes/heartbeat', '/v1/sites', '/metrics']) {
      const pre = await request(`${t.url}${path}`, {
        method: 'OPTIONS',
        headers: { ...PAGE, 'access-control-request-method': 'POST' },
      })
      await pre.body.dump()
      expect(pre.statusCode, path).toBe(405)
      expect(pre.headers['access-control-allow-origin'], path).toBeUndefined()
      const res = await request(`${t.url}${path}`, {
        method: path === '/metrics' ? 'GET' : 'POST',
        headers: { ...PAGE, 'content-type': 'application/json' },
        ...(path === '/metrics' ? {} : { body: '{}' }),
      })
      await res.body.dump()
      expect(res.headers['access-control-allow-origin'], path).toBeUndefined()
    }
  })
})
