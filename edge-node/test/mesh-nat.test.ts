/**
 * A node behind NAT still serves through the mesh. The node runs in its own network
 * namespace behind a veth pair whose host side masquerades what leaves it, and a
 * firewall in the namespace drops every connection opened from outside (a home
 * router). It holds a reservation on a relay node on the host (circuit relay v2); the
 * SDK mesh client and another edge node reach it only through that relay. It registers
 * with a tracker whose probes cannot reach its HTTP URL: the tracker records it as
 * reachable through the mesh only, and `createClient` with the mesh fetches from it.
 *
 * Needs root, `ip` (iproute2) and `iptables` (installed with apt-get when missing).
 * The relay and the tracker listen on the host end of the veth pair: an address that
 * exists only on this machine. Where namespaces cannot be made, the test fails saying why.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { createClient } from '@shoal/client-sdk'
import { createMeshClient, createMeshDispatch } from '@shoal/client-sdk/node'
import type { Tracker } from '@shoal/tracker'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createEdgeNode, type EdgeNode } from '../src/node.ts'
import { startTestTracker } from './helpers/tracker.ts'

const helper = fileURLToPath(new URL('./helpers/nat-node.ts', import.meta.url))
const tag = process.pid % 250
const ns = `shoal-nat-${process.pid}`
const hostIf = `shn${process.pid}h`.slice(0, 15)
const nsIf = `shn${process.pid}n`.slice(0, 15)
const hostIp = `10.231.${tag}.1`
const nsIp = `10.231.${tag}.2`
const subnet = `10.231.${tag}.0/30`
const SIZE = 600_000

const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] })
const masquerade = (op: '-A' | '-D') => [
  '-t',
  'nat',
  op,
  'POSTROUTING',
  '-s',
  subnet,
  '!',
  '-d',
  subnet,
  '-j',
  'MASQUERADE',
]

function has(cmd: string): boolean {
  try {
    run('sh', ['-c', `command -v ${cmd}`])
    return true
  } catch {
    return false
  }
}

function setUpNamespace(): void {
  if (process.getuid?.() !== 0)
    throw new Error(
      'the NAT test needs root to make a network namespace (ip netns); run it as root, as CI does',
    )
  if (!has('ip')) throw new Error('the NAT test needs iproute2 (`ip`): apt-get install -y iproute2')
  if (!has('iptables')) {
    try {
      run('apt-get', ['install', '-y', 'iptables'])
    } catch {
      run('sh', ['-c', 'apt-get update && apt-get install -y iptables'])
    }
  }
  try {
    run('ip', ['netns', 'add', ns])
  } catch (err) {
    throw new Error(
      `network namespaces are unavailable here (ip netns add failed: ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}); the NAT test cannot run`,
    )
  }
  run('ip', ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf])
  run('ip', ['link', 'set', nsIf, 'netns', ns])
  run('ip', ['addr', 'add', `${hostIp}/30`, 'dev', hostIf])
  run('ip', ['link', 'set', hostIf, 'up'])
  const inNs = (...args: string[]) => run('ip', ['netns', 'exec', ns, ...args])
  inNs('ip', 'addr', 'add', `${nsIp}/30`, 'dev', nsIf)
  inNs('ip', 'link', 'set', nsIf, 'up')
  inNs('ip', 'link', 'set', 'lo', 'up')
  inNs('ip', 'route', 'add', 'default', 'via', hostIp)
  // the home router: what leaves the home network is masqueraded...
  run('iptables', masquerade('-A'))
  // ...and nothing from outside may open a connection into it
  inNs(
    'iptables',
    '-A',
    'INPUT',
    '-i',
    nsIf,
    '-p',
    'tcp',
    '-m',
    'conntrack',
    '--ctstate',
    'NEW',
    '-j',
    'DROP',
  )
}

function tearDownNamespace(): void {
  for (const [cmd, args] of [
    ['iptables', masquerade('-D')],
    ['ip', ['netns', 'del', ns]],
    ['ip', ['link', 'del', hostIf]],
  ] as const) {
    try {
      run(cmd, [...args])
    } catch {
      // already gone
    }
  }
}

function pattern(size: number): Buffer {
  const bytes = Buffer.alloc(size)
  for (let i = 0; i < size; i++) bytes[i] = (i * 131 + (i >> 11)) & 0xff
  return bytes
}

describe('mesh: a node behind NAT serves through a relay', () => {
  const dirs: string[] = []
  const nodes: EdgeNode[] = []
  let child: ChildProcess | undefined
  let tracker: Tracker | undefined

  beforeAll(() => setUpNamespace())
  afterAll(async () => {
    child?.stdin?.end()
    if (child !== undefined && child.exitCode === null) {
      const exited = new Promise((r) => child!.once('exit', r))
      setTimeout(() => child?.kill('SIGKILL'), 3000).unref()
      await exited
    }
    for (const node of nodes) await node.stop()
    await tracker?.stop()
    for (const dir of dirs) await rm(dir, { recursive: true, force: true })
    tearDownNamespace()
  })

  const startNode = async (mesh: Parameters<typeof createEdgeNode>[0]['mesh']) => {
    const dataDir = await mkdtemp(join(tmpdir(), 'shoal-nat-'))
    dirs.push(dataDir)
    const node = createEdgeNode({ dataDir, host: '127.0.0.1', port: 0, shutdownGraceMs: 100, mesh })
    await node.start()
    nodes.push(node)
    return node
  }

  it('the SDK and another node fetch from the NATed node through the relay; a direct dial fails', async () => {
    const relay = await startNode({ listen: [`/ip4/${hostIp}/tcp/0`], relayServer: true })
    const relayAddr = relay.mesh!.multiaddrs()[0]!
    const trackerDir = await mkdtemp(join(tmpdir(), 'shoal-nat-tracker-'))
    dirs.push(trackerDir)
    tracker = await startTestTracker(trackerDir, { host: hostIp, probeTimeoutMs: 300 })
    child = spawn(
      'ip',
      [
        'netns',
        'exec',
        ns,
        process.execPath,
        '--disable-warning=ExperimentalWarning',
        helper,
        relayAddr,
        nsIp,
        String(SIZE),
        tracker.url,
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    )
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child!.stdout! }).once('line', resolve)
      child!.once('exit', (code) => reject(new Error(`the NATed node exited with ${code}`)))
    })
    const nated = JSON.parse(line) as {
      peerId: string
      multiaddrs: string[]
      record: string[]
      cid: string
      node: string
    }
    const circuit = nated.multiaddrs.filter((m) => m.includes('/p2p-circuit'))
    const direct = nated.multiaddrs.filter((m) => m.startsWith(`/ip4/${nsIp}/`))
    expect(circuit.length).toBeGreaterThan(0)
    // what its node record would carry: the relay address first, no trailing own peer id
    expect(nated.record[0]).toMatch(/\/p2p-circuit$/)
    expect(direct.length).toBeGreaterThan(0)

    const sdk = createMeshClient({ timeoutMs: 3000 })
    await sdk.start()
    try {
      // the node's own address is behind the home router: nothing gets in
      await expect(sdk.has({ peerId: nated.peerId, multiaddrs: direct }, nated.cid)).rejects.toMatchObject({
        code: 'SHOAL_ERR_UNAVAILABLE',
      })
      const viaRelay = { peerId: nated.peerId, multiaddrs: circuit }
      expect(await sdk.has(viaRelay, nated.cid)).toBe(true)
      expect(Buffer.from(await sdk.fetch(viaRelay, nated.cid)).equals(pattern(SIZE))).toBe(true)

      // the tracker's probes cannot reach its URL; its heartbeats say it is relayed
      const deadline = Date.now() + 15_000
      let view: { status?: string; reachability?: { via?: string; url?: boolean; mesh?: string } } = {}
      while (view.reachability?.via !== 'mesh') {
        if (Date.now() > deadline) throw new Error(`not recorded as mesh-reachable: ${JSON.stringify(view)}`)
        await new Promise((r) => setTimeout(r, 100))
        const res = await request(`${tracker.url}/v1/nodes/${nated.node}`)
        view = (await res.body.json()) as typeof view
      }
      expect(view).toMatchObject({ status: 'unreachable', reachability: { url: false, mesh: 'relayed' } })
      // a plain client is never handed its URL; createClient with the mesh fetches through the relay
      const plain = createClient({ tracker: tracker.url })
      await expect(plain.fetch(`shoal://${nated.cid}`)).rejects.toMatchObject({
        code: 'SHOAL_ERR_UNAVAILABLE',
      })
      await plain.stop()
      // (a fresh mesh client: it dials the relay address first, not the unreachable direct one)
      const fresh = createMeshClient({ timeoutMs: 3000 })
      await fresh.start()
      const client = createClient({ tracker: tracker.url }, { mesh: createMeshDispatch(fresh) })
      try {
        const res = await client.fetch(`shoal://${nated.cid}`)
        expect(Buffer.from(await res.arrayBuffer()).equals(pattern(SIZE))).toBe(true)
      } finally {
        await client.stop()
        await fresh.stop()
      }
    } finally {
      await sdk.stop()
    }

    // an edge node with the NATed node as its only neighbour fills from it (there is no origin)
    const b = await startNode({ bootstrap: [{ peerId: nated.peerId, multiaddrs: circuit }] })
    expect(b.mesh!.neighbours()).toContain(nated.peerId)
    const res = await request(`${b.url}/c/${nated.cid}`)
    expect(res.statusCode).toBe(200)
    expect(Buffer.from(await res.body.arrayBuffer()).equals(pattern(SIZE))).toBe(true)
  })
})
