/**
 * Micro-benchmark of the hit fast path (not a test): prepared cache hits served by
 * (a) the fast path in front of node:http, (b) plain node:http answering a prepared Buffer,
 * (c) nginx `proxy_cache` hits (one worker, sendfile off) in front of an nginx origin.
 *
 * Every server is pinned to CPU 0 and wrk to CPU 1; runs alternate A B C A B C and the
 * median of the repetitions is reported: req/s, and the server's CPU time per request
 * (utime + stime from /proc ÷ requests), which holds up when other work shares the machine.
 * Everything binds 127.0.0.1, every load run is bounded in time, and everything started is
 * stopped by PID.
 *
 *   npx node edge-node/scripts/fast-path-bench.ts [--sizes 1k,64k,1m] [--reps 3]
 *     [--duration 5] [--connections 32] [--no-nginx] [--json]
 */
import { execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { createFastPath, prepareResponse } from '../src/http/fast-path.ts'

const SIZES: Record<string, number> = { '1k': 1024, '64k': 64 * 1024, '1m': 2 ** 20 }
const SERVER_CPU = '0'
const LOAD_CPU = '1'
const FAST = 'shoal fast path'

/** Headers alike for every server under test (nginx sends about these on a hit). */
function objectHeaders(size: number): Record<string, string> {
  return {
    server: 'bench',
    'content-type': 'application/octet-stream',
    'last-modified': 'Tue, 24 Nov 2026 12:00:00 GMT',
    etag: `"bench-${size}"`,
    'cache-control': 'public, max-age=3600',
    'accept-ranges': 'bytes',
  }
}

function body(size: number): Buffer {
  const b = Buffer.alloc(size)
  for (let i = 0; i < size; i++) b[i] = 97 + (i % 26)
  return b
}

// --- child: one server under test --------------------------------------------------------

async function serve(kind: string): Promise<void> {
  const objects = new Map<string, number>(Object.entries(SIZES).map(([name, size]) => [`/obj-${name}`, size]))
  let server: net.Server
  if (kind === 'fast') {
    const prepared = new Map(
      [...objects].map(([path, size]) => [
        path,
        prepareResponse({ headers: objectHeaders(size), body: body(size) }),
      ]),
    )
    const fallback = http.createServer((_req, res) => {
      res.statusCode = 404
      res.end()
    })
    const fastPath = createFastPath({}, { fallback, lookup: (req) => prepared.get(req.path) })
    server = net.createServer({ noDelay: true }, fastPath.accept)
  } else if (kind === 'node') {
    const entries = new Map(
      [...objects].map(([path, size]) => [path, { headers: objectHeaders(size), body: body(size) }]),
    )
    server = http.createServer((req, res) => {
      const e = entries.get(req.url ?? '')
      if (e === undefined) {
        res.statusCode = 404
        res.end()
        return
      }
      res.writeHead(200, { ...e.headers, 'content-length': e.body.length })
      res.end(e.body)
    })
  } else {
    throw new Error(`unknown server kind ${kind}`)
  }
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  process.stdout.write(`${JSON.stringify({ port: (server.address() as net.AddressInfo).port })}\n`)
  process.on('SIGTERM', () => process.exit(0))
}

// --- driver --------------------------------------------------------------------------------

interface Target {
  name: string
  port: number
  /** Processes whose CPU time counts as the server's. */
  pids(): number[]
  stop(): Promise<void>
}

interface Run {
  rps: number
  /** Server CPU time per request, in microseconds. */
  cpuUs: number
}

function have(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

function ensureTools(nginx: boolean): void {
  const missing = ['wrk', 'taskset', ...(nginx ? ['nginx'] : [])].filter((c) => !have(c))
  if (missing.length === 0) return
  const packages = missing.map((c) => (c === 'taskset' ? 'util-linux' : c))
  console.error(`installing ${packages.join(' ')} with apt-get`)
  execFileSync('apt-get', ['install', '-y', ...packages], { stdio: 'inherit' })
}

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
  } catch {
    return 100
  }
})()

/** User + system CPU seconds used so far by `pids` (from /proc). */
function cpuSeconds(pids: number[]): number {
  let ticks = 0
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      ticks += Number(fields[11]) + Number(fields[12]) // utime, stime
    } catch {}
  }
  return ticks / CLK_TCK
}

async function freePort(): Promise<number> {
  const s = net.createServer().listen(0, '127.0.0.1')
  await once(s, 'listening')
  const port = (s.address() as net.AddressInfo).port
  s.close()
  await once(s, 'close')
  return port
}

