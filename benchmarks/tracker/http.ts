/**
 * The tracker's HTTP figures: `select_http_rps` and `heartbeats_per_s`.
 *
 * - The server under test is a real tracker (`http-server.ts tracker`: SQLite store,
 *   metrics on, 10 000 registered nodes with heartbeat sessions) in its own process
 *   pinned to CPU 0; the load generator is `wrk` (one thread, 64 keep-alive
 *   connections) pinned to CPU 1.
 * - Baseline in the same run: plain `node:http` (`http-server.ts baseline`) on the same
 *   core answering the same shapes (a select-sized JSON for GET; JSON.parse of the body
 *   and a small JSON for POST): the ceiling of node:http on this machine. Runs alternate
 *   tracker / baseline, REPS times, and figures are medians.
 * - Selection: `GET /v1/select?cid=…&count=5&region=…`, 1 000 distinct CIDs cycled by a wrk
 *   script, nine in ten naming one of the fleet's four regions. Measured with 10 000
 *   registered nodes (`select_http_rps`), then again with trackers holding 100 000 and
 *   1 000 000 (`select_http_rps_100k`, `select_http_rps_1m`), each run paired with a
 *   baseline run just before it.
 * - Heartbeats: `POST /v1/nodes/heartbeat`, each a fresh, strictly increasing timestamp
 *   for one of the 10 000 nodes with its HMAC (made just before each run, sent once).
 *   Only 2xx answers count.
 * - The machine is shared, so besides requests per second each run records requests per
 *   CPU second the server process used (from /proc): its capacity on one whole core.
 * - For the record, the same run measures what signing every heartbeat with EIP-712
 *   would cost the tracker: viem `verifyTypedData` per second on one core.
 */
import { spawn, spawnSync } from 'node:child_process'
import { createHmac, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { formatCid } from '@shoal/protocol'
import { verifyTypedData } from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { type Metric, median, round } from '../src/results.ts'
import { benchNode } from './http-server.ts'

const HERE = dirname(fileURLToPath(import.meta.url))
const NODES = 10_000
const REPS = 3
const SECONDS = 5
const CONNECTIONS = 64
const HEARTBEATS_PER_RUN = 250_000
const SELECT_CIDS = 1_000
const REGIONS = ['eu-west', 'us-east', 'ap-south', 'eu-central']

interface WrkResult {
  requests: number
  seconds: number
  non2xx: number
  okPerSecond: number
  p99Ms: number
  /** 2xx answers per CPU second the server used: its capacity on one full core. */
  okPerServerCpuSecond: number
}

function ensureWrk(): void {
  if (spawnSync('wrk', ['--version']).error === undefined) return
  console.log('installing wrk (apt-get install -y wrk)')
  const r = spawnSync('apt-get', ['install', '-y', 'wrk'], { stdio: 'inherit' })
  if (r.status !== 0) {
    spawnSync('apt-get', ['update'], { stdio: 'inherit' })
    if (spawnSync('apt-get', ['install', '-y', 'wrk'], { stdio: 'inherit' }).status !== 0) {
      throw new Error('wrk is needed for the tracker HTTP benchmark and could not be installed')
    }
  }
}

function taskset(cpu: number, cmd: string, args: string[]): [string, string[]] {
  return spawnSync('taskset', ['--version']).error === undefined
    ? ['taskset', ['-c', String(cpu), cmd, ...args]]
    : [cmd, args]
}

interface Server {
  url: string
  /** CPU seconds the server process has used so far (user + system), from /proc. */
  cpuSeconds: () => number
  stop: () => Promise<void>
}

function cpuSecondsOf(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
    // fields after "(comm) ": state is [0], utime [11], stime [12], in clock ticks (100 Hz)
    return (Number(fields[11]) + Number(fields[12])) / 100
  } catch {
    return Number.NaN
  }
}

