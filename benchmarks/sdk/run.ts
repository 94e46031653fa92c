/**
 * `npm run bench -- sdk`: the client SDK against plain undici, same run, same nodes.
 *
 * The nodes run in a child process pinned to CPU 0 (`server.ts`); this process, the
 * load generator, is pinned to CPU 1. Every comparison alternates A B A B and reports the
 * median of the per-run ratios, so drift between runs cancels out.
 *
 * - `verified_throughput_ratio`: 256 MiB (256 KiB chunks) from one node, SDK
 *   `client.fetch('shoal://<cid>')` with every byte verified ÷ undici `fetch` of
 *   `<node>/c/<cid>`, bodies read to the end. The SDK is given undici's `fetch`, so the
 *   two differ only by what the SDK does. undici `request` is recorded beside it.
 * - `ttfb_ratio_1k`: a 1 KiB object, time from the call to the first body bytes in hand,
 *   warm client ÷ undici `fetch`, median of 2 000 alternating requests per run, over
 *   loopback (where the SDK's fixed cost is all there is to see); the same through a
 *   proxy adding 10 ms is recorded beside it for scale. Both sides go through the same
 *   undici `Agent` (so the same keep-alive connection to the same node), both read the
 *   body to its end, and both stop the clock at the first body bytes the app reads.
 * - `hedged_p99_ratio`: three nodes behind proxies adding 10 ms (a nearby node); 1 KiB
 *   objects fetched one after another by a warm client. In the "slow" runs the node the
 *   client ranks first is slowed to 100 ms (10×) once warm-up is over, so the client meets the slow node where it
 *   expects a fast one; p99 TTFB of those runs ÷ p99 of runs where no node is slow.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { randomFillSync } from 'node:crypto'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createClient, type ShoalClient } from '@shoal/client-sdk'
import { type Cid, computeCid } from '@shoal/protocol'
import { Agent, request, fetch as undiciFetch } from 'undici'
import { median, printResult, quantile, round, writeResult } from '../src/results.ts'

const here = dirname(fileURLToPath(import.meta.url))
const MIB = 2 ** 20
const BIG = 256 * MIB
const RUNS = 3
const TTFB_REQUESTS = 2_000
/** Alternating TTFB runs (cheap: a few seconds each); the median of their ratios is the figure. */
const TTFB_RUNS = 5
const TTFB_WARMUP = 3_000
const HEDGE_WARMUP = 100
const HEDGE_REQUESTS = 400
const BASE_LATENCY_MS = 10
const SLOW_LATENCY_MS = 100
const CONTEXT_LATENCY_MS = 10
const CONTEXT_REQUESTS = 200

const fetchFn = undiciFetch as unknown as typeof globalThis.fetch

// the load generator on CPU 1 (all its threads), the nodes on CPU 0
const pinned = spawnSync('taskset', ['-a', '-cp', '1', String(process.pid)], { stdio: 'ignore' }).status === 0

interface Server {
  child: ChildProcess
  nodes: { url: string; proxyUrl: string }[]
  latency(index: number, ms: number): Promise<void>
  stop(): Promise<void>
}

