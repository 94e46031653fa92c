import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createEdgeNode, type EdgeNode } from '@shoal/edge-node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ClientEvent, createClient } from '../src/index.ts'
import { type FaultyNode, startFaultyNode } from './helpers/nodes.ts'

describe('https:// URLs of origin-pull sites', () => {
  let origin: http.Server
  let originUrl: string
  const hits: string[] = []
  let node: EdgeNode
  let dataDir: string
  let down: FaultyNode

  beforeAll(async () => {
    origin = http.createServer((req, res) => {
      hits.push(req.url ?? '/')
      res
        .writeHead(200, { 'content-type': 'text/css', 'cache-control': 'public, max-age=60' })
        .end(`/* ${req.url} */`)
    })
    origin.listen(0, '127.0.0.1')
    await once(origin, 'listening')
    originUrl = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`
    dataDir = await mkdtemp(join(tmpdir(), 'shoal-sdk-op-'))
    node = createEdgeNode({
      dataDir,
      host: '127.0.0.1',
      port: 0,
      sites: [{ name: 'example', origin: originUrl }],
    })
    await node.start()
    down = await startFaultyNode(node.url, { kind: 'down' })
  })
  afterAll(async () => {
    await down.close()
    await node.stop()
    origin.closeAllConnections()
    origin.close()
    await rm(dataDir, { recursive: true, force: true })
  })

  it('go to the origin directly by default', async () => {
    const client = createClient({ nodes: [node.url] })
    hits.length = 0
    const res = await client.fetch(`${originUrl}/a.css?v=1`)
    expect([res.status, res.headers.get('x-shoal-source'), await res.text()]).toEqual([
      200,
      'origin',
      '/* /a.css?v=1 */',
    ])
    expect(hits).toEqual(['/a.css?v=1'])
    await client.stop()
  })

  it('go through the nodes for listed origins, failing over, and to the origin when every node fails', async () => {
    const events: ClientEvent[] = []
    const client = createClient({
      nodes: [down.url, node.url],
      originSites: { [originUrl]: 'example' },
      onEvent: (e) => events.push(e),
    })
    hits.length = 0
    const first = await client.fetch(`${originUrl}/b.css`)
    expect([first.status, first.headers.get('x-shoal-source'), await first.text()]).toEqual([
      200,
      `${node.url.replace(/\/$/, '')}/`,
      '/* /b.css */',
    ])
    expect(events).toContainEqual(expect.objectContaining({ type: 'node-error', node: down.url }))
    // the node cached it: the origin saw one request for two fetches
    await (await client.fetch(`${originUrl}/b.css`)).text()
    expect(hits).toEqual(['/b.css'])
    await client.stop()

    const alone = createClient({ nodes: [down.url], originSites: { [originUrl]: 'example' } })
    const res = await alone.fetch(`${originUrl}/c.css`)
    expect([res.headers.get('x-shoal-source'), await res.text()]).toEqual(['origin', '/* /c.css */'])
    await alone.stop()
  })
})