async function startServer(args: string[]): Promise<Server> {
  const [cmd, argv] = taskset(0, process.execPath, [
    '--disable-warning=ExperimentalWarning',
    join(HERE, 'http-server.ts'),
    ...args,
  ])
  const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'inherit'] })
  const url = await new Promise<string>((resolve, reject) => {
    let out = ''
    // a tracker of a million nodes fills its SQLite store and index first: minutes
    const timer = setTimeout(() => reject(new Error('benchmark server did not start in 15 min')), 900_000)
    child.stdout.on('data', (d: Buffer) => {
      out += d
      const m = /READY (\S+)/.exec(out)
      if (m !== null) {
        clearTimeout(timer)
        resolve(m[1]!)
      }
    })
    child.once('exit', (code) => reject(new Error(`benchmark server exited with ${code}`)))
  })
  return {
    url,
    cpuSeconds: () => cpuSecondsOf(child.pid),
    stop: () =>
      new Promise((resolve) => {
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
        child.once('exit', () => {
          clearTimeout(timer)
          resolve()
        })
        child.kill('SIGTERM')
      }),
  }
}

function parseMs(value: string, unit: string): number {
  const v = Number(value)
  return unit === 'us' ? v / 1000 : unit === 's' ? v * 1000 : v
}

function wrk(server: Server, script: string | undefined, scriptArgs: string[] = []): WrkResult {
  const url = server.url
  const cpuBefore = server.cpuSeconds()
  const args = ['-t1', `-c${CONNECTIONS}`, `-d${SECONDS}s`, '--latency', '--timeout', '5s']
  if (script !== undefined) args.push('-s', script)
  args.push(url)
  if (scriptArgs.length > 0) args.push('--', ...scriptArgs)
  const [cmd, argv] = taskset(1, 'wrk', args)
  const r = spawnSync(cmd, argv, { encoding: 'utf8', timeout: (SECONDS + 60) * 1000 })
  if (r.status !== 0) throw new Error(`wrk failed: ${r.stderr || r.error?.message}`)
  const out = r.stdout
  const total = /(\d+) requests in ([\d.]+)(\w+)/.exec(out)
  if (total === null) throw new Error(`cannot read wrk output:\n${out}`)
  const requests = Number(total[1])
  const seconds = parseMs(total[2]!, total[3]!) / 1000
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0)
  const p99 = /\s99%\s+([\d.]+)(us|ms|s)/.exec(out)
  const cpu = server.cpuSeconds() - cpuBefore
  return {
    requests,
    seconds,
    non2xx,
    okPerSecond: (requests - non2xx) / seconds,
    p99Ms: p99 === null ? Number.NaN : parseMs(p99[1]!, p99[2]!),
    okPerServerCpuSecond: (requests - non2xx) / cpu,
  }
}

/** `<mac> <body>` lines: HEARTBEATS_PER_RUN heartbeats over the fleet, fresh timestamps. */
async function heartbeatFile(path: string, seed: string): Promise<void> {
  const fleet = Array.from({ length: NODES }, (_, i) => benchNode(seed, i))
  const base = Date.now()
  const lines: string[] = []
  for (let j = 0; j < HEARTBEATS_PER_RUN; j++) {
    const n = fleet[j % NODES]!
    const body = JSON.stringify({
      node: n.address,
      session: n.sessionId,
      timestamp: base + Math.floor(j / NODES),
      load: 1_000_000 + (j % 1000),
      cacheBytes: 1 << 30,
      cacheObjects: 5000,
      servedBytes: j * 1000,
      servedRequests: j,
      connections: 12,
    })
    lines.push(`${createHmac('sha256', n.key).update(body).digest('hex')} ${body}`)
  }
  await writeFile(path, `${lines.join('\n')}\n`)
}

async function selectFile(path: string): Promise<void> {
  const lines: string[] = []
  for (let i = 0; i < SELECT_CIDS; i++) {
    const cid = formatCid({ chunkSize: 262_144, size: 1 + i * 1000, root: randomBytes(32) })
    // like clients: most name their region (the fleet's four), one in ten does not
    const region = i % 10 === 9 ? '' : `&region=${REGIONS[i % REGIONS.length]}`
    lines.push(`/v1/select?cid=${cid.text}&count=5${region}`)
  }
  await writeFile(path, `${lines.join('\n')}\n`)
}

