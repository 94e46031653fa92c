import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { createManifestEntryProof, encodeManifestEntryProof, type ManifestEntry } from '@shoal/protocol'
import { generatePrivateKey, type PrivateKeyAccount, privateKeyToAccount } from 'viem/accounts'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { type ClientEvent, createClient } from '../src/index.ts'
import {
  bytesOf,
  type Content,
  type FaultyNode,
  makeContent,
  type Nodes,
  type Origin,
  startEdgeNodes,
  startFaultyNode,
  startOrigin,
  waitFor,
} from './helpers/nodes.ts'
import { publish, registerNode, signManifest, startTracker, type TrackerFixture } from './helpers/tracker.ts'

const CHUNK = 16384
const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b))
const entryOf = (
  path: string,
  c: Content,
  contentType = 'application/octet-stream',
  cacheControl = '',
): ManifestEntry => ({
  path,
  cid: c.cid.text,
  size: c.bytes.length,
  contentType,
  cacheControl,
})

describe('with a real tracker: sites, selection, reports, origin fallback', () => {
  let t: TrackerFixture
  let nodes: Nodes
  let proxies: FaultyNode[]
  let origin: Origin
  const keys = [0, 1, 2].map(() => privateKeyToAccount(generatePrivateKey()))
  const publisher = privateKeyToAccount(generatePrivateKey())
  let page: Content
  let image: Content
  let video: Content

  beforeAll(async () => {
    t = await startTracker()
    nodes = await startEdgeNodes(3, keys)
    // every node is reached through a proxy whose behaviour a test can change
    proxies = []
    for (const url of nodes.urls) proxies.push(await startFaultyNode(url))
    for (let i = 0; i < 3; i++) await registerNode(t, keys[i]!, proxies[i]!.url)
    origin = await startOrigin()
    page = await makeContent(5_000, 1024, 1)
    image = await makeContent(300_000, CHUNK, 2)
    video = await makeContent(400_000, CHUNK, 3)
    await nodes.push(page)
    await nodes.push(image)
    origin.files.set('/site/video.bin', video.bytes)
    origin.files.set('/site/caf%C3%A9/image.png', image.bytes)
    await publish(
      t,
      await signManifest(
        publisher,
        'blog',
        1,
        [
          entryOf('/index.html', page, 'text/html; charset=utf-8', 'public, max-age=60'),
          entryOf('/café/image.png', image, 'image/png'),
          entryOf('/video.bin', video),
        ],
        `${origin.url}/site/`,
      ),
    )
  })
  afterEach(() => {
    for (const p of proxies) p.fault = { kind: 'ok' }
  })
  afterAll(async () => {
    await t.close()
    for (const p of proxies) await p.close()
    await nodes.close()
    await origin.close()
  })

  it('resolves shoal://<site>/<path> through a verified entry proof and the tracker selection', async () => {
    const client = createClient({ tracker: t.url })
    const res = await client.fetch('shoal://blog/')
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8')
    expect(res.headers.get('cache-control')).toBe('public, max-age=60')
    expect(res.headers.get('etag')).toBe(`"${page.cid.text}"`)
    expect(same(await bytesOf(res), page.bytes)).toBe(true)
    const img = await client.fetch('shoal://blog/caf%C3%A9/image.png', {
      headers: { range: 'bytes=20000-40000' },
    })
    expect([img.status, img.headers.get('content-type')]).toEqual([206, 'image/png'])
    expect(same(await bytesOf(img), image.bytes.subarray(20000, 40001))).toBe(true)
    expect(proxies.some((p) => p.requests.some((r) => r.startsWith(`/c/${image.cid.text}`)))).toBe(true)
    await expect(client.fetch('shoal://blog/missing.html')).rejects.toMatchObject({
      code: 'SHOAL_ERR_NOT_FOUND',
    })
    await expect(client.fetch('shoal://nosuchsite/index.html')).rejects.toMatchObject({
      code: 'SHOAL_ERR_NOT_FOUND',
    })
    await client.stop()
  })

  it('files a signed integrity report with the tracker when a node flips a bit', async () => {
    const selected = (await (await fetch(`${t.url}/v1/select?cid=${image.cid.text}&count=3`)).json()) as {
      nodes: { node: string; httpUrl: string }[]
    }
    const first = selected.nodes[0]!
    const liar = proxies.find((p) => p.url === first.httpUrl)!
    liar.fault = { kind: 'flip', offset: 5 * CHUNK + 3 }
    const events: ClientEvent[] = []
    const account = privateKeyToAccount(generatePrivateKey())
    const client = createClient({ tracker: t.url, account, onEvent: (e) => events.push(e) })
    const res = await client.fetch(`shoal://${image.cid.text}`)
    expect(same(await bytesOf(res), image.bytes)).toBe(true)
    expect(events).toContainEqual(
      expect.objectContaining({ type: 'integrity-failure', node: liar.url, address: first.node, chunk: 5 }),
    )
    await client.stop() // waits for the report
    expect(events).toContainEqual(
      expect.objectContaining({ type: 'report', node: liar.url, chunk: 5, outcome: 'filed' }),
    )
    // the tracker took it: an unproven integrity failure weighed on the node
    const figures = t.tracker.index.explain(first.node).figures
    expect(figures.failures).toBeGreaterThan(0)
  })

  it('falls back to the origin when every node fails, resuming at the chunk where the nodes stopped', async () => {
    // the nodes do not hold the video; they give its leaves once a node is filled
    for (const p of proxies) p.fault = { kind: 'down' }
    const events: ClientEvent[] = []
    const client = createClient({ tracker: t.url, onEvent: (e) => events.push(e) })
    // no leaves anywhere: the origin's bytes are verified whole against the CID, then served
    const res = await client.fetch('shoal://blog/video.bin')
    expect(same(await bytesOf(res), video.bytes)).toBe(true)
    expect(events).toContainEqual(expect.objectContaining({ type: 'origin-fallback', at: 0 }))
    await client.stop()

    // with the leaves known from the nodes, a body cut mid-stream by every node resumes at the origin
    for (const p of proxies) p.fault = { kind: 'ok' }
    await nodes.push(image)
    for (const p of proxies) p.fault = { kind: 'die', after: 3 * CHUNK + 100 }
    const events2: ClientEvent[] = []
    const client2 = createClient({ tracker: t.url, onEvent: (e) => events2.push(e) })
    const res2 = await client2.fetch('shoal://blog/café/image.png')
    expect(same(await bytesOf(res2), image.bytes)).toBe(true)
    expect(events2.filter((e) => e.type === 'failover').length).toBeGreaterThan(0)
    const fallback = events2.find((e) => e.type === 'origin-fallback')
    expect(fallback).toMatchObject({
      type: 'origin-fallback',
      origin: `${origin.url}/site/caf%C3%A9/image.png`,
    })
    expect((fallback as { at: number }).at % CHUNK).toBe(0)
    await client2.stop()
  })

  it("refuses an origin's wrong bytes: SHOAL_ERR_UNAVAILABLE naming every source", async () => {
    for (const p of proxies) p.fault = { kind: 'down' }
    const wrong = Buffer.from(video.bytes)
    wrong[100_000] = (wrong[100_000] ?? 0) ^ 0x80
    origin.files.set('/site/video.bin', wrong)
    // how many nodes the tracker selects (a node reported by a ticket-holding client in the
    // test above may have been dropped; the down nodes leave selection as probes miss them,
    // so the count is read before and after the fetch)
    const selectable = async () =>
      (
        (await (await fetch(`${t.url}/v1/select?cid=${video.cid.text}&count=3`)).json()) as {
          nodes: unknown[]
        }
      ).nodes.length
    try {
      const before = await selectable()
      const client = createClient({ tracker: t.url })
      const err = await client.fetch('shoal://blog/video.bin').catch((e: unknown) => e)
      const after = await selectable()
      expect(err).toMatchObject({ code: 'SHOAL_ERR_UNAVAILABLE' })
      const failures = (err as { failures: { source: string; code: string }[] }).failures
      expect(failures.at(-1)).toMatchObject({ code: 'SHOAL_ERR_INTEGRITY' })
      // every node the tracker selected was tried, each once, before the origin
      const tried = failures.filter((f) => f.code === 'SHOAL_ERR_UNAVAILABLE').map((f) => f.source)
      expect(new Set(tried).size).toBe(tried.length)
      expect(tried.length).toBeGreaterThanOrEqual(Math.min(before, after))
      expect(tried.length).toBeLessThanOrEqual(Math.max(before, after))
      expect(before).toBeGreaterThanOrEqual(2)
      await client.stop()
    } finally {
      origin.files.set('/site/video.bin', video.bytes)
    }
  })
})

