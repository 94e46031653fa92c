/**
 * Small SVG charts for the benchmark report (no dependencies, no DOM): line charts (the
 * simulation's hit ratio against cache size, TTFB distributions as CDFs) and grouped
 * bar charts (the edge node against nginx).
 */

export interface Series {
  name: string
  points: readonly (readonly [number, number])[]
  dashed?: boolean
}

export interface PlotInit {
  title: string
  xLabel: string
  yLabel: string
  series: readonly Series[]
  logX?: boolean
  xMin?: number
  xMax?: number
  yMin?: number
  yMax?: number
  /** Horizontal reference lines, e.g. a goal. */
  hLines?: readonly { y: number; label: string }[]
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf']
const W = 700
const H = 400
const M = { left: 64, right: 200, top: 36, bottom: 48 }

function esc(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;')
}

function fmt(v: number): string {
  if (v === 0) return '0'
  const a = Math.abs(v)
  if (a >= 1e6) return `${Math.round(v / 1e5) / 10}M`
  if (a >= 1000) return `${Math.round(v / 100) / 10}k`
  if (a >= 10) return String(Math.round(v))
  if (a >= 1) return String(Math.round(v * 10) / 10)
  return String(Math.round(v * 1000) / 1000)
}

function ticks(lo: number, hi: number, log: boolean): number[] {
  if (log) {
    const out: number[] = []
    for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
      for (const m of [1, 2, 5]) {
        const v = m * 10 ** e
        if (v >= lo * 0.999 && v <= hi * 1.001) out.push(v)
      }
    }
    return out
  }
  const raw = (hi - lo) / 5
  const step = 10 ** Math.floor(Math.log10(raw))
  const nice = [1, 2, 2.5, 5, 10].map((m) => m * step).find((s) => s >= raw) ?? raw
  const out: number[] = []
  for (let v = Math.ceil(lo / nice) * nice; v <= hi + nice * 1e-9; v += nice)
    out.push(Math.round(v * 1e9) / 1e9)
  return out
}

/** The opening of every plot: the document, its accessible title, a white page, the heading. */
function documentHead(title: string): string[] {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="${esc(title)}" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<title>${esc(title)}</title>`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2 - M.right / 2 + M.left / 2}" y="20" text-anchor="middle" font-size="14">${esc(title)}</text>`,
  ]
}

/** Horizontal grid lines with their labels at `ticks`, both axis lines and the y label. */
function yAxis(out: string[], ticks: readonly number[], fy: (y: number) => number, label: string): void {
  for (const t of ticks) {
    const y = fy(t).toFixed(1)
    out.push(
      `<line x1="${M.left}" x2="${W - M.right}" y1="${y}" y2="${y}" stroke="#eee"/>`,
      `<text x="${M.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${fmt(t)}</text>`,
    )
  }
  out.push(
    `<line x1="${M.left}" x2="${W - M.right}" y1="${H - M.bottom}" y2="${H - M.bottom}" stroke="black"/>`,
    `<line x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${H - M.bottom}" stroke="black"/>`,
    `<text transform="translate(16 ${(M.top + H - M.bottom) / 2}) rotate(-90)" text-anchor="middle">${esc(label)}</text>`,
  )
}

/** An SVG document with one line per series, axes, ticks and a legend. */
export function linePlot(init: PlotInit): string {
  const all = init.series.flatMap((s) => s.points)
  const xs = all.map((p) => p[0])
  const ys = all.map((p) => p[1])
  const xMin = init.xMin ?? Math.min(...xs)
  const xMax = init.xMax ?? Math.max(...xs)
  const yMin = init.yMin ?? Math.min(0, ...ys)
  const yMax = init.yMax ?? Math.max(...ys)
  const log = init.logX === true
  const fx = (x: number) => {
    const t = log ? Math.log(x / xMin) / Math.log(xMax / xMin) : (x - xMin) / (xMax - xMin || 1)
    return M.left + t * (W - M.left - M.right)
  }
  const fy = (y: number) => H - M.bottom - ((y - yMin) / (yMax - yMin || 1)) * (H - M.top - M.bottom)
  const out = documentHead(init.title)
  for (const t of ticks(xMin, xMax, log)) {
    const x = fx(t).toFixed(1)
    out.push(
      `<line x1="${x}" x2="${x}" y1="${M.top}" y2="${H - M.bottom}" stroke="#eee"/>`,
      `<text x="${x}" y="${H - M.bottom + 16}" text-anchor="middle">${fmt(t)}</text>`,
    )
  }
  yAxis(out, ticks(yMin, yMax, false), fy, init.yLabel)
  out.push(
    `<text x="${(M.left + W - M.right) / 2}" y="${H - 10}" text-anchor="middle">${esc(init.xLabel)}</text>`,
  )
  for (const h of init.hLines ?? []) {
    const y = fy(h.y).toFixed(1)
    out.push(
      `<line x1="${M.left}" x2="${W - M.right}" y1="${y}" y2="${y}" stroke="#888" stroke-dasharray="2 3"/>`,
      `<text x="${W - M.right - 4}" y="${Number(y) - 4}" text-anchor="end" fill="#555">${esc(h.label)}</text>`,
    )
  }
  init.series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!
    const d = s.points
      .filter((p) => !log || p[0] > 0)
      .map((p, j) => `${j === 0 ? 'M' : 'L'}${fx(p[0]).toFixed(1)},${fy(p[1]).toFixed(1)}`)
      .join(' ')
    out.push(
      `<path d="${d}" fill="none" stroke="${color}" stroke-width="2"${s.dashed === true ? ' stroke-dasharray="6 4"' : ''}/>`,
    )
    const ly = M.top + 8 + i * 18
    out.push(
      `<line x1="${W - M.right + 10}" x2="${W - M.right + 34}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"${s.dashed === true ? ' stroke-dasharray="6 4"' : ''}/>`,
      `<text x="${W - M.right + 40}" y="${ly}" dominant-baseline="middle">${esc(s.name)}</text>`,
    )
  })
  out.push('</svg>')
  return `${out.join('\n')}\n`
}

