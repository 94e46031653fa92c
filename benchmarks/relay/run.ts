/**
 * `npm run bench -- relay`: 1 MiB objects through a Shoal relay ÷ the same objects
 * fetched directly, same run, same origin, beside a floor measured the same way.
 *
 * The origins, the relay and the floors run pinned to CPU 0 (`server.ts`, nginx); this
 * process, the load generator (undici, 4 requests in flight, keep-alive on every hop),
 * is pinned to CPU 1. After a warm-up of every arm, 7 rounds each fetch for one second
 * through every arm, the order rotating each round (a burst of load from elsewhere on
 * the machine hits every arm alike); each figure is the median of the per-round ratios.
 * On two cores a relayed byte costs CPU 0 the origin's write plus the relay's read and
 * write, so the floors say what any proxy on that core reaches:
 *
 * - `relay_throughput_ratio`: `http://` objects as absolute-form requests through the
 *   relay (`http-proxy`, egress check, metering) ÷ direct http. Floors: a bare Node
 *   proxy (`http.request` on a keep-alive agent, `pipe`; `server.ts bare`) and nginx
 *   `proxy_pass` (`../edge/nginx.ts` without its cache: one worker, upstream keep-alive,
 *   1 MiB of proxy buffers), ÷ direct.
 * - `connect_throughput_ratio`: `https://` objects through a CONNECT tunnel ÷ direct
 *   https (TLS end to end in both). Floor: the bare Node proxy's tunnel (`pipe` both
 *   ways, no ticket, no metering) ÷ direct.
 *
 * Beside each proxy's throughput, the CPU time it used per MiB moved (from /proc),
 * which a busy machine disturbs less than throughput.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { relayAuthorization } from '@shoal/client-sdk'
import { signTicket } from '@shoal/protocol'
import { Agent, type Dispatcher, ProxyAgent, request } from 'undici'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { selfSignedCertificate } from '../../test-support/tls.ts'
import { startNginx } from '../edge/nginx.ts'
import { cpuSeconds, freePort, spawnPinned } from '../edge/procs.ts'
import { median, printResult, round, writeResult } from '../src/results.ts'

const here = dirname(fileURLToPath(import.meta.url))
const RUNS = 7
const RUN_MS = 1_000
const WARMUP_MS = 500
const IN_FLIGHT = 4

// the machine's 1-minute load average when the run began (other work on the cores moves every figure)
const loadAtStart = round(loadavg()[0]!, 2)
const pinned = spawnSync('taskset', ['-a', '-cp', '1', String(process.pid)], { stdio: 'ignore' }).status === 0

const dir = mkdtempSync(join(tmpdir(), 'shoal-bench-relay-'))
const { cert, key } = selfSignedCertificate(dir)
rmSync(dir, { recursive: true, force: true })

const issuer = privateKeyToAccount(generatePrivateKey())
const clientKey = privateKeyToAccount(generatePrivateKey())
const ticket = await signTicket(issuer, {
  issuer: issuer.address,
  client: clientKey.address,
  budget: 2 ** 40,
  expiry: Math.floor(Date.now() / 1000) + 3600,
  nonce: `0x${'ab'.repeat(32)}`,
})

function startServer(
  role: 'origin' | 'relay' | 'bare',
): Promise<{ child: ChildProcess; urls: Record<string, string> }> {
  const args = [
    ...process.execArgv,
    '--disable-warning=ExperimentalWarning',
    join(here, 'server.ts'),
    role,
    issuer.address,
    cert.toString('base64'),
    key.toString('base64'),
  ]
  const child: ChildProcess = pinned
    ? spawn('taskset', ['-c', '0', process.execPath, ...args], {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      })
    : spawn(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  return new Promise((resolve, reject) => {
    child.once('message', (m) => resolve({ child, urls: m as Record<string, string> }))
    child.once('exit', (code) => reject(new Error(`bench ${role} server exited with ${code}`)))
  })
}

async function stopServer(child: ChildProcess): Promise<void> {
  child.send('stop')
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
  await new Promise((resolve) => child.once('exit', resolve))
  clearTimeout(timer)
}

const origin = await startServer('origin')
const relay = await startServer('relay')
const bare = await startServer('bare')
const urls = {
  httpUrl: origin.urls.httpUrl!,
  httpsUrl: origin.urls.httpsUrl!,
  relayUrl: relay.urls.relayUrl!,
  bareUrl: bare.urls.bareUrl!,
}
const nginxPort = await freePort()
const nginx = await startNginx({
  port: nginxPort,
  origin: new URL(urls.httpUrl).host,
  cpu: pinned ? '0' : '0-1',
  cache: false,
})

// the floor of any user-space proxy: a C port forwarder (read, write, no HTTP), one process per connection
if (spawnSync('sh', ['-c', 'command -v socat'], { stdio: 'ignore' }).status !== 0) {
  console.log("installing socat with apt-get (the relay benchmark's user-space floor)")
  if (spawnSync('apt-get', ['install', '-y', 'socat'], { stdio: 'inherit' }).status !== 0) {
    spawnSync('apt-get', ['update'], { stdio: 'inherit' })
    spawnSync('apt-get', ['install', '-y', 'socat'], { stdio: 'inherit' })
  }
}
/** socat forwarding a port of its own to `target` (host:port), pinned like the relay; its PIDs include the children it forked. */
async function startSocat(target: string) {
  const port = await freePort()
  const child = spawnPinned(pinned ? '0' : '0-1', 'socat', [
    '-b',
    '65536',
    `TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork`,
    `TCP:${target}`,
  ])
  await new Promise((r) => setTimeout(r, 300))
  const pids = () => {
    try {
      const children = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8')
      return [child.pid, ...children.split(' ').filter(Boolean).map(Number)]
    } catch {
      return [child.pid]
    }
  }
  return { port, pids, stop: () => child.stop() }
}
const socat = await startSocat(new URL(urls.httpUrl).host)
const socatTls = await startSocat(new URL(urls.httpsUrl).host)