async function startNode(kind: string): Promise<Target> {
  // taskset execs node: the child's PID is the server's.
  const child = spawn(
    'taskset',
    ['-c', SERVER_CPU, process.execPath, import.meta.filename, '--serve', kind],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  )
  const port = await new Promise<number>((resolve, reject) => {
    let text = ''
    const timer = setTimeout(() => reject(new Error(`${kind} server did not start`)), 20_000)
    child.stdout.on('data', (d: Buffer) => {
      text += d.toString()
      const line = text.split('\n')[0]
      if (text.includes('\n') && line !== undefined) {
        clearTimeout(timer)
        resolve((JSON.parse(line) as { port: number }).port)
      }
    })
    child.once('exit', (code) => reject(new Error(`${kind} server exited with ${code}`)))
  })
  return {
    name: kind === 'fast' ? FAST : 'node:http',
    port,
    pids: () => (child.pid === undefined ? [] : [child.pid]),
    async stop() {
      if (child.exitCode === null && child.pid !== undefined) {
        process.kill(child.pid, 'SIGTERM')
        await once(child, 'exit')
      }
    },
  }
}

async function startNginx(): Promise<Target> {
  const prefix = mkdtempSync(join(tmpdir(), 'shoal-fast-path-bench-nginx-'))
  const [originPort, cachePort] = [await freePort(), await freePort()]
  const www = join(prefix, 'www')
  for (const dir of [www, join(prefix, 'cache'), join(prefix, 'logs')]) mkdirSync(dir, { recursive: true })
  for (const [name, size] of Object.entries(SIZES)) writeFileSync(join(www, `obj-${name}`), body(size))
  const conf = join(prefix, 'nginx.conf')
  writeFileSync(
    conf,
    `worker_processes 1;
${process.getuid?.() === 0 ? 'user root root;' : ''}
pid ${prefix}/nginx.pid;
error_log ${prefix}/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile off;
  tcp_nopush off;
  keepalive_requests 100000000;
  keepalive_timeout 65;
  default_type application/octet-stream;
  client_body_temp_path ${prefix}/client_body;
  proxy_temp_path ${prefix}/proxy_temp;
  fastcgi_temp_path ${prefix}/fastcgi_temp;
  uwsgi_temp_path ${prefix}/uwsgi_temp;
  scgi_temp_path ${prefix}/scgi_temp;
  proxy_cache_path ${prefix}/cache levels=1:2 keys_zone=bench:10m max_size=1g inactive=1h use_temp_path=off;
  server {
    listen 127.0.0.1:${originPort};
    root ${www};
    location / { add_header Cache-Control "public, max-age=3600"; }
  }
  server {
    listen 127.0.0.1:${cachePort};
    location / {
      proxy_pass http://127.0.0.1:${originPort};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache bench;
      proxy_cache_valid 200 1h;
      add_header X-Cache-Status $upstream_cache_status;
    }
  }
}
`,
  )
  execFileSync('taskset', ['-c', SERVER_CPU, 'nginx', '-c', conf, '-p', prefix])
  const masterPid = (): number => Number(readFileSync(join(prefix, 'nginx.pid'), 'utf8').trim())
  const target: Target = {
    name: 'nginx proxy_cache',
    port: cachePort,
    pids() {
      const master = masterPid()
      const children = readFileSync(`/proc/${master}/task/${master}/children`, 'utf8').trim().split(/\s+/)
      return [master, ...children.filter((c) => c !== '').map(Number)]
    },
    async stop() {
      try {
        const pid = masterPid()
        process.kill(pid, 'SIGQUIT')
        for (let i = 0; i < 100; i++) {
          try {
            process.kill(pid, 0)
          } catch {
            break
          }
          await new Promise((r) => setTimeout(r, 50))
        }
      } finally {
        rmSync(prefix, { recursive: true, force: true })
      }
    },
  }
  try {
    // Warm the cache; the benchmark measures hits only.
    for (const name of Object.keys(SIZES)) {
      for (let i = 0; i < 3; i++) {
        const res = await fetch(`http://127.0.0.1:${cachePort}/obj-${name}`)
        await res.arrayBuffer()
        if (res.status !== 200) throw new Error(`nginx answered ${res.status}`)
        if (i === 2 && res.headers.get('x-cache-status') !== 'HIT') throw new Error('nginx cache did not hit')
      }
    }
  } catch (err) {
    await target.stop()
    throw err
  }
  return target
}