/** Points of the empirical CDF of sorted samples, thinned to at most `max` points. */
export function cdfPoints(sorted: ArrayLike<number>, max = 200): [number, number][] {
  const n = sorted.length
  if (n === 0) return []
  const out: [number, number][] = []
  const step = Math.max(1, Math.floor(n / max))
  for (let i = 0; i < n; i += step) out.push([sorted[i]!, (i + 1) / n])
  out.push([sorted[n - 1]!, 1])
  return out
}

export interface BarPlotInit {
  title: string
  yLabel: string
  /** Group labels along the x axis. */
  groups: readonly string[]
  /** One bar per series in each group; `undefined` leaves a gap. */
  series: readonly { name: string; values: readonly (number | undefined)[] }[]
  /** A log-scale y axis (for groups of very different sizes). */
  logY?: boolean
}

/** An SVG document with grouped bars, each labelled with its value, and a legend. */
export function barPlot(init: BarPlotInit): string {
  const values = init.series.flatMap((s) => s.values.filter((v): v is number => v !== undefined && v > 0))
  const log = init.logY === true
  const yMax = Math.max(1, ...values)
  const yMin = log ? 10 ** Math.floor(Math.log10(Math.min(yMax, ...values))) : 0
  const top = log ? 10 ** Math.ceil(Math.log10(yMax)) : yMax * 1.1
  const fy = (y: number) => {
    const t = log ? Math.log(Math.max(y, yMin) / yMin) / Math.log(top / yMin) : (y - yMin) / (top - yMin || 1)
    return H - M.bottom - t * (H - M.top - M.bottom)
  }
  const plotW = W - M.left - M.right
  const groupW = plotW / Math.max(1, init.groups.length)
  const barW = (groupW * 0.8) / Math.max(1, init.series.length)
  const out = documentHead(init.title)
  const yTicks = log
    ? Array.from({ length: Math.round(Math.log10(top / yMin)) + 1 }, (_, i) => yMin * 10 ** i)
    : ticks(yMin, top, false)
  yAxis(out, yTicks, fy, init.yLabel)
  init.groups.forEach((g, gi) => {
    const x0 = M.left + gi * groupW + groupW * 0.1
    out.push(
      `<text x="${(x0 + groupW * 0.4).toFixed(1)}" y="${H - M.bottom + 16}" text-anchor="middle">${esc(g)}</text>`,
    )
    init.series.forEach((s, si) => {
      const v = s.values[gi]
      if (v === undefined || v <= 0) return
      const x = x0 + si * barW
      const y = fy(v)
      out.push(
        `<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${(barW - 2).toFixed(1)}" height="${(H - M.bottom - y).toFixed(1)}" fill="${COLORS[si % COLORS.length]!}"/>`,
        `<text x="${(x + barW / 2 - 1).toFixed(1)}" y="${(y - 3).toFixed(1)}" text-anchor="middle" font-size="10">${fmt(v)}</text>`,
      )
    })
  })
  init.series.forEach((s, i) => {
    const ly = M.top + 8 + i * 18
    out.push(
      `<rect x="${W - M.right + 10}" y="${ly - 6}" width="24" height="12" fill="${COLORS[i % COLORS.length]!}"/>`,
      `<text x="${W - M.right + 40}" y="${ly}" dominant-baseline="middle">${esc(s.name)}</text>`,
    )
  })
  out.push('</svg>')
  return `${out.join('\n')}\n`
}
