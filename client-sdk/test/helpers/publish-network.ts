/**
 * A small real network for the publisher's tests, all on 127.0.0.1: a tracker, edge
 * nodes that take pushes only for content a held manifest names and check site owners
 * with the tracker (the production default), registered and active; optionally a node
 * that refuses content pushes; and a sample directory to publish.
 */
import { once } from 'node:events'
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import type { EdgeNode, EdgeNodeOptions } from '@shoal/edge-node'
import { request } from 'undici'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { pattern, startEdgeNodes } from './nodes.ts'
import { registerNode, startTracker, type TrackerFixture } from './tracker.ts'

export interface PublishNetwork {
  tracker: TrackerFixture
  nodes: EdgeNode[]
  /** Base URLs the tracker lists, with a trailing `/` (a refusing proxy's URL in place of its node). */
  urls: string[]
  /** The URL of the node that refuses `PUT /c/…`, when asked for. */
  refusing: string | undefined
  close(): Promise<void>
}

/** A proxy in front of a node that answers 503 to content pushes and passes everything else. */
async function startRefusingProxy(upstream: string): Promise<{ url: string; close(): Promise<void> }> {
  const base = upstream.replace(/\/$/, '')
  const server = http.createServer(async (req, res) => {
    if (req.method === 'PUT' && req.url?.startsWith('/c/')) {
      req.resume()
      res
        .writeHead(503, { 'content-type': 'application/json' })
        .end('{"error":{"code":"SHOAL_ERR_UNAVAILABLE","message":"disk full"}}')
      return
    }
    try {
      const hasBody = req.method === 'PUT' || req.method === 'POST'
      const up = await request(`${base}${req.url}`, {
        method: (req.method ?? 'GET') as 'GET',
        headers: { 'content-type': req.headers['content-type'] ?? 'application/octet-stream' },
        ...(hasBody ? { body: req } : {}),
      })
      const headers = { ...up.headers }
      delete headers.connection
      delete headers['keep-alive']
      delete headers['transfer-encoding']
      res.writeHead(up.statusCode, headers)
      for await (const piece of up.body as AsyncIterable<Buffer>) res.write(piece)
      res.end()
    } catch {
      res.destroy()
    }
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

export async function startPublishNetwork(
  count: number,
  init: { refusing?: boolean; node?: Partial<EdgeNodeOptions> } = {},
): Promise<PublishNetwork> {
  const tracker = await startTracker()
  const accounts = Array.from({ length: count + (init.refusing ? 1 : 0) }, () =>
    privateKeyToAccount(generatePrivateKey()),
  )
  const started = await startEdgeNodes(accounts.length, accounts, {
    acceptPushes: 'manifests',
    trackerUrl: tracker.url,
    ...init.node,
  })
  const urls = [...started.urls]
  const proxy = init.refusing ? await startRefusingProxy(urls[count] as string) : undefined
  if (proxy !== undefined) urls[count] = proxy.url
  for (const [i, account] of accounts.entries()) await registerNode(tracker, account, urls[i] as string)
  return {
    tracker,
    nodes: started.nodes,
    urls,
    refusing: proxy?.url,
    async close() {
      await proxy?.close()
      await started.close()
      await tracker.close()
    },
  }
}

/** Site path → bytes of the sample directory (what a client must get back). */
export type SampleFiles = Map<string, Uint8Array>

/**
 * Writes a sample site into a new temp dir: nested directories, an empty file, a file
 * larger than a chunk, names in NFD (published as NFC), two files with the same bytes,
 * a hidden file (skipped) and `.well-known` (published). Returns the dir and the files a
 * client should find, by site path.
 */
export async function writeSampleSite(chunkSize = 256 * 1024): Promise<{ dir: string; files: SampleFiles }> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-publish-site-'))
  const files: SampleFiles = new Map()
  const put = async (name: string, bytes: Uint8Array, sitePath: string | undefined) => {
    await mkdir(dirname(join(dir, name)), { recursive: true })
    await writeFile(join(dir, name), bytes)
    if (sitePath !== undefined) files.set(sitePath, bytes)
  }
  const text = (s: string) => new TextEncoder().encode(s)
  await put('index.html', text('<!doctype html><h1>Hello, Shoal</h1>\n'), '/index.html')
  await put('css/site.css', text('h1 { color: teal }\n'), '/css/site.css')
  await put('a/b/c/deep.txt', text('deep down\n'), '/a/b/c/deep.txt')
  await put('empty.txt', new Uint8Array(), '/empty.txt')
  await put('media/big.bin', pattern(2 * chunkSize + 12_345, 11), '/media/big.bin')
  // NFD on disk ("e" + combining acute), NFC in the manifest
  await put('cafe\u0301/menu\u0308 du jour.html', text('<p>plat du jour</p>\n'), '/café/menü du jour.html')
  await put('日本/😀.txt', text('unicode ok\n'), '/日本/😀.txt')
  await put('copy-of-index.html', text('<!doctype html><h1>Hello, Shoal</h1>\n'), '/copy-of-index.html')
  await put('.env', text('SECRET=1\n'), undefined)
  await put(
    '.well-known/security.txt',
    text('Contact: mailto:sec@example.org\n'),
    '/.well-known/security.txt',
  )
  return { dir, files }
}
