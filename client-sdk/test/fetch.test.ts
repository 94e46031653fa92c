import { computeCid } from '@shoal/protocol'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ClientEvent, createClient } from '../src/index.ts'
import { bytesOf, type Content, makeContent, type Nodes, startEdgeNodes } from './helpers/nodes.ts'

describe('client.fetch: content ids from real edge nodes', () => {
  let nodes: Nodes
  let big: Content
  let small: Content
  beforeAll(async () => {
    nodes = await startEdgeNodes(2)
    big = await makeContent(600_000, 65536)
    small = await makeContent(1000, 1024, 3)
    await nodes.push(big)
    await nodes.push(small)
  })
  afterAll(async () => {
    await nodes.close()
  })

  it('streams the whole object, verified, with the headers of a CID', async () => {
    const client = createClient({ nodes: nodes.urls })
    const res = await client.fetch(`shoal://${big.cid.text}`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-length')).toBe(String(big.bytes.length))
    expect(res.headers.get('etag')).toBe(`"${big.cid.text}"`)
    expect(res.headers.get('content-type')).toBe('application/octet-stream')
    expect(res.headers.get('cache-control')).toContain('immutable')
    expect(Buffer.from(await bytesOf(res)).equals(Buffer.from(big.bytes))).toBe(true)
    await client.stop()
  })

  it('fetches only the chunks a Range needs and answers 206 with exactly the bytes', async () => {
    const client = createClient({ nodes: [nodes.urls[0]!] })
    const cases: [string, number, number][] = [
      ['bytes=0-0', 0, 1],
      ['bytes=70000-70009', 70000, 70010],
      ['bytes=65536-131071', 65536, 131072],
      ['bytes=599990-', 599990, 600000],
      ['bytes=-100', 599900, 600000],
      ['bytes=100000-9999999', 100000, 600000],
    ]
    for (const [range, start, end] of cases) {
      const res = await client.fetch(`shoal://${big.cid.text}`, { headers: { range } })
      expect(res.status, range).toBe(206)
      expect(res.headers.get('content-range')).toBe(`bytes ${start}-${end - 1}/${big.bytes.length}`)
      expect(res.headers.get('content-length')).toBe(String(end - start))
      const got = await bytesOf(res)
      expect(Buffer.from(got).equals(Buffer.from(big.bytes.subarray(start, end))), range).toBe(true)
    }
    await expect(
      client.fetch(`shoal://${big.cid.text}`, { headers: { range: 'bytes=600000-' } }),
    ).rejects.toMatchObject({ code: 'SHOAL_ERR_RANGE_NOT_SATISFIABLE' })
    // a header that is not one bytes range is ignored
    const whole = await client.fetch(`shoal://${big.cid.text}`, { headers: { range: 'bytes=0-1,5-6' } })
    expect(whole.status).toBe(200)
    await whole.body?.cancel()
    await client.stop()
  })

  it('needs no leaves request for a one-chunk object and caches leaves per CID', async () => {
    const seen: string[] = []
    const counting: typeof fetch = (input, init) => {
      seen.push(String(input))
      return fetch(input, init)
    }
    const client = createClient({ nodes: [nodes.urls[0]!], fetch: counting })
    const one = await client.fetch(`shoal://${small.cid.text}`)
    expect(Buffer.from(await bytesOf(one)).equals(Buffer.from(small.bytes))).toBe(true)
    expect(seen.filter((u) => u.endsWith('/leaves'))).toHaveLength(0)
    for (let i = 0; i < 2; i++) await (await client.fetch(`shoal://${big.cid.text}`)).arrayBuffer()
    expect(seen.filter((u) => u.endsWith('/leaves'))).toHaveLength(1)
    await client.stop()
  })

  it('answers HEAD and the empty object without any request', async () => {
    const seen: string[] = []
    const counting: typeof fetch = (input, init) => {
      seen.push(String(input))
      return fetch(input, init)
    }
    const client = createClient({ nodes: nodes.urls, fetch: counting })
    const head = await client.fetch(`shoal://${big.cid.text}`, { method: 'HEAD' })
    expect([head.status, head.headers.get('content-length'), head.body]).toEqual([200, '600000', null])
    const { cid: empty } = await computeCid(new Uint8Array(0))
    const res = await client.fetch(`shoal://${empty.text}`)
    expect([res.status, (await bytesOf(res)).length]).toEqual([200, 0])
    expect(seen).toEqual([])
    await client.stop()
  })

  it('reports progress and refuses bad input with typed errors', async () => {
    const client = createClient({ nodes: nodes.urls })
    const progress: number[] = []
    const res = await client.fetch(`shoal://${big.cid.text}`, {
      onProgress: ({ loaded, total }) => {
        expect(total).toBe(600_000)
        progress.push(loaded)
      },
    })
    await res.arrayBuffer()
    expect(progress.at(-1)).toBe(600_000)
    expect(progress).toEqual([...progress].sort((a, b) => a - b))
    await expect(client.fetch('shoal://Not_A_Site/x')).rejects.toMatchObject({
      code: 'SHOAL_ERR_INVALID_ARGUMENT',
    })
    await expect(client.fetch('ftp://example.org/x')).rejects.toMatchObject({
      code: 'SHOAL_ERR_INVALID_ARGUMENT',
    })
    await expect(client.fetch(`shoal://${big.cid.text}`, { method: 'POST' })).rejects.toMatchObject({
      code: 'SHOAL_ERR_METHOD_NOT_ALLOWED',
    })
    // a site path needs a tracker
    await expect(client.fetch('shoal://blog/index.html')).rejects.toMatchObject({
      code: 'SHOAL_ERR_INVALID_ARGUMENT',
    })
    await client.stop()
    await expect(client.fetch(`shoal://${big.cid.text}`)).rejects.toMatchObject({
      code: 'SHOAL_ERR_UNAVAILABLE',
    })
    await client.start()
    await (await client.fetch(`shoal://${small.cid.text}`)).arrayBuffer()
    await client.stop()
  })

  it('validates its options at construction', () => {
    const bad = [
      {},
      { nodes: ['not a url'] },
      { nodes: ['ftp://x'] },
      { nodes: ['http://a'], hedge: { quantile: 2 } },
      { nodes: ['http://a'], timeouts: { ttfbMs: 0 } },
      { nodes: ['http://a'], region: 'EU WEST' },
      { nodes: ['http://a'], sites: { blog: { publisher: '0x12' as `0x${string}` } } },
      { tracker: 'http://t', originSites: { 'https://a.example': 'a' } },
    ]
    for (const init of bad) {
      expect(() => createClient(init), JSON.stringify(init)).toThrow(
        expect.objectContaining({ code: 'SHOAL_ERR_INVALID_ARGUMENT' }),
      )
    }
  })

  it('fails with SHOAL_ERR_UNAVAILABLE naming every node when none holds the object', async () => {
    const events: ClientEvent[] = []
    const client = createClient({ nodes: nodes.urls, onEvent: (e) => events.push(e) })
    const missing = await makeContent(5000, 1024, 99)
    const err = await client.fetch(`shoal://${missing.cid.text}`).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'SHOAL_ERR_UNAVAILABLE' })
    const failures = (err as { failures: { source: string; code: string }[] }).failures
    expect(failures.map((f) => f.source).sort()).toEqual([...nodes.urls].sort())
    expect(failures.every((f) => f.code === 'SHOAL_ERR_NOT_FOUND')).toBe(true)
    expect(events.filter((e) => e.type === 'node-error')).toHaveLength(2)
    await client.stop()
  })
})
