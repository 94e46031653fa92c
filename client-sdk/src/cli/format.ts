/** Text output of the `shoal` CLI: sizes and tables (`cli-table3`). */
import Table from 'cli-table3'

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB']

/**
 * @example
 * formatBytes(1536) // '1.5 KiB'
 */
export function formatBytes(n: number): string {
  let value = n
  let unit = 0
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024
    unit++
  }
  return unit === 0 ? `${n} B` : `${value.toFixed(value < 10 ? 1 : 0)} ${UNITS[unit]}`
}

/** A table with a header row, as text (no colours, so it reads the same piped). */
export function renderTable(head: string[], rows: (string | number)[][]): string {
  const table = new Table({
    head,
    style: { head: [], border: [] },
    // no rule between body rows: one line per row
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
  })
  for (const row of rows) table.push(row.map(String))
  return table.toString()
}

/** A node's base URL without scheme and trailing slash, for tables. */
export function hostOf(url: string): string {
  return url.replace(/^https?:\/\//, '').replace(/\/$/, '')
}
