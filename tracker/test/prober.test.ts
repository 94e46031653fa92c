import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { encodeHealthProof, signHealthProof } from '@shoal/protocol'
import { Agent } from 'undici'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { afterEach, describe, expect, it } from 'vitest'
import { createProber, type ProbeOutcome } from '../src/probe/prober.ts'
import { nowSeconds, waitFor } from './helpers/test-node.ts'
import { startTracker, type TrackerFixture } from './helpers/tracker.ts'

const BASE = {
  intervalMs: 200,
  concurrency: 5,
  timeoutMs: 100,
  jitter: 0.1,
  verifyPerSecond: 1000,
  verifySample: 1,
  proofSkewSeconds: 60,
}

let servers: Server[] = []
let closers: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const c of closers) await c()
  for (const s of servers) {
    s.closeAllConnections()
    await new Promise((resolve) => s.close(resolve))
  }
  servers = []
  closers = []
})

/** One server answering for many node keys: /<i>/health answers as node i after `delayMs`. */
async function fleet(size: number, delayMs: number) {
  const accounts = Array.from({ length: size }, () => privateKeyToAccount(generatePrivateKey()))
  let inFlight = 0
  let maxInFlight = 0
  let answered = 0
  const server = createServer(async (req, res) => {
    inFlight++
    maxInFlight = Math.max(maxInFlight, inFlight)
    const url = new URL(req.url ?? '/', 'http://x')
    const account = accounts[Number(url.pathname.split('/')[1])]!
    await new Promise((resolve) => setTimeout(resolve, delayMs))
    const signed = await signHealthProof(account, {
      node: account.address,
      challenge: url.searchParams.get('challenge') as `0x${string}`,
      timestamp: nowSeconds(),
    })
    inFlight--
    answered++
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(`{"status":"ok","proof":${encodeHealthProof(signed)}}`)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  servers.push(server)
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    accounts,
    urlOf: (i: number) => `${base}/${i}/`,
    stats: () => ({ maxInFlight, answered }),
  }
}

function proberWith(init: Partial<typeof BASE>, dispatcher = new Agent({ connections: 64 })) {
  const outcomes = new Map<string, ProbeOutcome[]>()
  const prober = createProber(
    { ...BASE, ...init },
    {
      dispatcher,
      onResult: (node, o) => outcomes.set(node, [...(outcomes.get(node) ?? []), o]),
    },
  )
  closers.push(async () => {
    await prober.stop()
    await dispatcher.close()
  })
  return { prober, outcomes }
}

describe('the probe loop', () => {
  it('keeps at most `concurrency` probes in flight and still probes every node each round', async () => {
    const f = await fleet(40, 30)
    // the timeout is far above the fleet's 30 ms answers: on a loaded machine a probe that
    // answered must not be counted as a miss; what this test checks is the concurrency bound
    const { prober, outcomes } = proberWith({ concurrency: 5, intervalMs: 500, timeoutMs: 2_000 })
    for (const [i, a] of f.accounts.entries()) prober.upsert(a.address, f.urlOf(i))
    prober.start()
    await waitFor(() => outcomes.size === 40 && [...outcomes.values()].every((o) => o.length >= 2), {
      timeoutMs: 20_000,
    })
    expect(f.stats().maxInFlight).toBeLessThanOrEqual(5)
    for (const list of outcomes.values()) expect(list.every((o) => o.answered)).toBe(true)
    expect(prober.stats().targets).toBe(40)
  })

  it('counts a slow answer as a miss after the timeout', async () => {
    const f = await fleet(1, 300)
    const { prober } = proberWith({ timeoutMs: 50 })
    const started = Date.now()
    const outcome = await prober.probe(f.accounts[0]!.address, f.urlOf(0))
    expect(outcome.answered).toBe(false)
    expect(Date.now() - started).toBeLessThan(1000)
  })

  it('refuses an answer for another node, and checks only the signature budget past it', async () => {
    const f = await fleet(2, 0)
    const { prober } = proberWith({ verifyPerSecond: 1, verifySample: 0 })
    // node 1 answers at node 0's URL: wrong node
    const wrong = await prober.probe(f.accounts[1]!.address, f.urlOf(0))
    expect(wrong).toMatchObject({ answered: false, invalid: true, reason: 'wrong node' })
    const first = await prober.probe(f.accounts[0]!.address, f.urlOf(0))
    const second = await prober.probe(f.accounts[0]!.address, f.urlOf(0))
    expect(first).toMatchObject({ answered: true, verified: true })
    expect(second).toMatchObject({ answered: true, verified: false })
  })

  it('removed nodes are no longer probed, and stop() aborts probes in flight', async () => {
    const f = await fleet(3, 1000)
    const { prober, outcomes } = proberWith({ intervalMs: 100, timeoutMs: 5_000 })
    for (const [i, a] of f.accounts.entries()) prober.upsert(a.address, f.urlOf(i))
    prober.remove(f.accounts[2]!.address)
    prober.start()
    await waitFor(() => prober.stats().inFlight === 2)
    const started = Date.now()
    await prober.stop()
    expect(Date.now() - started).toBeLessThan(500)
    expect(outcomes.size).toBe(0)
  })

  it('does not starve the API while probing 100k nodes whose probes all hang', async () => {
    // a black hole: accepts connections, never answers
    const hole = createServer(() => {})
    await new Promise<void>((resolve) => hole.listen(0, '127.0.0.1', resolve))
    servers.push(hole)
    const holeUrl = `http://127.0.0.1:${(hole.address() as AddressInfo).port}/`
    const t: TrackerFixture = await startTracker({
      probeConcurrency: 256,
      probeTimeoutMs: 2_000,
      probeIntervalMs: 5_000,
    })
    closers.push(() => t.close())
    // 100k targets, all due at once (addresses only name them: no answer is ever checked)
    for (let i = 0; i < 100_000; i++) {
      t.tracker.prober.upsert(`0x${i.toString(16).padStart(40, '0')}`, `${holeUrl}${i}/`)
    }
    expect(t.tracker.prober.stats().targets).toBe(100_000)
    await waitFor(() => t.tracker.prober.stats().inFlight === 256)
    const times: number[] = []
    for (let i = 0; i < 20; i++) {
      const started = performance.now()
      const res = await fetch(`${t.url}/v1/stats`)
      expect(res.status).toBe(200)
      await res.arrayBuffer()
      times.push(performance.now() - started)
    }
    times.sort((a, b) => a - b)
    expect(times[Math.floor(times.length / 2)]!).toBeLessThan(150)
    expect(t.tracker.prober.stats().inFlight).toBeLessThanOrEqual(256)
  }, 60_000)
})