// what a proxy that never copies a byte into user space reaches: HAProxy forwarding TCP with splice(2)
if (spawnSync('sh', ['-c', 'command -v haproxy'], { stdio: 'ignore' }).status !== 0) {
  console.log("installing haproxy with apt-get (the relay benchmark's zero-copy reference)")
  if (spawnSync('apt-get', ['install', '-y', 'haproxy'], { stdio: 'inherit' }).status !== 0) {
    spawnSync('apt-get', ['update'], { stdio: 'inherit' })
    spawnSync('apt-get', ['install', '-y', 'haproxy'], { stdio: 'inherit' })
  }
}
const haproxyDir = mkdtempSync(join(tmpdir(), 'shoal-bench-haproxy-'))
const haproxyPorts = { plain: await freePort(), tls: await freePort() }
writeFileSync(
  join(haproxyDir, 'haproxy.cfg'),
  [
    'global',
    '  nbthread 1',
    '  maxconn 4096',
    'defaults',
    '  mode tcp',
    '  timeout connect 5s',
    '  timeout client 60s',
    '  timeout server 60s',
    '  option splice-request',
    '  option splice-response',
    'frontend plain',
    `  bind 127.0.0.1:${haproxyPorts.plain}`,
    '  default_backend plain',
    'backend plain',
    `  server origin ${new URL(urls.httpUrl).host}`,
    'frontend tls',
    `  bind 127.0.0.1:${haproxyPorts.tls}`,
    '  default_backend tls',
    'backend tls',
    `  server origin ${new URL(urls.httpsUrl).host}`,
    '',
  ].join('\n'),
)
const haproxy = spawnPinned(pinned ? '0' : '0-1', 'haproxy', ['-db', '-f', join(haproxyDir, 'haproxy.cfg')])
await new Promise((r) => setTimeout(r, 500))

/** Busy seconds of CPU 0 so far (every process and interrupt on it, from /proc/stat). */
function cpu0Seconds(): number {
  const line = readFileSync('/proc/stat', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('cpu0 '))
  if (line === undefined) return 0
  const f = line.trim().split(/\s+/).slice(1).map(Number)
  // user nice system idle iowait irq softirq steal: busy is all but idle and iowait
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0)
  return (total - f[3]! - f[4]!) / 100
}

