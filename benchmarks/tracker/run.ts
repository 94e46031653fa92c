/**
 * `npm run bench -- tracker`: the tracker's figures (../../../shared/BENCHMARKS.md).
 *
 * The run is a list of suites, each an async function returning metrics; they run in
 * order in one process and their metrics are written together to
 * `benchmarks/results/tracker.json`.
 * - `selection` (./selection.ts): in-process selection at 10k, 100k and 1M nodes against a
 *   full-scan baseline, memory per node, build/restore time, stability and load spread.
 * - `http` (./http.ts): `select_http_rps` and `heartbeats_per_s` over real HTTP against a
 *   tracker process on CPU 0, wrk on CPU 1, plain node:http as the baseline.
 *
 * Memory figures need `global.gc`: when it is missing the script re-runs itself under
 * `--expose-gc` (same Node binary, same flags) and exits with the child's status.
 * `node benchmarks/tracker/run.ts selection` runs only the named suites and keeps the other
 * suites' metrics from the last recorded `tracker.json`.
 */
import { spawnSync } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type BenchResult, type Metric, printResult, RESULTS_DIR, writeResult } from '../src/results.ts'
import { httpSuite } from './http.ts'
import { selectionSuite } from './selection.ts'

const SUITES: Record<string, () => Promise<Record<string, Metric>>> = {
  selection: selectionSuite,
  http: httpSuite,
}

if (typeof globalThis.gc !== 'function') {
  const child = spawnSync(
    process.execPath,
    [...process.execArgv, '--expose-gc', fileURLToPath(import.meta.url), ...process.argv.slice(2)],
    { stdio: 'inherit' },
  )
  process.exit(child.status ?? 1)
}

const asked = process.argv.slice(2).filter((a) => !a.startsWith('-'))
const unknown = asked.filter((name) => !(name in SUITES))
if (unknown.length > 0) {
  console.error(`unknown tracker suite ${unknown.join(', ')}; known: ${Object.keys(SUITES).join(', ')}`)
  process.exit(2)
}
// A partial run keeps the other suites' last recorded metrics.
const metrics: Record<string, Metric> = {}
if (asked.length > 0) {
  try {
    const previous = JSON.parse(await readFile(join(RESULTS_DIR, 'tracker.json'), 'utf8')) as BenchResult
    Object.assign(metrics, previous.metrics)
  } catch {
    // no previous result
  }
}
for (const [name, suite] of Object.entries(SUITES)) {
  if (asked.length > 0 && !asked.includes(name)) continue
  console.log(`-- tracker/${name}`)
  Object.assign(metrics, await suite())
}
printResult(await writeResult('tracker', metrics))
