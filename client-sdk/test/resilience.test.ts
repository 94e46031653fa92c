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

describe('client.fetch survives bad, dying and slow nodes', () => {
  let nodes: Nodes
  let content: Content
  let faulty: FaultyNode[] = []
  beforeAll(async () => {
    nodes = await startEdgeNodes(2)
    content = await makeContent(1_000_000, CHUNK, 11) // 16 chunks, the last short
    await nodes.push(content)
  })
  afterEach(async () => {
    for (const f of faulty) await f.close()
    faulty = []
  })
  afterAll(async () => {
    await nodes.close()
  })

  const faultyNode = async (fault: FaultyNode['fault'], upstream = nodes.urls[0]!) => {
    const f = await startFaultyNode(upstream, fault)
    faulty.push(f)
    return f
  }
  const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b))

  it('detects a flipped bit, switches node at that chunk and hands over identical bytes', async () => {
    const offset = 3 * CHUNK + 12345
    const liar = await faultyNode({ kind: 'flip', offset })
    const events: ClientEvent[] = []
    // no hedge: on a busy machine the honest node could answer first and leave nothing to detect
    const client = createClient({
      nodes: [liar.url, nodes.urls[1]!],
      hedge: { enabled: false },
      onEvent: (e) => events.push(e),
    })
    const res = await client.fetch(`shoal://${content.cid.text}`)
    expect(same(await bytesOf(res), content.bytes)).toBe(true)

    const bad = Buffer.from(content.bytes.subarray(3 * CHUNK, 4 * CHUNK))
    bad[12345] = (bad[12345] ?? 0) ^ 1
    const integrity = events.find((e) => e.type === 'integrity-failure')
    expect(integrity).toEqual({
      type: 'integrity-failure',
      cid: content.cid.text,
      node: liar.url,
      chunk: 3,
      badHash: toHex(await hashChunk(bad)),
    })
    expect(events).toContainEqual(
      expect.objectContaining({ type: 'failover', node: liar.url, at: 3 * CHUNK }),
    )
    // without an account there is nobody to sign a report: the seam says so
    expect(events).toContainEqual(expect.objectContaining({ type: 'report', outcome: 'skipped', chunk: 3 }))
    // the liar is cooling off: the next fetch starts on the honest node
    expect(client.stats.coolingOff(liar.url)).toBe(true)
    liar.requests.length = 0
    await (await client.fetch(`shoal://${content.cid.text}`)).arrayBuffer()
    expect(liar.requests).toEqual([])
    await client.stop()
  })

  it('survives a node dying mid-stream: resumes from the next chunk, no byte repeated or skipped', async () => {
    const dying = await faultyNode({ kind: 'die', after: 5 * CHUNK + 777 })
    const events: ClientEvent[] = []
    const client = createClient({ nodes: [dying.url, nodes.urls[1]!], onEvent: (e) => events.push(e) })
    const res = await client.fetch(`shoal://${content.cid.text}`)
    expect(same(await bytesOf(res), content.bytes)).toBe(true)
    const failover = events.find((e) => e.type === 'failover')
    expect(failover).toMatchObject({ node: dying.url, at: 5 * CHUNK, error: { code: 'SHOAL_ERR_UPSTREAM' } })
    expect(events.some((e) => e.type === 'integrity-failure')).toBe(false)
    await client.stop()
  })

  it('keeps a Range exact across a failover', async () => {
    const dying = await faultyNode({ kind: 'die', after: 2 * CHUNK + 5 })
    const client = createClient({ nodes: [dying.url, nodes.urls[1]!] })
    const [start, end] = [CHUNK + 100, 7 * CHUNK + 3]
    const res = await client.fetch(`shoal://${content.cid.text}`, {
      headers: { range: `bytes=${start}-${end - 1}` },
    })
    expect(res.status).toBe(206)
    expect(same(await bytesOf(res), content.bytes.subarray(start, end))).toBe(true)
    await client.stop()
  })

  it('fails over when a node stalls mid-stream (stall time-out)', async () => {
    const stalling = await faultyNode({ kind: 'stall', after: 4 * CHUNK + 10 })
    const events: ClientEvent[] = []
    const client = createClient({
      nodes: [stalling.url, nodes.urls[1]!],
      timeouts: { stallMs: 200 },
      onEvent: (e) => events.push(e),
    })
    const started = Date.now()
    const res = await client.fetch(`shoal://${content.cid.text}`)
    expect(same(await bytesOf(res), content.bytes)).toBe(true)
    expect(Date.now() - started).toBeLessThan(3_000)
    expect(events.find((e) => e.type === 'failover')).toMatchObject({
      node: stalling.url,
      at: 4 * CHUNK,
      error: { code: 'SHOAL_ERR_UPSTREAM_TIMEOUT' },
    })
    await waitFor(() => stalling.open === 0)
    await client.stop()
  })

  it('hedges to the next node when the first is slow to answer, and aborts the loser', async () => {
    const slow = await faultyNode({ kind: 'delay', ms: 1_500 })
    const events: ClientEvent[] = []
    const client = createClient({
      nodes: [slow.url, nodes.urls[1]!],
      hedge: { initialDelayMs: 50 },
      onEvent: (e) => events.push(e),
    })
    const small = await makeContent(3000, 1024, 5)
    await nodes.push(small)
    const started = Date.now()
    const res = await client.fetch(`shoal://${small.cid.text}`)
    expect(same(await bytesOf(res), small.bytes)).toBe(true)
    expect(Date.now() - started).toBeLessThan(1_000)
    expect(events).toContainEqual(
      expect.objectContaining({ type: 'hedge', from: slow.url, to: nodes.urls[1]! }),
    )
    // the slow node's request was aborted, not left to finish
    await waitFor(() => slow.open === 0)
    // and the slow node is now ranked last: the next fetch does not wait on it
    expect(client.stats.rank([slow.url, nodes.urls[1]!], (u) => u)[0]).toBe(nodes.urls[1])
    await client.stop()
  })

  it('a node that answers nothing in time is given up (TTFB time-out) even without hedging', async () => {
    const slow = await faultyNode({ kind: 'delay', ms: 2_000 })
    const events: ClientEvent[] = []
    const client = createClient({
      nodes: [slow.url, nodes.urls[1]!],
      hedge: { enabled: false },
      timeouts: { ttfbMs: 150 },
      onEvent: (e) => events.push(e),
    })
    const res = await client.fetch(`shoal://${content.cid.text}`)
    expect(same(await bytesOf(res), content.bytes)).toBe(true)
    expect(events).toContainEqual(
      expect.objectContaining({
        type: 'node-error',
        node: slow.url,
        error: expect.objectContaining({ code: 'SHOAL_ERR_UPSTREAM_TIMEOUT' }),
      }),
    )
    expect(events.some((e) => e.type === 'hedge')).toBe(false)
    await client.stop()
  })

  it('gives SHOAL_ERR_UNAVAILABLE with every cause when no node can serve, mid-stream too', async () => {
    const down = await faultyNode({ kind: 'down' })
    const dying = await faultyNode({ kind: 'die', after: 3 * CHUNK })
    // no hedge: on a busy machine a hedge to the down node could fail first and change the order
    const client = createClient({ nodes: [dying.url, down.url], hedge: { enabled: false } })
    const res = await client.fetch(`shoal://${content.cid.text}`)
    const err = await bytesOf(res).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'SHOAL_ERR_UNAVAILABLE' })
    const failures = (err as { failures: { source: string; code: string }[] }).failures
    expect(failures).toEqual([
      expect.objectContaining({ source: dying.url, code: 'SHOAL_ERR_UPSTREAM' }),
      expect.objectContaining({ source: down.url, code: 'SHOAL_ERR_UNAVAILABLE' }),
    ])
    await client.stop()
  })
})

