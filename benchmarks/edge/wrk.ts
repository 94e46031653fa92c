/**
 * wrk runs, pinned with taskset, bounded in time, and the few figures read from its output.
 */
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'

const run = promisify(execFile)

export interface WrkInit {
  url: string
  /** CPU list for `taskset -c`. */
  cpu: string
  threads: number
  connections: number
  seconds: number
  /** A Lua script and its arguments (`wrk -s FILE URL -- ARGS`). */
  script?: { file: string; args: string[] }
}

export interface WrkRun {
  rps: number
  requests: number
  /** p50 / p99 latency, ms. */
  p50Ms: number
  p99Ms: number
  /** Non-2xx/3xx responses plus socket errors (connect, read, write, timeout). */
  errors: number
  /** Bytes read per second. */
  bytesPerSecond: number
}

const UNITS: Record<string, number> = { us: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
const SIZE_UNITS: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 }

function latencyMs(out: string, percentile: string): number {
  const m = new RegExp(`^\\s*${percentile}%\\s+([\\d.]+)(us|ms|s|m|h)\\s*$`, 'm').exec(out)
  if (m === null) throw new Error(`no ${percentile}% latency in wrk output:\n${out}`)
  return Number(m[1]) * UNITS[m[2]!]!
}

/** Parses wrk's text report (run with `--latency`). */
export function parseWrk(out: string): WrkRun {
  const rps = /^Requests\/sec:\s+([\d.]+)/m.exec(out)
  const total = /^\s*(\d+) requests in/m.exec(out)
  const transfer = /^Transfer\/sec:\s+([\d.]+)(B|KB|MB|GB|TB)/m.exec(out)
  if (rps === null || total === null || transfer === null)
    throw new Error(`wrk output not understood:\n${out}`)
  let errors = 0
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out)
  if (non2xx !== null) errors += Number(non2xx[1])
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)
  if (socket !== null) for (const n of socket.slice(1)) errors += Number(n)
  return {
    rps: Number(rps[1]),
    requests: Number(total[1]),
    p50Ms: latencyMs(out, '50'),
    p99Ms: latencyMs(out, '99'),
    errors,
    bytesPerSecond: Number(transfer[1]) * SIZE_UNITS[transfer[2]!]!,
  }
}

/** Runs `taskset -c CPU wrk -tT -cC -dDs --latency [--script] URL`; never longer than its duration plus a margin. */
export async function wrk(init: WrkInit): Promise<WrkRun> {
  const args = [
    '-c',
    init.cpu,
    'wrk',
    `-t${init.threads}`,
    `-c${init.connections}`,
    `-d${init.seconds}s`,
    '--timeout',
    '5s',
    '--latency',
    ...(init.script === undefined ? [] : ['-s', init.script.file]),
    init.url,
    ...(init.script === undefined ? [] : ['--', ...init.script.args]),
  ]
  const { stdout } = await run('taskset', args, {
    timeout: (init.seconds + 15) * 1000,
    killSignal: 'SIGKILL',
    maxBuffer: 1 << 20,
  })
  return parseWrk(stdout)
}