async function eip712VerifyPerSecond(): Promise<number> {
  const account = privateKeyToAccount(generatePrivateKey())
  const typed = {
    domain: { name: 'Shoal', version: '1' },
    types: {
      Heartbeat: [
        { name: 'node', type: 'address' },
        { name: 'timestamp', type: 'uint64' },
        { name: 'load', type: 'uint64' },
      ],
    },
    primaryType: 'Heartbeat' as const,
    message: { node: account.address, timestamp: 1n, load: 1n },
  }
  const signature = await account.signTypedData(typed)
  let n = 0
  const start = performance.now()
  while (performance.now() - start < 2_000) {
    await verifyTypedData({ address: account.address, signature, ...typed })
    n++
  }
  return n / ((performance.now() - start) / 1000)
}

/** Selection over HTTP with 100k and 1M registered nodes, each run paired with a baseline run. */
async function largeFleets(script: string, paths: string, seed: string): Promise<Record<string, Metric>> {
  const metrics: Record<string, Metric> = {}
  for (const nodes of [100_000, 1_000_000]) {
    const label = nodes >= 1_000_000 ? `${nodes / 1_000_000}m` : `${nodes / 1000}k`
    console.log(`starting a tracker with ${nodes} nodes (CPU 0)`)
    const started = performance.now()
    const tracker = await startServer(['tracker', String(nodes), seed])
    const startSeconds = (performance.now() - started) / 1000
    const base = await startServer(['baseline'])
    const select: WrkResult[] = []
    const selectBase: WrkResult[] = []
    try {
      wrk(tracker, script, [paths])
      for (let rep = 0; rep < REPS; rep++) {
        selectBase.push(wrk(base, undefined))
        select.push(wrk(tracker, script, [paths]))
        console.log(
          `  ${label} rep ${rep + 1}: select ${Math.round(select[rep]!.okPerSecond)}/s (node:http ${Math.round(selectBase[rep]!.okPerSecond)}/s)`,
        )
      }
    } finally {
      await tracker.stop()
      await base.stop()
    }
    metrics[`select_http_rps_${label}`] = {
      value: round(median(select.map((r) => r.okPerSecond)), 0),
      unit: 'req/s',
      detail: {
        nodes,
        count: 5,
        connections: CONNECTIONS,
        runs: REPS,
        seconds: SECONDS,
        p99_ms: round(median(select.map((r) => r.p99Ms)), 2),
        node_http_baseline_rps: round(median(selectBase.map((r) => r.okPerSecond)), 0),
        ratio_vs_node_http: round(
          median(select.map((r, i) => r.okPerSecond / selectBase[i]!.okPerSecond)),
          3,
        ),
        per_server_cpu_second: round(median(select.map((r) => r.okPerServerCpuSecond)), 0),
        non2xx: select.reduce((sum, r) => sum + r.non2xx, 0),
        tracker_start_s: round(startSeconds, 1),
        server_cpu: 0,
        load_cpu: 1,
      },
    }
  }
  return metrics
}

