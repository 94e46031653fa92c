import { mkdir, writeFile } from 'node:fs/promises'
import os from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** One recorded figure: `value` against the issue's `goal`, with the raw numbers behind it. */
export interface Metric {
  value: number
  unit: string
  goal?: number
  /** `min` when the figure must reach the goal from below (default), `max` when it must stay under it. */
  goalKind?: 'min' | 'max' | 'equal'
  detail?: Record<string, unknown>
}

export interface BenchResult {
  name: string
  date: string
  machine: { cpus: number; model: string; node: string; memGiB: number }
  metrics: Record<string, Metric>
}

/** Where `benchmarks/results/<name>.json` lives. */
export const RESULTS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'results')

export function machineInfo(): BenchResult['machine'] {
  const cpus = os.cpus()
  return {
    cpus: cpus.length,
    model: cpus[0]?.model.trim() ?? 'unknown',
    node: process.version,
    memGiB: Math.round(os.totalmem() / 2 ** 30),
  }
}

/** Writes `benchmarks/results/<name>.json` and returns the record. */
export async function writeResult(name: string, metrics: Record<string, Metric>): Promise<BenchResult> {
  const result: BenchResult = { name, date: new Date().toISOString(), machine: machineInfo(), metrics }
  await mkdir(RESULTS_DIR, { recursive: true })
  await writeFile(join(RESULTS_DIR, `${name}.json`), `${JSON.stringify(result, null, 2)}\n`)
  return result
}

/** Median of a non-empty list. */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError('median of an empty list')
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** The q-quantile (0..1) of a non-empty list, nearest-rank. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) throw new RangeError('quantile of an empty list')
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
  return sorted[rank]!
}

/** Whether a metric meets its goal (true when it has none). */
export function meetsGoal(metric: Metric): boolean {
  if (metric.goal === undefined) return true
  switch (metric.goalKind ?? 'min') {
    case 'min':
      return metric.value >= metric.goal
    case 'max':
      return metric.value <= metric.goal
    case 'equal':
      return metric.value === metric.goal
  }
}

/** Prints a result as a small table on stdout. */
export function printResult(result: BenchResult): void {
  console.log(
    `\n${result.name} — ${result.machine.model}, ${result.machine.cpus} cpus, node ${result.machine.node}`,
  )
  for (const [key, m] of Object.entries(result.metrics)) {
    const goal =
      m.goal === undefined
        ? ''
        : ` (goal ${m.goalKind === 'max' ? '≤' : m.goalKind === 'equal' ? '=' : '≥'} ${m.goal})`
    console.log(`  ${meetsGoal(m) ? '✓' : '✗'} ${key}: ${round(m.value)} ${m.unit}${goal}`)
  }
}

export function round(value: number, digits = 3): number {
  const f = 10 ** digits
  return Math.round(value * f) / f
}