describe('abort', () => {
  let nodes: Nodes
  let content: Content
  let proxy: FaultyNode
  beforeAll(async () => {
    nodes = await startEdgeNodes(1)
    content = await makeContent(4_000_000, CHUNK, 21)
    await nodes.push(content)
  })
  afterEach(async () => {
    await proxy.close()
  })
  afterAll(async () => {
    await nodes.close()
  })

  /** Sockets of the proxy that are not the one idle keep-alive connection the leaves request may leave. */
  const settled = () => proxy.open === 0 && proxy.sockets <= 1

  it('mid-stream, while a read is pending: the body errors with SHOAL_ERR_ABORTED and no request stays open', async () => {
    proxy = await startFaultyNode(nodes.urls[0]!, { kind: 'stall', after: 2 * CHUNK })
    const client = createClient({ nodes: [proxy.url], timeouts: { stallMs: 60_000 } })
    const controller = new AbortController()
    const res = await client.fetch(`shoal://${content.cid.text}`, { signal: controller.signal })
    const reader = res.body!.getReader()
    let got = 0
    const reading = (async () => {
      for (;;) {
        const r = await reader.read()
        if (r.done) return
        got += r.value.length
      }
    })()
    await waitFor(() => got >= 2 * CHUNK)
    controller.abort()
    await expect(reading).rejects.toMatchObject({ code: 'SHOAL_ERR_ABORTED' })
    await waitFor(settled)
    await client.stop()
  })

  it('mid-stream, with no read pending: the sockets close at once', async () => {
    // the node sends a part, then holds the response open
    proxy = await startFaultyNode(nodes.urls[0]!, { kind: 'stall', after: 8 * CHUNK })
    const client = createClient({ nodes: [proxy.url], timeouts: { stallMs: 60_000 } })
    const controller = new AbortController()
    const res = await client.fetch(`shoal://${content.cid.text}`, { signal: controller.signal })
    const reader = res.body!.getReader()
    await reader.read()
    await new Promise((r) => setTimeout(r, 50))
    expect(proxy.open).toBe(1)
    controller.abort()
    await waitFor(settled)
    await expect(reader.read()).rejects.toMatchObject({ code: 'SHOAL_ERR_ABORTED' })
    await client.stop()
  })

  it('before the first byte, with AbortSignal.timeout', async () => {
    proxy = await startFaultyNode(nodes.urls[0]!, { kind: 'delay', ms: 2_000 })
    const client = createClient({ nodes: [proxy.url] })
    await expect(
      client.fetch(`shoal://${content.cid.text}`, { signal: AbortSignal.timeout(30) }),
    ).rejects.toMatchObject({ code: 'SHOAL_ERR_ABORTED' })
    await waitFor(settled)
    await client.stop()
  })

  it('stop() aborts every fetch in flight', async () => {
    proxy = await startFaultyNode(nodes.urls[0]!, { kind: 'stall', after: CHUNK * 2 })
    const client = createClient({ nodes: [proxy.url], timeouts: { stallMs: 60_000 } })
    const res = await client.fetch(`shoal://${content.cid.text}`)
    const reading = res.arrayBuffer()
    await client.stop()
    await expect(reading).rejects.toMatchObject({ code: 'SHOAL_ERR_ABORTED' })
    await waitFor(settled)
  })

  it('cancelling the body closes the request', async () => {
    proxy = await startFaultyNode(nodes.urls[0]!)
    const client = createClient({ nodes: [proxy.url] })
    const res = await client.fetch(`shoal://${content.cid.text}`)
    const reader = res.body!.getReader()
    await reader.read()
    await reader.cancel()
    await waitFor(settled)
    await client.stop()
  })
})