export async function httpSuite(): Promise<Record<string, Metric>> {
  ensureWrk()
  const dir = await mkdtemp(join(tmpdir(), 'shoal-bench-http-'))
  const seed = randomBytes(8).toString('hex')
  const selectPaths = join(dir, 'select.txt')
  const beats = join(dir, 'heartbeats.txt')
  await selectFile(selectPaths)
  console.log(`starting a tracker with ${NODES} nodes (CPU 0) and a node:http baseline`)
  const tracker = await startServer(['tracker', String(NODES), seed])
  const base = await startServer(['baseline'])
  const selectScript = join(dir, 'select.lua')
  await writeFile(
    selectScript,
    `local paths = {}\nlocal i = 0\nfunction init(args) for l in io.lines(args[1]) do paths[#paths + 1] = wrk.format("GET", l) end end\nfunction request() i = i + 1 if i > #paths then i = 1 end return paths[i] end\n`,
  )
  const hbScript = join(HERE, 'wrk-heartbeats.lua')
  const runs = {
    select: [] as WrkResult[],
    selectBase: [] as WrkResult[],
    hb: [] as WrkResult[],
    hbBase: [] as WrkResult[],
  }
  try {
    // warm-up (JIT, connection setup), not recorded
    wrk(tracker, selectScript, [selectPaths])
    await heartbeatFile(beats, seed)
    wrk(tracker, hbScript, [beats])
    for (let rep = 0; rep < REPS; rep++) {
      runs.select.push(wrk(tracker, selectScript, [selectPaths]))
      runs.selectBase.push(wrk(base, undefined))
      await heartbeatFile(beats, seed)
      runs.hb.push(wrk(tracker, hbScript, [beats]))
      runs.hbBase.push(wrk(base, hbScript, [beats]))
      console.log(
        `  rep ${rep + 1}: select ${Math.round(runs.select[rep]!.okPerSecond)}/s (node:http ${Math.round(runs.selectBase[rep]!.okPerSecond)}/s), ` +
          `heartbeats ${Math.round(runs.hb[rep]!.okPerSecond)}/s (node:http ${Math.round(runs.hbBase[rep]!.okPerSecond)}/s); ` +
          `per server CPU second: ${Math.round(runs.select[rep]!.okPerServerCpuSecond)} selects, ${Math.round(runs.hb[rep]!.okPerServerCpuSecond)} heartbeats`,
      )
    }
  } finally {
    await tracker.stop()
    await base.stop()
  }
  let large: Record<string, Metric>
  try {
    large = await largeFleets(selectScript, selectPaths, seed)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
  const signedPerSecond = await eip712VerifyPerSecond()
  const ok = (rs: WrkResult[]) => median(rs.map((r) => r.okPerSecond))
  const perCpu = (rs: WrkResult[]) => round(median(rs.map((r) => r.okPerServerCpuSecond)), 0)
  const p99 = (rs: WrkResult[]) => median(rs.map((r) => r.p99Ms))
  const ratio = (a: WrkResult[], b: WrkResult[]) => median(a.map((r, i) => r.okPerSecond / b[i]!.okPerSecond))
  return {
    ...large,
    select_http_rps: {
      value: round(ok(runs.select), 0),
      unit: 'req/s',
      detail: {
        nodes: NODES,
        count: 5,
        connections: CONNECTIONS,
        runs: REPS,
        seconds: SECONDS,
        p99_ms: round(p99(runs.select), 2),
        node_http_baseline_rps: round(ok(runs.selectBase), 0),
        ratio_vs_node_http: round(ratio(runs.select, runs.selectBase), 3),
        per_server_cpu_second: perCpu(runs.select),
        node_http_per_server_cpu_second: perCpu(runs.selectBase),
        non2xx: runs.select.reduce((s, r) => s + r.non2xx, 0),
        server_cpu: 0,
        load_cpu: 1,
      },
    },
    heartbeats_per_s: {
      value: round(ok(runs.hb), 0),
      unit: 'heartbeats/s',
      goal: 10_000,
      detail: {
        nodes: NODES,
        connections: CONNECTIONS,
        runs: REPS,
        seconds: SECONDS,
        p99_ms: round(p99(runs.hb), 2),
        node_http_baseline_rps: round(ok(runs.hbBase), 0),
        ratio_vs_node_http: round(ratio(runs.hb, runs.hbBase), 3),
        per_server_cpu_second: perCpu(runs.hb),
        node_http_per_server_cpu_second: perCpu(runs.hbBase),
        refused: runs.hb.reduce((s, r) => s + r.non2xx, 0),
        auth: 'HMAC-SHA-256 per heartbeat with a session key agreed (X25519, signed) at registration',
        eip712_verify_per_s_one_core: round(signedPerSecond, 0),
      },
    },
  }
}
