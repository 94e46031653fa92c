/**
 * A/B of the 64 KiB storing miss: two builds (or two flag sets) of shoal-node against one
 * origin, measured in alternating laps of `wrk` with a new path per request, each lap
 * recording the server's CPU µs per request (from /proc). Prints the per-lap figures,
 * their medians, B / A of the medians and the median of each lap's B / A. For deciding whether a change to the miss path helps on a
 * shared machine: both sides see the same load, lap by lap.
 *
 * Usage (from the repository root):
 *   node benchmarks/edge/ab-miss.ts --b-bin /path/to/other/edge-node/bin/shoal-node.ts
 *   node benchmarks/edge/ab-miss.ts --b-args '--fast-miss off' --laps 6 --seconds 5
 *
 * A is this checkout's shoal-node with `--a-args`; B is `--b-bin` (default: the same
 * binary) with `--b-args`. Both are pinned to CPU 0, `wrk` and the origin to CPU 1.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import {
  type Child,
  cpuBusy,
  cpuSeconds,
  ensureTools,
  freePort,
  shoalStartArgs,
  spawnPinned,
} from './procs.ts'
import { wrk } from './wrk.ts'

const SHOAL_BIN = fileURLToPath(new URL('../../edge-node/bin/shoal-node.ts', import.meta.url))
const ORIGIN_SCRIPT = fileURLToPath(new URL('./origin.ts', import.meta.url))
const PASSPHRASE = 'shoal-edge-benchmark'

const { values: argv } = parseArgs({
  options: {
    'b-bin': { type: 'string', default: SHOAL_BIN },
    'a-args': { type: 'string', default: '' },
    'b-args': { type: 'string', default: '' },
    laps: { type: 'string', default: '6' },
    seconds: { type: 'string', default: '5' },
    warm: { type: 'string', default: '5' },
    'memory-cache': { type: 'string', default: '256MiB' },
  },
})
const LAPS = Number(argv.laps)
const SECONDS = Number(argv.seconds)
const WARM = Number(argv.warm)
const words = (s: string): string[] => s.split(' ').filter((w) => w !== '')

function get(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path }, (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode ?? 0))
      })
      .on('error', reject)
  })
}

async function startOrigin(): Promise<Child & { port: number }> {
  const child = spawnPinned('1', process.execPath, ['--disable-warning=ExperimentalWarning', ORIGIN_SCRIPT], {
    stdout: 'pipe',
  })
  const port = await new Promise<number>((resolve, reject) => {
    let out = ''
    child.process.stdout?.on('data', (d: Buffer) => {
      out += d.toString()
      const line = out.split('\n')[0]
      if (out.includes('\n') && line !== undefined) resolve((JSON.parse(line) as { port: number }).port)
    })
    child.process.once('exit', () => reject(new Error('the origin exited')))
  })
  return Object.assign(child, { port })
}

async function startShoal(bin: string, originPort: number, extra: string[]) {
  const port = await freePort()
  const dataDir = mkdtempSync(join(tmpdir(), 'shoal-bench-ab-'))
  const child = spawnPinned(
    '0',
    process.execPath,
    shoalStartArgs(bin, { originPort, port, dataDir, memoryCache: argv['memory-cache'], extra }),
    { env: { ...process.env, SHOAL_KEY_PASSPHRASE: PASSPHRASE } },
  )
  for (let i = 0; ; i++) {
    if ((await get(port, '/health').catch(() => 0)) === 200) break
    if (i >= 300 || child.process.exitCode !== null) throw new Error(`${bin} did not start`)
    await sleep(100)
  }
  return {
    port,
    pid: child.pid,
    async stop() {
      await child.stop()
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

async function main(): Promise<void> {
  ensureTools()
  const scriptDir = mkdtempSync(join(tmpdir(), 'shoal-bench-ab-wrk-'))
  const script = join(scriptDir, 'unique-paths.lua')
  writeFileSync(
    script,
    `local prefix = "ab"
local n = 0
function init(args) prefix = args[1] or prefix end
function request()
  n = n + 1
  return wrk.format("GET", "/64k/" .. prefix .. "-" .. n)
end
`,
  )
  const origin = await startOrigin()
  const a = await startShoal(SHOAL_BIN, origin.port, words(argv['a-args']))
  const b = await startShoal(argv['b-bin'], origin.port, words(argv['b-args']))
  const sides = [
    { name: 'A', node: a, laps: [] as number[] },
    { name: 'B', node: b, laps: [] as number[] },
  ]
  try {
    let run = 0
    const lap = async (side: (typeof sides)[number], seconds: number): Promise<number> => {
      const before = cpuSeconds([side.node.pid])
      const result = await wrk({
        cpu: '1',
        threads: 1,
        connections: 32,
        seconds,
        url: `http://127.0.0.1:${side.node.port}`,
        script: { file: script, args: [`${side.name}${run++}`] },
      })
      const cpu = cpuSeconds([side.node.pid]) - before
      return (cpu * 1e6) / result.requests
    }
    for (const side of sides) await lap(side, WARM)
    for (let i = 0; i < LAPS; i++) {
      // alternate which side goes first, so a trend in the load falls on both
      const order = i % 2 === 0 ? sides : [...sides].reverse()
      const busy = await cpuBusy(250)
      for (const side of order) side.laps.push(await lap(side, SECONDS))
      console.log(
        `lap ${i + 1}: A ${sides[0]!.laps.at(-1)!.toFixed(1)} µs, B ${sides[1]!.laps.at(-1)!.toFixed(1)} µs (CPU busy before: ${busy.map((x) => x.toFixed(2)).join('/')})`,
      )
    }
    const ma = median(sides[0]!.laps)
    const mb = median(sides[1]!.laps)
    // the ratio of each lap's pair, run back to back under the same load, varies less than either side
    const paired = median(sides[1]!.laps.map((b, i) => b / sides[0]!.laps[i]!))
    console.log(
      `median CPU µs per 64 KiB miss: A ${ma.toFixed(1)}, B ${mb.toFixed(1)}, B / A ${(mb / ma).toFixed(3)}; median of the laps' B / A ${paired.toFixed(3)}`,
    )
  } finally {
    await a.stop()
    await b.stop()
    await origin.stop()
    rmSync(scriptDir, { recursive: true, force: true })
  }
}

await main()