/** Bytes per second fetching `url` with `dispatcher` for `ms`, IN_FLIGHT at a time; `moved` counts the bytes. */
async function throughput(
  url: string,
  dispatcher: Dispatcher,
  ms: number,
  moved = { bytes: 0 },
): Promise<number> {
  const until = performance.now() + ms
  let bytes = 0
  const started = performance.now()
  const worker = async () => {
    while (performance.now() < until) {
      const res = await request(url, { dispatcher })
      if (res.statusCode !== 200) throw new Error(`${url} answered ${res.statusCode}`)
      for await (const chunk of res.body) bytes += (chunk as Buffer).length
    }
  }
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker))
  moved.bytes += bytes
  return bytes / ((performance.now() - started) / 1000)
}

interface Arm {
  name: string
  dispatcher: Dispatcher
  /** What this arm fetches when not the shared target (a port forwarder is fetched at its own address). */
  url?: string
  /** The proxy's processes, whose CPU time per MiB moved is recorded (a busy machine disturbs it less). */
  pids?: () => number[]
}

/** Every arm through `target`, `RUNS` rounds in rotating order; ratios to the first arm (direct). */
async function compare(target: string, arms: readonly Arm[]) {
  for (const arm of arms) await throughput(arm.url ?? target, arm.dispatcher, WARMUP_MS)
  const rates = new Map<string, number[]>(arms.map((a) => [a.name, []]))
  const cpu = new Map<string, { seconds: number; origin: number; cpu0: number; bytes: number }>(
    arms.map((a) => [a.name, { seconds: 0, origin: 0, cpu0: 0, bytes: 0 }]),
  )
  const originPid = [origin.child.pid!]
  for (let i = 0; i < RUNS; i++) {
    for (let j = 0; j < arms.length; j++) {
      const arm = arms[(i + j) % arms.length]!
      const pids = arm.pids?.() ?? []
      const used = cpu.get(arm.name)!
      const before = cpuSeconds(pids)
      const originBefore = cpuSeconds(originPid)
      const cpu0Before = cpu0Seconds()
      rates.get(arm.name)!.push(await throughput(arm.url ?? target, arm.dispatcher, RUN_MS, used))
      used.seconds += cpuSeconds(pids) - before
      used.origin += cpuSeconds(originPid) - originBefore
      used.cpu0 += cpu0Seconds() - cpu0Before
    }
  }
  const direct = rates.get(arms[0]!.name)!
  const ratios = (name: string) => rates.get(name)!.map((r, i) => r / direct[i]!)
  const detail: Record<string, unknown> = {}
  for (const arm of arms) {
    detail[`${arm.name}_mib_s`] = round(median(rates.get(arm.name)!) / 2 ** 20, 1)
    if (arm !== arms[0]) detail[`${arm.name}_ratios`] = ratios(arm.name).map((x) => round(x))
    const used = cpu.get(arm.name)!
    const perMiB = (seconds: number) => round((seconds * 1000) / (used.bytes / 2 ** 20), 2)
    if (arm.pids !== undefined) detail[`${arm.name}_cpu_ms_per_mib`] = perMiB(used.seconds)
    // what the origin and CPU 0 as a whole (origin, proxy, kernel, and anything else there) pay per MiB in this arm
    detail[`${arm.name}_origin_cpu_ms_per_mib`] = perMiB(used.origin)
    detail[`${arm.name}_cpu0_ms_per_mib`] = perMiB(used.cpu0)
  }
  return {
    ratio: (name: string) => round(median(ratios(name))),
    detail: {
      ...detail,
      runs: RUNS,
      run_ms: RUN_MS,
      in_flight: IN_FLIGHT,
      object_bytes: 2 ** 20,
      pinned,
      load_average: [loadAtStart, round(loadavg()[0]!, 2)],
    },
  }
}