function wrk(target: Target, path: string, seconds: number, connections: number): Run {
  const pids = target.pids()
  const before = cpuSeconds(pids)
  const out = execFileSync(
    'taskset',
    [
      '-c',
      LOAD_CPU,
      'wrk',
      '-t1',
      `-c${connections}`,
      `-d${seconds}s`,
      '--timeout',
      '5s',
      `http://127.0.0.1:${target.port}${path}`,
    ],
    { encoding: 'utf8', timeout: (seconds + 15) * 1000, killSignal: 'SIGKILL' },
  )
  const cpu = cpuSeconds(pids) - before
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out)
  const total = /(\d+) requests in/.exec(out)
  const errors = /Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)/.exec(out)
  if (rps === null || total === null) throw new Error(`wrk output not understood:\n${out}`)
  if (errors !== null) console.error(`  wrk reported: ${errors[0]}`)
  return { rps: Number(rps[1]), cpuUs: (cpu * 1e6) / Number(total[1]) }
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]!
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      serve: { type: 'string' },
      sizes: { type: 'string', default: '1k,64k,1m' },
      reps: { type: 'string', default: '3' },
      duration: { type: 'string', default: '5' },
      connections: { type: 'string', default: '32' },
      'no-nginx': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  })
  if (values.serve !== undefined) return serve(values.serve)

  const sizes = values.sizes.split(',').filter((s) => s in SIZES)
  const reps = Number(values.reps)
  const seconds = Number(values.duration)
  const connections = Number(values.connections)
  const withNginx = !values['no-nginx']
  ensureTools(withNginx)
  if (cpus().length < 2) console.error('warning: fewer than 2 CPUs; server and wrk share a core')

  const targets: Target[] = []
  try {
    targets.push(await startNode('fast'), await startNode('node'))
    if (withNginx) targets.push(await startNginx())
    const names = targets.map((t) => t.name)
    const others = names.filter((n) => n !== FAST)
    const results: Record<string, Record<string, Run[]>> = {}
    for (const size of sizes) {
      const path = `/obj-${size}`
      const bySize: Record<string, Run[]> = {}
      results[size] = bySize
      for (const t of targets) wrk(t, path, 1, connections) // warm-up (JIT, caches)
      for (let rep = 0; rep < reps; rep++) {
        for (const t of targets) {
          const run = wrk(t, path, seconds, connections)
          bySize[t.name] = [...(bySize[t.name] ?? []), run]
          console.error(
            `${size} rep ${rep + 1} ${t.name}: ${Math.round(run.rps)} req/s, ${run.cpuUs.toFixed(1)} µs CPU/req`,
          )
        }
      }
    }

    console.log(
      `\nmedians of ${reps} × ${seconds} s, wrk -t1 -c${connections}, server on CPU ${SERVER_CPU}, wrk on CPU ${LOAD_CPU}`,
    )
    console.log(
      'req/s: higher is better. µs: server CPU per request, lower is better (robust to other load).',
    )
    console.log(
      [
        'size',
        ...names.map((n) => `${n} req/s`),
        ...others.map((n) => `fast÷${n}`),
        ...names.map((n) => `${n} µs`),
        ...others.map((n) => `${n}÷fast µs`),
      ].join('\t'),
    )
    const summary: Record<string, Record<string, number>> = {}
    for (const size of sizes) {
      const runs = results[size]!
      const rps = (n: string): number => median(runs[n]!.map((r) => r.rps))
      const cpu = (n: string): number => median(runs[n]!.map((r) => r.cpuUs))
      const row: Record<string, number> = {}
      for (const n of names) {
        row[`${n} rps`] = rps(n)
        row[`${n} cpu_us`] = cpu(n)
      }
      for (const n of others) {
        row[`rps ratio fast/${n}`] = rps(FAST) / rps(n)
        row[`cpu ratio ${n}/fast`] = cpu(n) / cpu(FAST)
      }
      summary[size] = row
      console.log(
        [
          size,
          ...names.map((n) => Math.round(rps(n))),
          ...others.map((n) => (rps(FAST) / rps(n)).toFixed(2)),
          ...names.map((n) => cpu(n).toFixed(1)),
          ...others.map((n) => (cpu(n) / cpu(FAST)).toFixed(2)),
        ].join('\t'),
      )
    }
    if (values.json)
      console.log(JSON.stringify({ node: process.version, cpus: cpus().length, results, summary }))
  } finally {
    for (const t of targets) await t.stop()
  }
}

await main()
