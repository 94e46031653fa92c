import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { computeCid, decodeHealthProof, verifyHealthProof } from '@shoal/protocol'
import { Agent, request } from 'undici'
import { privateKeyToAccount } from 'viem/accounts'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { selfSignedCertificate } from '../../test-support/tls.ts'
import { createEdgeNode, type EdgeNode } from '../src/node.ts'

const account = privateKeyToAccount(`0x${'07'.repeat(32)}`)

describe('edge node: operator surface', () => {
  let dataDir: string
  let node: EdgeNode | undefined

  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'shoal-op-'))
  })
  afterEach(async () => {
    await node?.stop()
    node = undefined
    await rm(dataDir, { recursive: true, force: true })
  })

  it('answers health challenges with a proof signed by the node key', async () => {
    node = createEdgeNode({ dataDir, host: '127.0.0.1', port: 0 }, { account })
    await node.start()
    const challenge = `0x${'ab'.repeat(32)}` as const
    const res = await request(`${node.url}/health?challenge=${challenge}`)
    expect(res.statusCode).toBe(200)
    const body = (await res.body.json()) as { status: string; node: string; proof: unknown }
    expect(body).toMatchObject({ status: 'ok', node: account.address })
    const proof = await verifyHealthProof(decodeHealthProof(body.proof), {
      expectedChallenge: challenge,
      expectedNode: account.address,
    })
    expect(proof.node).toBe(account.address)

    const bad = await request(`${node.url}/health?challenge=nothex`)
    expect(bad.statusCode).toBe(400)
    expect(await bad.body.json()).toMatchObject({ error: { code: 'SHOAL_ERR_INVALID_ARGUMENT' } })
  })

  it('exposes Prometheus metrics with units for requests, bytes and cache', async () => {
    node = createEdgeNode({ dataDir, host: '127.0.0.1', port: 0, acceptPushes: 'any' })
    await node.start()
    const bytes = Buffer.alloc(10_000, 1)
    const { cid } = await computeCid(bytes)
    await (await request(`${node.url}/c/${cid.text}`, { method: 'PUT', body: bytes })).body.dump()
    // the first GET after the push is a memory hit: answered by the fast path
    await (await request(`${node.url}/c/${cid.text}`)).body.dump()
    await (await request(`${node.url}/c/${cid.text}`, { headers: { range: 'bytes=0-9' } })).body.dump()
    const res = await request(`${node.url}/metrics`)
    expect(res.headers['content-type']).toContain('text/plain')
    const text = await res.body.text()
    expect(text).toMatch(/shoal_edge_requests_total\{route="content",status="206"\} 1/)
    expect(text).toMatch(/shoal_edge_response_bytes_total\{route="content"\} 10\n/)
    expect(text).toMatch(/shoal_edge_fast_path_responses_total 1\n/)
    expect(text).toMatch(/shoal_edge_fast_path_bytes_total (\d+)/)
    expect(Number(/shoal_edge_fast_path_bytes_total (\d+)/.exec(text)?.[1])).toBeGreaterThan(10_000)
    expect(text).toMatch(/shoal_edge_cache_bytes\{tier="disk"\} \d+/)
  })

  it('holds total egress to the configured rate', async () => {
    const rate = 2 * 2 ** 20
    node = createEdgeNode({
      dataDir,
      host: '127.0.0.1',
      port: 0,
      egressBytesPerSecond: rate,
      acceptPushes: 'any',
    })
    await node.start()
    const bytes = Buffer.alloc(5 * 2 ** 20, 3)
    const { cid } = await computeCid(bytes)
    await (await request(`${node.url}/c/${cid.text}`, { method: 'PUT', body: bytes })).body.dump()
    const started = performance.now()
    const res = await request(`${node.url}/c/${cid.text}`)
    const got = Buffer.from(await res.body.arrayBuffer())
    const seconds = (performance.now() - started) / 1000
    expect(got.equals(bytes)).toBe(true)
    // one burst (one second of rate) is free; the other 3 MiB take at least 1.5 s at 2 MiB/s
    expect(seconds).toBeGreaterThanOrEqual(1.4)
  })

  it('speaks HTTPS when given a certificate and key', async () => {
    const { cert, key } = selfSignedCertificate(dataDir)
    node = createEdgeNode({
      dataDir,
      host: '127.0.0.1',
      port: 0,
      tls: { cert, key },
    })
    await node.start()
    expect(node.url.startsWith('https://')).toBe(true)
    const dispatcher = new Agent({ connect: { ca: cert, servername: 'localhost' } })
    const res = await request(`${node.url}/health`, { dispatcher })
    expect(await res.body.json()).toMatchObject({ status: 'ok' })
    await dispatcher.close()
  })
})