const token = relayAuthorization(ticket)
const directAgent = new Agent({ connect: { ca: cert }, connections: IN_FLIGHT })
const forwardAgent = new ProxyAgent({ uri: urls.relayUrl, token, proxyTunnel: false, connections: IN_FLIGHT })
const nginxAgent = new ProxyAgent({
  uri: `http://127.0.0.1:${nginxPort}`,
  proxyTunnel: false,
  connections: IN_FLIGHT,
})
const tunnelAgent = new ProxyAgent({
  uri: urls.relayUrl,
  token,
  requestTls: { ca: cert },
  connections: IN_FLIGHT,
})
const socatAgent = new Agent({ connections: IN_FLIGHT })
const socatTlsAgent = new Agent({ connect: { ca: cert }, connections: IN_FLIGHT })
const bareForwardAgent = new ProxyAgent({ uri: urls.bareUrl, proxyTunnel: false, connections: IN_FLIGHT })
const bareAgent = new ProxyAgent({ uri: urls.bareUrl, requestTls: { ca: cert }, connections: IN_FLIGHT })
try {
  const forward = await compare(`${urls.httpUrl}/object`, [
    { name: 'direct', dispatcher: directAgent },
    { name: 'relay', dispatcher: forwardAgent, pids: () => [relay.child.pid!] },
    { name: 'bare_node', dispatcher: bareForwardAgent, pids: () => [bare.child.pid!] },
    { name: 'nginx', dispatcher: nginxAgent, pids: () => nginx.pids() },
    { name: 'socat', dispatcher: socatAgent, url: `http://127.0.0.1:${socat.port}/object`, pids: socat.pids },
    {
      name: 'haproxy_splice',
      dispatcher: socatAgent,
      url: `http://127.0.0.1:${haproxyPorts.plain}/object`,
      pids: () => [haproxy.pid],
    },
  ])
  const tunnel = await compare(`${urls.httpsUrl}/object`, [
    { name: 'direct', dispatcher: directAgent },
    { name: 'relay', dispatcher: tunnelAgent, pids: () => [relay.child.pid!] },
    { name: 'bare_node', dispatcher: bareAgent, pids: () => [bare.child.pid!] },
    {
      name: 'socat',
      dispatcher: socatTlsAgent,
      url: `https://127.0.0.1:${socatTls.port}/object`,
      pids: socatTls.pids,
    },
    {
      name: 'haproxy_splice',
      dispatcher: socatTlsAgent,
      url: `https://127.0.0.1:${haproxyPorts.tls}/object`,
      pids: () => [haproxy.pid],
    },
  ])
  const result = await writeResult('relay', {
    relay_throughput_ratio: {
      value: forward.ratio('relay'),
      unit: 'ratio',
      goal: 0.5,
      detail: {
        ...forward.detail,
        bare_node_ratio: forward.ratio('bare_node'),
        nginx_ratio: forward.ratio('nginx'),
        socat_ratio: forward.ratio('socat'),
        haproxy_splice_ratio: forward.ratio('haproxy_splice'),
        baselines:
          'bare_node: http.request on a keep-alive agent and pipe, no ticket or metering; nginx: the edge benchmark config without its cache (proxy_pass, one worker, upstream keep-alive, proxy_buffers 16 64k); socat: a C port forwarder (read and write with a 64 KiB buffer, no HTTP, a process per connection), the floor of any user-space proxy; haproxy_splice: HAProxy forwarding TCP with splice(2) (no copy into user space), one thread; all pinned like the relay',
      },
    },
    connect_throughput_ratio: {
      value: tunnel.ratio('relay'),
      unit: 'ratio',
      goal: 0.7,
      detail: {
        ...tunnel.detail,
        bare_node_ratio: tunnel.ratio('bare_node'),
        socat_ratio: tunnel.ratio('socat'),
        haproxy_splice_ratio: tunnel.ratio('haproxy_splice'),
        baselines:
          'bare_node: a Node CONNECT tunnel, pipe both ways, no ticket or metering; socat: a C port forwarder to the https origin (read and write with a 64 KiB buffer, no CONNECT), the floor of any user-space tunnel; haproxy_splice: HAProxy forwarding TCP to the https origin with splice(2), one thread; all pinned like the relay',
      },
    },
  })
  printResult(result)
} finally {
  await Promise.all([
    directAgent.close(),
    forwardAgent.close(),
    nginxAgent.close(),
    socatAgent.close(),
    socatTlsAgent.close(),
    bareForwardAgent.close(),
    tunnelAgent.close(),
    bareAgent.close(),
  ])
  await Promise.all([
    stopServer(origin.child),
    stopServer(relay.child),
    stopServer(bare.child),
    nginx.stop(),
    socat.stop(),
    socatTls.stop(),
    haproxy.stop(),
  ])
  rmSync(haproxyDir, { recursive: true, force: true })
}
