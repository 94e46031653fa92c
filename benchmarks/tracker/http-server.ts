/**
 * The server side of the tracker's HTTP benchmark, run as its own process (pinned to
 * one CPU by `http.ts`):
 *
 *   node http-server.ts tracker <nodes> <seed>   a real tracker (SQLite store, metrics on) with
 *                                                 <nodes> registered, answering nodes and their
 *                                                 heartbeat sessions
 *   node http-server.ts baseline                  plain node:http answering the same shapes:
 *                                                 the floor of this machine, client and core
 *
 * Prints `READY <url>` when listening; stops on SIGTERM.
 */
import { createHash } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createSqliteStore, createTracker, type NodeStateRow } from '@shoal/tracker'
import { Registry } from 'prom-client'
import { getAddress } from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'

/** The synthetic fleet both processes derive from `seed`: addresses, session ids and keys. */
export function benchNode(seed: string, i: number): { address: string; sessionId: string; key: Buffer } {
  const h = (tag: string) => createHash('sha256').update(`${seed}:${tag}:${i}`).digest()
  return {
    address: getAddress(`0x${h('address').subarray(0, 20).toString('hex')}`),
    sessionId: h('session').subarray(0, 16).toString('hex'),
    key: h('key'),
  }
}

/** A select answer of the size the tracker sends for count=5 (for the baseline). */
export const BASELINE_SELECT = JSON.stringify({
  cid: `s${'a'.repeat(56)}`,
  nodes: Array.from({ length: 5 }, (_, i) => ({
    node: `0x${String(i).repeat(40)}`,
    region: 'eu-west',
    score: 0.812345,
    httpUrl: `http://10.0.${i}.1:7480/`,
    peerId: `12D3KooW${'x'.repeat(44)}`,
    multiaddrs: [`/ip4/10.0.${i}.1/tcp/4001`],
  })),
})

const REGIONS = ['eu-west', 'us-east', 'ap-south', 'eu-central']
const BASE58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'
// A canonical-form signature: records restored from the store are decoded, not verified.
const SIGNATURE = `0x${'11'.repeat(32)}${'22'.repeat(32)}1b`

async function tracker(nodes: number, seed: string): Promise<{ url: string; stop: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-bench-tracker-'))
  const store = createSqliteStore({ path: join(dir, 'tracker.db') })
  await store.open()
  const now = Date.now()
  // the fleet registered before this tracker started (as after a restart), not all within
  // the last minute, which replica sync would read again as fresh registrations
  const registeredAt = now - 3_600_000
  const states: NodeStateRow[] = []
  for (let i = 0; i < nodes; i++) {
    const { address, sessionId, key } = benchNode(seed, i)
    const region = REGIONS[i % REGIONS.length]!
    // URLs nothing answers, on loopback (a probe is refused at once, never leaves the
    // machine); the first probes land at random points of the (long) interval
    const httpUrl = `http://127.0.0.1:9/n${i}/`
    const message = {
      node: address,
      peerId: `12D3KooW${[...createHash('sha256').update(`${seed}:${i}`).digest()].map((b) => BASE58[b % 58]).join('')}`,
      multiaddrs: [`/ip4/10.0.0.1/tcp/${4000 + (i % 1000)}`],
      httpUrl,
      region,
      capacity: 12_500_000,
      payout: address,
      timestamp: Math.floor(now / 1000),
    }
    await store.putNode({
      node: {
        address,
        peerId: message.peerId,
        httpUrl,
        region,
        capacity: message.capacity,
        recordTimestamp: message.timestamp,
        record: JSON.stringify({ message, signature: SIGNATURE }),
        updatedAt: registeredAt,
      },
      session: { id: sessionId, key, createdAt: now },
    })
    states.push({
      node: address,
      region,
      capacity: message.capacity,
      registeredAt,
      flagged: false,
      latencyMs: 20 + (i % 200),
      lastAnsweredAt: now,
      lastProbeAt: now,
      consecutiveMisses: 0,
      uptime: '1'.repeat(64),
      successes: 10,
      failures: 0,
      reportAt: now,
      throughput: 5_000_000,
      integrityFailures: 0,
      coolOffUntil: null,
      load: 1000,
      heartbeatAt: now,
      placementWeight: 10_000,
    })
  }
  await store.putNodeStates(states)
  await store.close()
  const t = createTracker(
    {
      port: 0,
      probeIntervalMs: 3_600_000,
      auditIntervalMs: 0,
      allowPrivateUrls: true,
      rateLimits: {
        heartbeat: { rate: 1e9, burst: 1e9 },
        select: { rate: 1e9, burst: 1e9 },
        default: { rate: 1e9, burst: 1e9 },
      },
    },
    {
      store: createSqliteStore({ path: join(dir, 'tracker.db') }),
      account: privateKeyToAccount(generatePrivateKey()),
      register: new Registry(),
    },
  )
  await t.start()
  return {
    url: t.url,
    async stop() {
      await t.stop()
      await rm(dir, { recursive: true, force: true })
    },
  }
}

async function baseline(): Promise<{ url: string; stop: () => Promise<void> }> {
  const server = createServer((req, res) => {
    if (req.method === 'POST') {
      const parts: Buffer[] = []
      req.on('data', (d: Buffer) => parts.push(d))
      req.on('end', () => {
        JSON.parse(Buffer.concat(parts).toString('utf8'))
        const body = '{"status":"active"}'
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length }).end(body)
      })
      return
    }
    res
      .writeHead(200, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(BASELINE_SELECT),
      })
      .end(BASELINE_SELECT)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  }
}

if (process.argv[1]?.endsWith('http-server.ts')) {
  const [mode, nodes, seed] = process.argv.slice(2)
  const server = mode === 'baseline' ? await baseline() : await tracker(Number(nodes), seed ?? 'bench')
  process.stdout.write(`READY ${server.url}\n`)
  process.on('SIGTERM', () => {
    server.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    )
  })
}
