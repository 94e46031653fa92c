/**
 * `npm run bench -- mesh`: the chunk protocol over libp2p against a raw TCP socket,
 * same run, same bytes, same two processes.
 *
 * The sender (`server.ts`: an edge node holding eight 8 MiB objects in memory, and a
 * raw TCP server) runs pinned to CPU 0; this process, the receiver, to CPU 1. Each run
 * reads the 64 MiB once over a raw TCP socket (bytes counted, nothing else) and once
 * with the SDK's mesh client (`/shoal/chunk/1.0.0` over TCP + Noise + Yamux on one kept
 * connection, every 256 KiB chunk checked against its leaf on arrival), alternating
 * A B A B; the figure is the median of the per-run ratios.
 *
 * - `mesh_throughput_ratio_vs_tcp`: mesh MB/s ÷ raw TCP MB/s. Beside it, the CPU time
 *   each side spent per MiB over the mesh, which a busy machine disturbs less.
 *
 * The floor, in the same rounds (A B C): the same 64 MiB on a bare libp2p stream over
 * the same kind of connection (TCP + Noise + Yamux, 1 MiB sends, no frames, no
 * verification; `server.ts`), as `noise_yamux_ratio_vs_tcp`: what libp2p itself leaves
 * of raw TCP on these cores, before the chunk protocol verifies anything. And the
 * receiver's crypto alone, on its core: decrypting the 64 MiB as Noise does (Node's
 * ChaCha20-Poly1305, one decipher per 64 KiB message) plus SHA-256 over every 256 KiB
 * chunk (the leaf check), as `crypto_floor_ratio_vs_tcp`: no receiver can verify faster
 * than that, whatever its framing.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { createDecipheriv, createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import net from 'node:net'
import { loadavg } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { multiaddr } from '@multiformats/multiaddr'
import { createMeshClient, createMeshTransport, type MeshNode } from '@shoal/client-sdk/node'
import { median, printResult, round, writeResult } from '../src/results.ts'

const here = dirname(fileURLToPath(import.meta.url))
const MIB = 2 ** 20
const OBJECT = 8 * MIB
const OBJECTS = 8
const SIZE = OBJECT * OBJECTS
const RUNS = 7
const WARMUP = 2

// the machine's 1-minute load average when the run began (other work on the cores moves every figure)
const loadAtStart = round(loadavg()[0]!, 2)
const pinned = spawnSync('taskset', ['-a', '-cp', '1', String(process.pid)], { stdio: 'ignore' }).status === 0

interface Ready {
  cids: string[]
  peerId: string
  multiaddrs: string[]
  tcpPort: number
  rawProtocol: string
}

function startServer(): Promise<{ child: ChildProcess; ready: Ready }> {
  const args = [
    ...process.execArgv,
    '--disable-warning=ExperimentalWarning',
    join(here, 'server.ts'),
    String(OBJECT),
    String(OBJECTS),
  ]
  const child = pinned
    ? spawn('taskset', ['-c', '0', process.execPath, ...args], {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      })
    : spawn(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  return new Promise((resolve, reject) => {
    child.once('message', (m: Ready) => resolve({ child, ready: m }))
    child.once('exit', (code) => reject(new Error(`bench server exited with ${code}`)))
  })
}

function stopServer(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
    child.once('exit', () => {
      clearTimeout(timer)
      resolve()
    })
    child.send({ type: 'stop' })
  })
}

/** Seconds to read the whole object over a fresh raw TCP connection. */
function tcpRead(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now()
    let n = 0
    const socket = net.connect({ host: '127.0.0.1', port })
    socket.on('data', (d: Buffer) => {
      n += d.length
    })
    socket.on('end', () => {
      if (n !== SIZE) reject(new Error(`raw TCP read ${n} of ${SIZE} bytes`))
      else resolve((performance.now() - started) / 1000)
    })
    socket.on('error', reject)
  })
}

const { child, ready } = await startServer()
const mesh = createMeshClient({ timeoutMs: 30_000 })
await mesh.start()
const node: MeshNode = { peerId: ready.peerId, multiaddrs: ready.multiaddrs }

/** CPU milliseconds the sender process has used (Linux `/proc/<pid>/stat`), or NaN. */
function senderCpuMs(): number {
  try {
    const fields = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
    return (Number(fields[11]) + Number(fields[12])) * 10
  } catch {
    return Number.NaN
  }
}
const selfCpuMs = () => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}
const cpu = { receiver: 0, sender: 0, mib: 0 }

// the floor's own client: a bare libp2p peer, its connection kept like the mesh client's
const bare = await createMeshTransport({ listen: [] })
const first = ready.multiaddrs[0]!
const bareAddr = first.includes('/p2p/')
  ? multiaddr(first)
  : multiaddr(first).encapsulate(`/p2p/${ready.peerId}`)

const NOISE_MESSAGE = 65_519
const sealed = randomBytes(NOISE_MESSAGE)
const noiseKey = randomBytes(32)
const nonce = Buffer.alloc(12)
const verifyChunk = randomBytes(256 * 1024)

