/**
 * Processes the benchmark starts and what it reads of them from /proc: CPU time and RSS.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { join } from 'node:path'

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
  } catch {
    return 100
  }
})()

/** User + system CPU seconds used so far by `pids`, every thread included (from /proc/<pid>/stat). */
export function cpuSeconds(pids: readonly number[]): number {
  let ticks = 0
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      ticks += Number(fields[11]) + Number(fields[12])
    } catch {
      // exited
    }
  }
  return ticks / CLK_TCK
}

/** A `VmRSS`/`VmHWM`-style field of /proc/<pid>/status, in MiB. */
export function statusMiB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  if (m === null) throw new Error(`no ${field} for pid ${pid}`)
  return Number(m[1]) / 1024
}

/** Samples VmRSS of `pid` every `everyMs` until `stop()`; returns the peak in MiB. */
export function sampleRss(pid: number, everyMs = 50): { stop(): number } {
  let peak = statusMiB(pid, 'VmRSS')
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, statusMiB(pid, 'VmRSS'))
    } catch {
      // exited
    }
  }, everyMs)
  return {
    stop() {
      clearInterval(timer)
      return peak
    },
  }
}

/** Moves every thread of a running process to `cpu` (`taskset -a -p -c`). */
export function pin(pid: number, cpu: string): void {
  execFileSync('taskset', ['-a', '-p', '-c', cpu, String(pid)], { stdio: 'ignore' })
}

/** A free TCP port on 127.0.0.1 (asked of the kernel, then released). */
export async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as net.AddressInfo).port
  server.close()
  await once(server, 'close')
  return port
}

function have(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0
}

/** Installs Debian's nginx and wrk (and taskset's util-linux) with apt-get when missing, and says so. */
export function ensureTools(): void {
  const packages = [
    ...(have('nginx') ? [] : ['nginx']),
    ...(have('wrk') ? [] : ['wrk']),
    ...(have('taskset') ? [] : ['util-linux']),
  ]
  if (packages.length === 0) return
  console.log(`installing ${packages.join(' ')} with apt-get (needed by the edge benchmark)`)
  const install = () =>
    spawnSync('apt-get', ['install', '-y', ...packages], { stdio: 'inherit' }).status === 0
  if (install()) return
  console.log('apt-get install failed; running apt-get update and trying again')
  spawnSync('apt-get', ['update'], { stdio: 'inherit' })
  if (!install()) throw new Error(`could not install ${packages.join(' ')} with apt-get`)
}

export interface Child {
  readonly pid: number
  stop(): Promise<void>
}

/**
 * Spawns `taskset -c CPU COMMAND…` (taskset execs the command: the child's PID is the
 * command's) and returns it with a stop that sends SIGTERM to that PID, then SIGKILL.
 */
export function spawnPinned(
  cpu: string,
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; stdout?: 'pipe' | 'inherit' | 'ignore' } = {},
): Child & { readonly process: ReturnType<typeof spawn> } {
  const child = spawn('taskset', ['-c', cpu, command, ...args], {
    stdio: ['ignore', options.stdout ?? 'inherit', 'inherit'],
    env: options.env ?? process.env,
  })
  if (child.pid === undefined) throw new Error(`could not start ${command}`)
  const pid = child.pid
  return {
    pid,
    process: child,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = once(child, 'exit')
      process.kill(pid, 'SIGTERM')
      const timer = setTimeout(() => {
        if (child.exitCode === null && child.signalCode === null) process.kill(pid, 'SIGKILL')
      }, 15_000)
      await exited
      clearTimeout(timer)
    },
  }
}

/**
 * Resets the process's peak RSS (`VmHWM`) to its current RSS (`echo 5 > /proc/<pid>/clear_refs`),
 * so a later `VmHWM` is the peak of what ran since. False when the kernel refuses.
 */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5')
    return true
  } catch {
    return false
  }
}

/** Busy and total jiffies of each CPU (`/proc/stat`). */
function cpuTimes(): { busy: number; total: number }[] {
  const out: { busy: number; total: number }[] = []
  for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
    const m = /^cpu(\d+) (.*)$/.exec(line)
    if (m === null) continue
    const v = m[2]!.trim().split(/\s+/).map(Number)
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0)
    out[Number(m[1])] = { busy: total - v[3]! - v[4]!, total }
  }
  return out
}

/** How busy each CPU was over the next `ms` (0..1). */
export async function cpuBusy(ms: number): Promise<number[]> {
  const a = cpuTimes()
  await new Promise((resolve) => setTimeout(resolve, ms))
  const b = cpuTimes()
  return b.map((t, i) => (t.busy - a[i]!.busy) / Math.max(1, t.total - a[i]!.total))
}

/** Median µs of creating (`wx`) and closing small files in fan-out subdirectories of `dir`. */
export function probeCreateUs(dir: string, files = 256): number {
  mkdirSync(dir, { recursive: true })
  const times: number[] = []
  try {
    for (let i = 0; i < 16; i++) mkdirSync(join(dir, i.toString(16).padStart(2, '0')))
    for (let i = 0; i < files; i++) {
      const path = join(dir, (i % 16).toString(16).padStart(2, '0'), `probe-${i}`)
      const t = performance.now()
      closeSync(openSync(path, 'wx', 0o600))
      times.push((performance.now() - t) * 1000)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  times.sort((x, y) => x - y)
  return times[times.length >> 1]!
}

/** The arguments that start shoal-node `bin` on 127.0.0.1 for the edge benchmarks (run with `process.execPath`). */
export function shoalStartArgs(
  bin: string,
  init: { originPort: number; port: number; dataDir: string; memoryCache: string; extra?: string[] },
): string[] {
  return [
    '--disable-warning=ExperimentalWarning',
    bin,
    'start',
    '--origin',
    `http://127.0.0.1:${init.originPort}`,
    '--listen',
    `127.0.0.1:${init.port}`,
    '--data-dir',
    init.dataDir,
    '--memory-cache',
    init.memoryCache,
    '--log-level',
    'warn',
    ...(init.extra ?? []),
  ]
}
