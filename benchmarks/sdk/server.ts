/**
 * The server side of the `sdk` benchmark, run as a child process pinned to CPU 0 by
 * `run.ts`: `count` real edge nodes on 127.0.0.1, each behind a TCP proxy that delays
 * what the node sends by a latency the parent sets over IPC (`{ type: 'latency', index,
 * ms }`), so one node can be made slow in the middle of a run. Answers
 * `{ type: 'ready', nodes: [{ url, proxyUrl }] }`; `{ type: 'stop' }` stops everything.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createEdgeNode, type EdgeNode } from '@shoal/edge-node'

const count = Number(process.argv[2] ?? 1)
const send = (message: unknown) => process.send?.(message)

/** A TCP proxy delaying node→client bytes by `latency.ms` (in order, whatever the changes). */
function latencyProxy(target: number, latency: { ms: number }): Promise<net.Server> {
  const server = net.createServer((client) => {
    client.setNoDelay(true)
    const upstream = net.connect({ host: '127.0.0.1', port: target })
    upstream.setNoDelay(true)
    const queue: { at: number; data: Buffer | null }[] = []
    let timer: NodeJS.Timeout | undefined
    let last = 0
    const drain = () => {
      timer = undefined
      const now = performance.now()
      while (queue.length > 0 && queue[0]!.at <= now + 0.5) {
        const { data } = queue.shift()!
        if (data === null) client.end()
        else client.write(data)
      }
      if (queue.length > 0) timer = setTimeout(drain, queue[0]!.at - now)
    }
    const push = (data: Buffer | null) => {
      last = Math.max(last, performance.now() + latency.ms)
      queue.push({ at: last, data })
      if (latency.ms === 0 && queue.length === 1) return drain()
      if (timer === undefined) timer = setTimeout(drain, Math.max(0, queue[0]!.at - performance.now()))
    }
    upstream.on('data', (d: Buffer) => push(d))
    upstream.on('end', () => push(null))
    client.pipe(upstream)
    const close = () => {
      client.destroy()
      upstream.destroy()
      if (timer !== undefined) clearTimeout(timer)
    }
    client.on('error', close)
    upstream.on('error', close)
    client.on('close', close)
  })
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)))
}

const dirs: string[] = []
const nodes: EdgeNode[] = []
const proxies: net.Server[] = []
const latencies: { ms: number }[] = []
for (let i = 0; i < count; i++) {
  const dataDir = await mkdtemp(join(tmpdir(), 'shoal-bench-sdk-'))
  dirs.push(dataDir)
  const node = createEdgeNode({
    dataDir,
    host: '127.0.0.1',
    port: 0,
    shutdownGraceMs: 500,
    acceptPushes: 'any',
  })
  await node.start()
  nodes.push(node)
  const latency = { ms: 0 }
  latencies.push(latency)
  proxies.push(await latencyProxy(Number(new URL(node.url).port), latency))
}

// the parent gone (killed, crashed): nothing left to serve
process.on('disconnect', () => process.exit(0))
process.on('message', async (m: { type: string; index?: number; ms?: number }) => {
  if (m.type === 'latency') {
    latencies[m.index!]!.ms = m.ms!
    send({ type: 'ok' })
  } else if (m.type === 'stop') {
    for (const p of proxies) p.close()
    for (const n of nodes) await n.stop()
    for (const d of dirs) await rm(d, { recursive: true, force: true })
    process.exit(0)
  }
})
send({
  type: 'ready',
  nodes: nodes.map((n, i) => ({
    url: `${n.url.replace(/\/$/, '')}/`,
    proxyUrl: `http://127.0.0.1:${(proxies[i]!.address() as net.AddressInfo).port}/`,
  })),
})