/** A real HTTP server playing a tracker whose answers each test sets. */
interface FakeTracker {
  url: string
  answer: (path: string) => { status: number; body: string; type?: string }
  close(): Promise<void>
}

async function startFakeTracker(): Promise<FakeTracker> {
  const fake: FakeTracker = {
    url: '',
    answer: () => ({ status: 404, body: '{"error":{"code":"SHOAL_ERR_NOT_FOUND","message":"no"}}' }),
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
  const server = http.createServer((req, res) => {
    const a = fake.answer(req.url ?? '/')
    res.writeHead(a.status, { 'content-type': a.type ?? 'application/json' }).end(a.body)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return fake
}

describe('a tracker that lies or answers garbage', () => {
  let fake: FakeTracker
  let nodes: Nodes
  let page: Content
  const publisher = privateKeyToAccount(generatePrivateKey())
  const proofOf = async (
    account: PrivateKeyAccount,
    sequence: number,
    entry = entryOf('/index.html', page),
  ) => createManifestEntryProof(await signManifest(account, 'blog', sequence, [entry]), '/index.html')

  beforeAll(async () => {
    fake = await startFakeTracker()
    nodes = await startEdgeNodes(1)
    page = await makeContent(2000, 1024, 8)
    await nodes.push(page)
  })
  afterAll(async () => {
    await fake.close()
    await nodes.close()
  })

  it('refuses forged entry proofs and a lower sequence than one already seen', async () => {
    const client = createClient({ tracker: fake.url, nodes: nodes.urls })
    let proof = await proofOf(publisher, 5)
    fake.answer = () => ({ status: 200, body: encodeManifestEntryProof(proof) })
    expect(same(await bytesOf(await client.fetch('shoal://blog/index.html')), page.bytes)).toBe(true)
    // every other case asks the tracker each time
    const noCache = createClient({ tracker: fake.url, nodes: nodes.urls, cache: { siteTtlMs: 0 } })

    // an entry changed after signing: the Merkle path no longer reaches the signed root
    const tampered = await proofOf(publisher, 6)
    tampered.entry = { ...tampered.entry, contentType: 'text/html' }
    proof = tampered
    await expect(noCache.fetch('shoal://blog/index.html')).rejects.toMatchObject({
      code: 'SHOAL_ERR_INVALID_PROOF',
    })
    // a header signed by someone else in the publisher's name
    const forged = await proofOf(publisher, 6)
    forged.signature = (await proofOf(privateKeyToAccount(generatePrivateKey()), 6)).signature
    proof = forged
    await expect(noCache.fetch('shoal://blog/index.html')).rejects.toMatchObject({
      code: 'SHOAL_ERR_INVALID_SIGNATURE',
    })
    // another key publishing "blog", validly signed: not the publisher this client trusts
    proof = await proofOf(publisher, 5)
    await (await noCache.fetch('shoal://blog/index.html')).arrayBuffer()
    proof = await proofOf(privateKeyToAccount(generatePrivateKey()), 9)
    await expect(noCache.fetch('shoal://blog/index.html')).rejects.toMatchObject({
      code: 'SHOAL_ERR_INVALID_SIGNATURE',
    })
    // a rollback: sequence 7 seen, then 6 offered
    proof = await proofOf(publisher, 7)
    await (await noCache.fetch('shoal://blog/index.html')).arrayBuffer()
    proof = await proofOf(publisher, 6)
    await expect(noCache.fetch('shoal://blog/index.html')).rejects.toMatchObject({ code: 'SHOAL_ERR_STALE' })
    proof = await proofOf(publisher, 7) // the same sequence again is fine
    await (await noCache.fetch('shoal://blog/index.html')).arrayBuffer()
    // a pinned publisher refuses everyone else from the first answer on
    const pinned = createClient({
      tracker: fake.url,
      nodes: nodes.urls,
      sites: { blog: { publisher: privateKeyToAccount(generatePrivateKey()).address } },
    })
    await expect(pinned.fetch('shoal://blog/index.html')).rejects.toMatchObject({
      code: 'SHOAL_ERR_INVALID_SIGNATURE',
    })
    // an entry whose size disagrees with its CID
    proof = await proofOf(publisher, 8, { ...entryOf('/index.html', page), size: 1 })
    await expect(noCache.fetch('shoal://blog/index.html')).rejects.toMatchObject({
      code: 'SHOAL_ERR_INVALID_FORMAT',
    })
    for (const c of [client, noCache, pinned]) await c.stop()
  })

  it('turns garbage from the tracker into typed errors', async () => {
    const client = createClient({ tracker: fake.url, cache: { siteTtlMs: 0 } })
    const cid = page.cid.text
    const cases: [{ status: number; body: string; type?: string }, string][] = [
      [{ status: 200, body: 'not json at all' }, 'SHOAL_ERR_INVALID_FORMAT'],
      [{ status: 200, body: '{"cid":"x","nodes":[]}' }, 'SHOAL_ERR_INVALID_FORMAT'],
      [{ status: 200, body: `{"cid":"${cid}","nodes":{}}` }, 'SHOAL_ERR_INVALID_FORMAT'],
      [
        { status: 200, body: `{"cid":"${cid}","nodes":[{"node":"0x12","httpUrl":"http://a/"}]}` },
        'SHOAL_ERR_INVALID_FORMAT',
      ],
      [
        {
          status: 200,
          body: `{"cid":"${cid}","nodes":[{"node":"${publisher.address}","region":"eu","score":1,"httpUrl":"javascript:alert(1)"}]}`,
        },
        'SHOAL_ERR_INVALID_FORMAT',
      ],
      [{ status: 502, body: '<html>bad gateway</html>', type: 'text/html' }, 'SHOAL_ERR_UPSTREAM'],
      [
        { status: 429, body: '{"error":{"code":"SHOAL_ERR_RATE_LIMITED","message":"slow"}}' },
        'SHOAL_ERR_RATE_LIMITED',
      ],
    ]
    for (const [answer, code] of cases) {
      fake.answer = () => answer
      await expect(client.fetch(`shoal://${cid}`), answer.body).rejects.toMatchObject({ code })
    }
    // garbage where an entry proof is expected
    fake.answer = () => ({ status: 200, body: '{"header":{},"signature":"0x","index":0}' })
    await expect(client.fetch('shoal://blog/index.html')).rejects.toMatchObject({
      code: 'SHOAL_ERR_INVALID_FORMAT',
    })
    // an empty selection: nothing can serve
    fake.answer = () => ({ status: 200, body: `{"cid":"${cid}","nodes":[]}` })
    await expect(client.fetch(`shoal://${cid}`)).rejects.toMatchObject({ code: 'SHOAL_ERR_UNAVAILABLE' })
    // a tracker that is not there
    const dead = createClient({ tracker: 'http://127.0.0.1:1', timeouts: { trackerMs: 2_000 } })
    await expect(dead.fetch(`shoal://${cid}`)).rejects.toMatchObject({ code: 'SHOAL_ERR_UPSTREAM' })
    await client.stop()
    await dead.stop()
  })

  it('asks the tracker again, excluding failed nodes, when every selected node failed', async () => {
    const down = await startFaultyNode(nodes.urls[0]!, { kind: 'down' })
    const addresses = [randomBytes(20), randomBytes(20)].map(
      (b) => privateKeyToAccount(`0x${b.toString('hex').padEnd(64, '1')}`).address,
    )
    const asked: string[] = []
    fake.answer = (path) => {
      asked.push(path)
      const excluded = new URL(path, 'http://x').searchParams.get('exclude')
      const node =
        excluded === null ? { a: addresses[0], u: down.url } : { a: addresses[1], u: nodes.urls[0] }
      return {
        status: 200,
        body: `{"cid":"${page.cid.text}","nodes":[{"node":"${node.a}","region":"eu-west","score":1,"httpUrl":"${node.u}","peerId":"x","multiaddrs":[]}]}`,
      }
    }
    const client = createClient({ tracker: fake.url })
    expect(same(await bytesOf(await client.fetch(`shoal://${page.cid.text}`)), page.bytes)).toBe(true)
    expect(asked).toHaveLength(2)
    expect(new URL(asked[1]!, 'http://x').searchParams.get('exclude')).toBe(addresses[0])
    await waitFor(() => down.open === 0)
    await client.stop()
    await down.close()
  })
})
