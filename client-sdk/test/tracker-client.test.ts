import { once } from 'node:events'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTrackerClient } from '../src/index.ts'

describe('tracker client', () => {
  let server: http.Server
  let url: string
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      if (req.url === '/v1/sites/missing') {
        res
          .writeHead(404, { 'content-type': 'application/json' })
          .end('{"error":{"code":"SHOAL_ERR_NOT_FOUND","message":"no"}}')
      } else if (req.url === '/v1/sites/limited') {
        res.writeHead(429).end('{"error":{"code":"SHOAL_ERR_RATE_LIMITED","message":"slow down"}}')
      } else if (req.url === '/v1/sites/garbage') {
        res.writeHead(200).end('{"message":{"site":"garbage"},"signature":"0x00"}')
      } else {
        res.writeHead(502).end('<html>bad gateway</html>')
      }
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  afterAll(() => {
    server.closeAllConnections()
    server.close()
  })

  it('maps answers to values and typed errors', async () => {
    const tracker = createTrackerClient({ url })
    await expect(tracker.getSite('missing')).resolves.toBeUndefined()
    await expect(tracker.getSite('limited')).rejects.toMatchObject({ code: 'SHOAL_ERR_RATE_LIMITED' })
    await expect(tracker.getSite('garbage')).rejects.toMatchObject({ code: 'SHOAL_ERR_INVALID_FORMAT' })
    await expect(tracker.getSite('other')).rejects.toMatchObject({ code: 'SHOAL_ERR_UPSTREAM' })
    await expect(tracker.getSite('Not A Site')).rejects.toMatchObject({ code: 'SHOAL_ERR_INVALID_ARGUMENT' })
  })

  it('refuses bad URLs and reports a dead tracker as an upstream error', async () => {
    expect(() => createTrackerClient({ url: 'not a url' })).toThrow(
      expect.objectContaining({ code: 'SHOAL_ERR_INVALID_ARGUMENT' }),
    )
    expect(() => createTrackerClient({ url: 'ftp://x' })).toThrow(
      expect.objectContaining({ code: 'SHOAL_ERR_INVALID_ARGUMENT' }),
    )
    const dead = createTrackerClient({ url: 'http://127.0.0.1:1', timeoutMs: 2000 })
    await expect(dead.getSite('x')).rejects.toMatchObject({ code: 'SHOAL_ERR_UPSTREAM' })
  })
})
