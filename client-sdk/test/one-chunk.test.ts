/**
 * Objects and ranges that lie within one chunk take the short path (`content.small`: the
 * chunk is read whole, verified, and handed over as one piece). The same guarantees as
 * the streamed path: no unverified byte, failover, evidence of a bad chunk, abort.
 */
import { hashChunk } from '@shoal/protocol'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { type ClientEvent, createClient } from '../src/index.ts'
import { toHex } from '../src/reports.ts'
import {
  bytesOf,
  type Content,
  type FaultyNode,
  makeContent,
  type Nodes,
  startEdgeNodes,
  startFaultyNode,
  waitFor,
} from './helpers/nodes.ts'

const CHUNK = 65536
const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b))

describe('client.fetch within one chunk', () => {
  let nodes: Nodes
  let small: Content
  let big: Content
  let faulty: FaultyNode[] = []
  beforeAll(async () => {
    nodes = await startEdgeNodes(2)
    small = await makeContent(3000, CHUNK, 5) // one chunk
    big = await makeContent(1_000_000, CHUNK, 6) // 16 chunks
    await nodes.push(small)
    await nodes.push(big)
  })
  afterEach(async () => {
    for (const f of faulty) await f.close()
    faulty = []
  })
  afterAll(async () => {
    await nodes.close()
  })
  const faultyNode = async (fault: FaultyNode['fault']) => {
    const f = await startFaultyNode(nodes.urls[0]!, fault)
    faulty.push(f)
    return f
  }
  // no hedge: the faulty node is the one that answers, however busy the machine
  const clientOf = (urls: string[], events: ClientEvent[] = []) =>
    createClient({ nodes: urls, hedge: { enabled: false }, onEvent: (e) => events.push(e) })

  it('a one-chunk object from a node flipping a bit: no byte of it, the evidence filed, the bytes from the next node', async () => {
    const liar = await faultyNode({ kind: 'flip', offset: 1234 })
    const events: ClientEvent[] = []
    const client = clientOf([liar.url, nodes.urls[1]!], events)
    const res = await client.fetch(`shoal://${small.cid.text}`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-length')).toBe('3000')
    expect(same(await bytesOf(res), small.bytes)).toBe(true)
    const bad = Buffer.from(small.bytes)
    bad[1234] = (bad[1234] ?? 0) ^ 1
    expect(events.find((e) => e.type === 'integrity-failure')).toEqual({
      type: 'integrity-failure',
      cid: small.cid.text,
      node: liar.url,
      chunk: 0,
      badHash: toHex(await hashChunk(bad)),
    })
    expect(events).toContainEqual(expect.objectContaining({ type: 'failover', node: liar.url, at: 0 }))
    expect(client.stats.coolingOff(liar.url)).toBe(true)
    await client.stop()
  })

  it('a range inside one chunk of a large object: only that chunk is asked, verified, and the bad one switched away from', async () => {
    const flipAt = 3 * CHUNK + 12345
    const liar = await faultyNode({ kind: 'flip', offset: flipAt })
    const events: ClientEvent[] = []
    const client = clientOf([liar.url, nodes.urls[1]!], events)
    const start = 3 * CHUNK + 100
    const end = 3 * CHUNK + 20000
    const res = await client.fetch(`shoal://${big.cid.text}`, {
      headers: { range: `bytes=${start}-${end - 1}` },
    })
    expect(res.status).toBe(206)
    expect(res.headers.get('content-range')).toBe(`bytes ${start}-${end - 1}/${big.bytes.length}`)
    expect(same(await bytesOf(res), big.bytes.subarray(start, end))).toBe(true)
    const bad = Buffer.from(big.bytes.subarray(3 * CHUNK, 4 * CHUNK))
    bad[12345] = (bad[12345] ?? 0) ^ 1
    expect(events.find((e) => e.type === 'integrity-failure')).toMatchObject({
      node: liar.url,
      chunk: 3,
      badHash: toHex(await hashChunk(bad)),
    })
    await client.stop()
  })

  it('a node dying inside the chunk: the next node serves identical bytes', async () => {
    const dying = await faultyNode({ kind: 'die', after: 1000 })
    const events: ClientEvent[] = []
    const client = clientOf([dying.url, nodes.urls[1]!], events)
    const res = await client.fetch(`shoal://${small.cid.text}`)
    expect(same(await bytesOf(res), small.bytes)).toBe(true)
    expect(events).toContainEqual(expect.objectContaining({ type: 'failover', node: dying.url, at: 0 }))
    expect(events.some((e) => e.type === 'integrity-failure')).toBe(false)
    await client.stop()
  })

  it('every node bad: a typed error, no bytes', async () => {
    const liar = await faultyNode({ kind: 'flip', offset: 7 })
    const client = clientOf([liar.url])
    await expect(client.fetch(`shoal://${small.cid.text}`)).rejects.toMatchObject({
      code: 'SHOAL_ERR_UNAVAILABLE',
    })
    await client.stop()
  })

  it('aborted after the response, before the body is read: the body errors with SHOAL_ERR_ABORTED', async () => {
    const client = clientOf([nodes.urls[0]!])
    const controller = new AbortController()
    const res = await client.fetch(`shoal://${small.cid.text}`, { signal: controller.signal })
    controller.abort()
    await expect(res.arrayBuffer()).rejects.toMatchObject({ code: 'SHOAL_ERR_ABORTED' })
    await client.stop()
  })

  it('reports progress and ends the body after the one piece', async () => {
    const client = clientOf([nodes.urls[0]!])
    const seen: { loaded: number; total: number }[] = []
    const res = await client.fetch(`shoal://${small.cid.text}`, { onProgress: (p) => seen.push(p) })
    const reader = res.body!.getReader()
    const first = await reader.read()
    expect(first.value?.length).toBe(3000)
    expect((await reader.read()).done).toBe(true)
    expect(seen).toEqual([{ loaded: 3000, total: 3000 }])
    await client.stop()
  })

  it('stop() before the body is read: the body errors, nothing stays open', async () => {
    const proxy = await faultyNode({ kind: 'ok' })
    const client = clientOf([proxy.url])
    const res = await client.fetch(`shoal://${small.cid.text}`)
    await client.stop()
    await expect(res.arrayBuffer()).rejects.toMatchObject({ code: 'SHOAL_ERR_ABORTED' })
    await waitFor(() => proxy.open === 0)
  })
})
