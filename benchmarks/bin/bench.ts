#!/usr/bin/env node
/**
 * `npm run bench` runs every benchmark; `npm run bench -- <name> [<name>…] [--flag…]` runs
 * some, handing every flag (e.g. `--quick`) to each benchmark it runs;
 * `npm run bench -- report` runs none and only regenerates the report.
 * Each benchmark is `benchmarks/<name>/run.ts`, a script that writes
 * `benchmarks/results/<name>.json`. After the runs, docs/benchmarks.md is regenerated
 * from every recorded result.
 */
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { writeReport } from '../src/report.ts'

const ALL = ['protocol', 'edge', 'tracker', 'sdk', 'settlement', 'relay', 'mesh', 'sim']
const root = join(dirname(fileURLToPath(import.meta.url)), '..')

const asked = process.argv.slice(2).filter((a) => !a.startsWith('-') && a !== 'report')
const reportOnly = process.argv.slice(2).includes('report') && asked.length === 0
/** Flags are passed through to every benchmark (`--quick`: a short smoke run). */
const flags = process.argv.slice(2).filter((a) => a.startsWith('-'))
const unknown = asked.filter((n) => !ALL.includes(n))
if (unknown.length > 0) {
  console.error(`unknown benchmark ${unknown.join(', ')}; known: ${ALL.join(', ')}`)
  process.exit(2)
}
const names = (reportOnly ? [] : asked.length > 0 ? asked : ALL).filter((name) => {
  const present = existsSync(join(root, name, 'run.ts'))
  if (!present) console.log(`- ${name}: not written yet, skipped`)
  return present
})

let failed = 0
for (const name of names) {
  console.log(`\n=== bench ${name} ===`)
  const run = spawnSync(
    process.execPath,
    ['--disable-warning=ExperimentalWarning', join(root, name, 'run.ts'), ...flags],
    { stdio: 'inherit' },
  )
  if (run.status !== 0) {
    failed++
    console.error(`bench ${name} failed (exit ${run.status ?? run.signal})`)
  }
}
await writeReport()
process.exit(failed > 0 ? 1 : 0)