async function startServer(count: number): Promise<Server> {
  const args = ['--disable-warning=ExperimentalWarning', join(here, 'server.ts'), String(count)]
  const child = pinned
    ? spawn('taskset', ['-c', '0', process.execPath, ...args], {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      })
    : spawn(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const nodes = await new Promise<Server['nodes']>((resolve, reject) => {
    child.once('message', (m: { type: string; nodes: Server['nodes'] }) => resolve(m.nodes))
    child.once('exit', (code) => reject(new Error(`bench server exited with ${code}`)))
  })
  return {
    child,
    nodes,
    latency: (index, ms) =>
      new Promise((resolve) => {
        child.once('message', () => resolve())
        child.send({ type: 'latency', index, ms })
      }),
    stop: () =>
      new Promise((resolve) => {
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
        child.once('exit', () => {
          clearTimeout(timer)
          resolve()
        })
        child.send({ type: 'stop' })
      }),
  }
}

async function push(base: string, bytes: Uint8Array, cid: Cid): Promise<void> {
  const res = await request(`${base}c/${cid.text}`, { method: 'PUT', body: bytes })
  await res.body.dump()
  if (res.statusCode >= 300) throw new Error(`push to ${base} answered ${res.statusCode}`)
}

async function drain(body: ReadableStream<Uint8Array> | null): Promise<number> {
  if (body === null) return 0
  const reader = body.getReader()
  let n = 0
  for (;;) {
    const r = await reader.read()
    if (r.done) return n
    n += r.value.length
  }
}

/** Milliseconds to the first body bytes, then the rest drained. */
async function ttfbOf(get: () => Promise<Response>): Promise<number> {
  const t = performance.now()
  const res = await get()
  const reader = res.body!.getReader()
  const first = await reader.read()
  const ms = performance.now() - t
  if (first.done) throw new Error('empty body')
  for (;;) if ((await reader.read()).done) break
  return ms
}

function seconds(since: number): number {
  return (performance.now() - since) / 1000
}

// ---- 1 KiB TTFB and throughput: one node, no proxy ----

/**
 * 1 KiB TTFB, alternating per request. Both sides use one fresh undici Agent (its
 * connections served nothing else), so neither inherits connections from earlier phases.
 */
async function ttfb(node: string, proxy: { url: string; latency(ms: number): Promise<void> }) {
  const small = new Uint8Array(1024)
  randomFillSync(small)
  const { cid } = await computeCid(small)
  await push(node, small, cid)
  const agent = new Agent()
  const viaAgent = ((input: string, init?: RequestInit) =>
    undiciFetch(input, { ...(init as object), dispatcher: agent })) as unknown as typeof globalThis.fetch
  const client = createClient({ nodes: [node], fetch: viaAgent })
  const sdk = () => client.fetch(`shoal://${cid.text}`)
  const url = `${node}c/${cid.text}`
  const plain = () => viaAgent(url)
  // warm-up long enough for the JIT to settle on both paths
  for (let i = 0; i < TTFB_WARMUP; i++) {
    await ttfbOf(sdk)
    await ttfbOf(plain)
  }
  const ratios: number[] = []
  const runs: {
    sdk_median_ms: number
    undici_median_ms: number
    sdk_p99_ms: number
    undici_p99_ms: number
  }[] = []
  for (let rep = 0; rep < TTFB_RUNS; rep++) {
    const a: number[] = []
    const b: number[] = []
    for (let i = 0; i < TTFB_REQUESTS; i++) {
      if (i % 2 === 0) {
        a.push(await ttfbOf(sdk))
        b.push(await ttfbOf(plain))
      } else {
        b.push(await ttfbOf(plain))
        a.push(await ttfbOf(sdk))
      }
    }
    ratios.push(median(a) / median(b))
    runs.push({
      sdk_median_ms: round(median(a), 4),
      undici_median_ms: round(median(b), 4),
      sdk_p99_ms: round(quantile(a, 0.99), 4),
      undici_p99_ms: round(quantile(b, 0.99), 4),
    })
    console.log(`ttfb run ${rep + 1}: sdk ${round(median(a), 3)} ms, undici ${round(median(b), 3)} ms`)
  }
  // the same comparison through a proxy adding 10 ms, for scale: what the fixed cost is
  // next to a nearby node's latency
  await proxy.latency(CONTEXT_LATENCY_MS)
  const proxied = createClient({ nodes: [proxy.url], fetch: viaAgent })
  const sdkFar = () => proxied.fetch(`shoal://${cid.text}`)
  const plainFar = () => viaAgent(`${proxy.url}c/${cid.text}`)
  for (let i = 0; i < 20; i++) {
    await ttfbOf(sdkFar)
    await ttfbOf(plainFar)
  }
  const far = { sdk: [] as number[], undici: [] as number[] }
  for (let i = 0; i < CONTEXT_REQUESTS; i++) {
    far.sdk.push(await ttfbOf(sdkFar))
    far.undici.push(await ttfbOf(plainFar))
  }
  await proxy.latency(0)
  await proxied.stop()
  await client.stop()
  await agent.close()
  const overheadUs = runs.map((r) => round((r.sdk_median_ms - r.undici_median_ms) * 1000, 1))
  return {
    ttfb_ratio_1k: {
      value: round(median(ratios)),
      unit: 'ratio',
      goal: 1.3,
      goalKind: 'max' as const,
      detail: {
        runs,
        ratios: ratios.map((r) => round(r)),
        sdk_overhead_us: overheadUs,
        requests_per_run: TTFB_REQUESTS,
        runs_count: TTFB_RUNS,
        with_10ms_latency: {
          ratio: round(median(far.sdk) / median(far.undici)),
          sdk_median_ms: round(median(far.sdk), 3),
          undici_median_ms: round(median(far.undici), 3),
          requests: CONTEXT_REQUESTS,
        },
        pinned,
      },
    },
  }
}

async function throughput(node: string) {
  const big = new Uint8Array(BIG)
  for (let at = 0; at < BIG; at += 65536) randomFillSync(big, at, 65536)
  const { cid } = await computeCid(big)
  await push(node, big, cid)
  const client = createClient({ nodes: [node], fetch: fetchFn })
  const url = `${node}c/${cid.text}`
  const variants = {
    sdk: async () => drain((await client.fetch(`shoal://${cid.text}`)).body),
    undiciFetch: async () => drain((await undiciFetch(url)).body as ReadableStream<Uint8Array>),
    undiciRequest: async () => {
      const { body } = await request(url)
      let n = 0
      for await (const piece of body) n += (piece as Buffer).length
      return n
    },
  }
  type Name = keyof typeof variants
  const names = Object.keys(variants) as Name[]
  for (const name of names) await variants[name]() // warm-up: disk cache, JIT, connections
  const times = Object.fromEntries(names.map((n) => [n, [] as number[]])) as Record<Name, number[]>
  const ratios: number[] = []
  for (let rep = 0; rep < RUNS; rep++) {
    const order = names.map((_, k) => names[(k + rep) % names.length]!)
    const lap = {} as Record<Name, number>
    for (const name of order) {
      const t = performance.now()
      const n = await variants[name]()
      lap[name] = seconds(t)
      if (n !== BIG) throw new Error(`${name} read ${n} bytes, expected ${BIG}`)
      times[name].push(lap[name])
    }
    ratios.push(lap.undiciFetch / lap.sdk)
    console.log(
      `throughput run ${rep + 1}: ${names.map((n) => `${n} ${round(BIG / MIB / lap[n], 1)} MiB/s`).join(', ')}`,
    )
  }
  await client.stop()
  const mibS = (x: number) => round(BIG / MIB / x, 1)
  return {
    verified_throughput_ratio: {
      value: round(median(ratios)),
      unit: 'ratio',
      goal: 0.7,
      goalKind: 'min' as const,
      detail: {
        sdk_mib_s: mibS(median(times.sdk)),
        undici_fetch_mib_s: mibS(median(times.undiciFetch)),
        undici_request_mib_s: mibS(median(times.undiciRequest)),
        vs_undici_request: round(median(times.undiciRequest) / median(times.sdk)),
        ratios: ratios.map((r) => round(r)),
        size_bytes: BIG,
        chunk_size: cid.chunkSize,
        runs: RUNS,
        pinned,
      },
    },
  }
}

async function oneNode() {
  const server = await startServer(1)
  try {
    const node = server.nodes[0]!.url
    const proxy = { url: server.nodes[0]!.proxyUrl, latency: (ms: number) => server.latency(0, ms) }
    return { ...(await ttfb(node, proxy)), ...(await throughput(node)) }
  } finally {
    await server.stop()
  }
}

// ---- hedging: three nodes behind latency proxies, one slowed mid-run ----

async function hedging() {
  const server = await startServer(3)
  try {
    const objects: Cid[] = []
    for (let i = 0; i < 20; i++) {
      const bytes = new Uint8Array(1024)
      randomFillSync(bytes)
      const { cid } = await computeCid(bytes)
      for (const n of server.nodes) await push(n.url, bytes, cid)
      objects.push(cid)
    }
    const proxies = server.nodes.map((n) => n.proxyUrl)
    const run = async (slow: boolean) => {
      for (let i = 0; i < 3; i++) await server.latency(i, BASE_LATENCY_MS)
      let hedges = 0
      const client: ShoalClient = createClient({
        nodes: proxies,
        fetch: fetchFn,
        onEvent: (e) => {
          if (e.type === 'hedge') hedges++
        },
      })
      let k = 0
      const one = () => ttfbOf(() => client.fetch(`shoal://${objects[k++ % objects.length]!.text}`))
      for (let i = 0; i < HEDGE_WARMUP; i++) await one()
      // slow down the node the warm client now prefers
      const preferred = client.stats.rank(proxies, (u) => u)[0]!
      const slowIndex = proxies.indexOf(preferred)
      if (slow) await server.latency(slowIndex, SLOW_LATENCY_MS)
      hedges = 0
      const samples: number[] = []
      for (let i = 0; i < HEDGE_REQUESTS; i++) samples.push(await one())
      await client.stop()
      return { p99: quantile(samples, 0.99), p50: median(samples), max: Math.max(...samples), hedges }
    }
    const base: Awaited<ReturnType<typeof run>>[] = []
    const slowed: Awaited<ReturnType<typeof run>>[] = []
    const ratios: number[] = []
    for (let rep = 0; rep < RUNS; rep++) {
      // alternate which scenario goes first
      const a = rep % 2 === 0 ? await run(false) : undefined
      const b = await run(true)
      const c = a ?? (await run(false))
      base.push(c)
      slowed.push(b)
      ratios.push(b.p99 / c.p99)
      console.log(
        `hedge run ${rep + 1}: p99 ${round(c.p99, 3)} ms → ${round(b.p99, 3)} ms with one node slow (${b.hedges} hedges)`,
      )
    }
    const r = (x: { p99: number; p50: number; max: number; hedges: number }) => ({
      p99_ms: round(x.p99, 3),
      p50_ms: round(x.p50, 3),
      max_ms: round(x.max, 3),
      hedges: x.hedges,
    })
    return {
      hedged_p99_ratio: {
        value: round(median(ratios)),
        unit: 'ratio',
        goal: 2,
        goalKind: 'max' as const,
        detail: {
          none_slow: base.map(r),
          one_slow: slowed.map(r),
          ratios: ratios.map((x) => round(x)),
          base_latency_ms: BASE_LATENCY_MS,
          slow_latency_ms: SLOW_LATENCY_MS,
          requests_per_run: HEDGE_REQUESTS,
          warmup_requests: HEDGE_WARMUP,
          runs: RUNS,
          pinned,
        },
      },
    }
  } finally {
    await server.stop()
  }
}

const metrics = { ...(await oneNode()), ...(await hedging()) }
printResult(await writeResult('sdk', metrics))