/** Seconds for the receiver's crypto over SIZE bytes: [Noise decryption, leaf hashing]. */
function cryptoSeconds(): [number, number] {
  let started = performance.now()
  for (let done = 0; done < SIZE; done += NOISE_MESSAGE) {
    // the tag does not match random bytes: update() does the work, final() is not reached
    const d = createDecipheriv('chacha20-poly1305', noiseKey, nonce, { authTagLength: 16 })
    d.setAAD(Buffer.alloc(0), { plaintextLength: NOISE_MESSAGE })
    d.update(sealed)
  }
  const decrypt = (performance.now() - started) / 1000
  started = performance.now()
  for (let done = 0; done < SIZE; done += verifyChunk.length)
    createHash('sha256')
      .update(new Uint8Array([0]))
      .update(verifyChunk)
      .digest()
  return [decrypt, (performance.now() - started) / 1000]
}

/** Seconds to read the 64 MiB on a bare libp2p stream (bytes counted, nothing else). */
async function bareRead(): Promise<number> {
  const started = performance.now()
  const stream = await bare.dialProtocol(bareAddr, ready.rawProtocol)
  let n = 0
  await new Promise<void>((resolve, reject) => {
    stream.addEventListener('message', (evt) => {
      n += evt.data.byteLength
    })
    stream.addEventListener('remoteCloseWrite', () => resolve())
    stream.addEventListener('close', (evt) => (evt.error ? reject(evt.error) : resolve()))
  })
  await stream.close()
  if (n !== SIZE) throw new Error(`bare libp2p stream read ${n} of ${SIZE} bytes`)
  return (performance.now() - started) / 1000
}

/** Seconds to read the whole object, verified, over the chunk protocol (connection kept). */
async function meshRead(): Promise<number> {
  const started = performance.now()
  const [r0, s0] = [selfCpuMs(), senderCpuMs()]
  let n = 0
  for (const cid of ready.cids) for await (const part of mesh.stream(node, cid)) n += part.length
  if (n !== SIZE) throw new Error(`mesh read ${n} of ${SIZE} bytes`)
  const seconds = (performance.now() - started) / 1000
  cpu.receiver += selfCpuMs() - r0
  cpu.sender += senderCpuMs() - s0
  cpu.mib += SIZE / MIB
  return seconds
}

try {
  for (let i = 0; i < WARMUP; i++) {
    await tcpRead(ready.tcpPort)
    await meshRead()
    await bareRead()
  }
  Object.assign(cpu, { receiver: 0, sender: 0, mib: 0 })
  const tcp: number[] = []
  const p2p: number[] = []
  const floor: number[] = []
  const ratios: number[] = []
  const floorRatios: number[] = []
  const cryptoRatios: number[] = []
  const decryptRates: number[] = []
  const hashRates: number[] = []
  for (let i = 0; i < RUNS; i++) {
    const t = SIZE / MIB / (await tcpRead(ready.tcpPort))
    const m = SIZE / MIB / (await meshRead())
    const f = SIZE / MIB / (await bareRead())
    tcp.push(t)
    p2p.push(m)
    floor.push(f)
    ratios.push(m / t)
    floorRatios.push(f / t)
    const [decrypt, hash] = cryptoSeconds()
    decryptRates.push(SIZE / MIB / decrypt)
    hashRates.push(SIZE / MIB / hash)
    cryptoRatios.push(SIZE / MIB / (decrypt + hash) / t)
    console.log(
      `  run ${i + 1}: raw TCP ${t.toFixed(0)} MiB/s, mesh ${m.toFixed(0)} MiB/s, bare Noise+Yamux ${f.toFixed(0)} MiB/s`,
    )
  }
  const result = await writeResult('mesh', {
    mesh_throughput_ratio_vs_tcp: {
      value: round(median(ratios)),
      unit: 'ratio',
      goal: 0.2,
      detail: {
        mesh_mib_s: round(median(p2p), 1),
        tcp_mib_s: round(median(tcp), 1),
        noise_yamux_mib_s: round(median(floor), 1),
        noise_yamux_ratio_vs_tcp: round(median(floorRatios)),
        noise_yamux_ratios: floorRatios.map((r) => round(r)),
        mesh_ratio_vs_noise_yamux: round(median(p2p.map((m, i) => m / floor[i]!))),
        crypto_floor_ratio_vs_tcp: round(median(cryptoRatios)),
        receiver_decrypt_mib_s: round(median(decryptRates), 1),
        receiver_sha256_mib_s: round(median(hashRates), 1),
        object_mib: OBJECT / MIB,
        objects: OBJECTS,
        chunk_kib: 256,
        runs: RUNS,
        pinned,
        load_average: [loadAtStart, round(loadavg()[0]!, 2)],
        ratios: ratios.map((r) => round(r)),
        // the run-to-run noise behind the medians
        mesh_mib_s_runs: p2p.map((m) => round(m, 0)),
        tcp_mib_s_runs: tcp.map((t) => round(t, 0)),
        // CPU per MiB moved, which a busy machine disturbs less than throughput
        receiver_cpu_ms_per_mib: round(cpu.receiver / cpu.mib, 2),
        sender_cpu_ms_per_mib: round(cpu.sender / cpu.mib, 2),
      },
    },
  })
  printResult(result)
} finally {
  await mesh.stop()
  await bare.stop()
  await stopServer(child)
}
