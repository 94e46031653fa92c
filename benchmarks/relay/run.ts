/**
 * `npm run bench -- relay`: 1 MiB objects through a Shoal relay ÷ the same objects
 * fetched directly, same run, same origin.
 *
 * The origins and the relay run in two child processes pinned to CPU 0 (`server.ts`); this
 * process, the load generator (undici, 4 requests in flight, keep-alive), is pinned to
 * CPU 1. Each run fetches for one second; 7 pairs alternate direct / relayed (short
 * pairs, so a burst of load from elsewhere on the machine hits both sides), and each
 * figure is the median of the per-pair ratios.
 *
 * - `relay_throughput_ratio`: `http://` objects as absolute-form requests through the
 *   relay (`http-proxy`, egress check, metering) ÷ direct http.
 * - `connect_throughput_ratio`: `https://` objects through a CONNECT tunnel ÷ direct
 *   https (TLS end to end in both).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { relayAuthorization } from '@shoal/client-sdk'
import { signTicket } from '@shoal/protocol'
import { Agent, type Dispatcher, ProxyAgent, request } from 'undici'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { selfSignedCertificate } from '../../test-support/tls.ts'
import { median, printResult, round, writeResult } from '../src/results.ts'

const here = dirname(fileURLToPath(import.meta.url))
const RUNS = 7
const RUN_MS = 1_000
const WARMUP_MS = 500
const IN_FLIGHT = 4

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
  role: 'origin' | 'relay',
): Promise<{ child: ChildProcess; urls: Record<string, string> }> {
  const args = [
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
const urls = {
  httpUrl: origin.urls.httpUrl!,
  httpsUrl: origin.urls.httpsUrl!,
  relayUrl: relay.urls.relayUrl!,
}

/** Bytes per second fetching `url` with `dispatcher` for `ms`, IN_FLIGHT at a time. */
async function throughput(url: string, dispatcher: Dispatcher, ms: number): Promise<number> {
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
  return bytes / ((performance.now() - started) / 1000)
}

async function compare(target: string, direct: Dispatcher, relayed: Dispatcher) {
  await throughput(target, direct, WARMUP_MS)
  await throughput(target, relayed, WARMUP_MS)
  const ratios: number[] = []
  const directRates: number[] = []
  const relayRates: number[] = []
  for (let i = 0; i < RUNS; i++) {
    const d = await throughput(target, direct, RUN_MS)
    const r = await throughput(target, relayed, RUN_MS)
    directRates.push(d)
    relayRates.push(r)
    ratios.push(r / d)
  }
  return {
    value: round(median(ratios)),
    detail: {
      direct_mib_s: round(median(directRates) / 2 ** 20, 1),
      relay_mib_s: round(median(relayRates) / 2 ** 20, 1),
      ratios: ratios.map((x) => round(x)),
      runs: RUNS,
      run_ms: RUN_MS,
      in_flight: IN_FLIGHT,
      object_bytes: 2 ** 20,
      pinned,
    },
  }
}

const token = relayAuthorization(ticket)
const directAgent = new Agent({ connect: { ca: cert }, connections: IN_FLIGHT })
const forwardAgent = new ProxyAgent({ uri: urls.relayUrl, token, proxyTunnel: false, connections: IN_FLIGHT })
const tunnelAgent = new ProxyAgent({
  uri: urls.relayUrl,
  token,
  requestTls: { ca: cert },
  connections: IN_FLIGHT,
})
try {
  const forward = await compare(`${urls.httpUrl}/object`, directAgent, forwardAgent)
  const tunnel = await compare(`${urls.httpsUrl}/object`, directAgent, tunnelAgent)
  const result = await writeResult('relay', {
    relay_throughput_ratio: { value: forward.value, unit: 'ratio', goal: 0.5, detail: forward.detail },
    connect_throughput_ratio: { value: tunnel.value, unit: 'ratio', goal: 0.7, detail: tunnel.detail },
  })
  printResult(result)
} finally {
  await Promise.all([directAgent.close(), forwardAgent.close(), tunnelAgent.close()])
  await Promise.all([stopServer(origin.child), stopServer(relay.child)])
}
