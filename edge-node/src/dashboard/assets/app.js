// The node dashboard's script: draws /dashboard/data.json (figures, an SVG bar chart of
// bytes served, cache tiers, sections other parts add) and refreshes it live.
import {
  $,
  clearChart,
  el,
  fillList,
  formatBytes,
  formatCount,
  formatDuration,
  formatRatio,
  renderMore,
  show,
  startRefresh,
  svgEl,
} from './kit.js'

const KNOWN = new Set(['schema', 'generatedAt', 'node', 'traffic', 'cache', 'peers', 'receipts', 'earnings'])

function drawTraffic(traffic) {
  const svg = $('traffic-chart')
  clearChart(svg)
  const points = traffic.points
  const peak = points.reduce((a, p) => Math.max(a, p.value), 0)
  const [w, h, top] = [720, 200, 16]
  const step = w / Math.max(points.length, 1)
  for (const frac of [0.5, 1]) {
    const y = h - (h - top) * frac
    svg.append(svgEl('line', { class: 'grid', x1: 0, x2: w, y1: y, y2: y }))
  }
  points.forEach((p, i) => {
    if (p.value === 0) return
    const bh = Math.max(1, ((h - top) * p.value) / peak)
    const bar = svgEl('rect', {
      class: 'bar',
      x: i * step,
      y: h - bh,
      width: Math.max(step - 0.5, 0.5),
      height: bh,
    })
    bar.append(svgEl('title', {}, `${new Date(p.t).toLocaleTimeString('en-GB')}: ${formatBytes(p.value)}`))
    svg.append(bar)
  })
  svg.append(svgEl('text', { x: 4, y: 12 }, `peak ${formatBytes(peak)}`))
  const span = Math.round((points.length * traffic.bucketSeconds) / 60)
  svg.append(svgEl('text', { x: 4, y: h - 4 }, `${span} min ago`))
  svg.append(svgEl('text', { x: w - 4, y: h - 4, 'text-anchor': 'end' }, 'now'))
  $('traffic-desc').textContent =
    peak === 0
      ? 'Nothing served in the last hour.'
      : `${formatBytes(traffic.windowBytes)} served in the last hour; peak ${formatBytes(peak)} per ${traffic.bucketSeconds} s.`
  show('peak-bytes', formatBytes(peak), peak)
}

function render(d) {
  show('node-address', d.node.address ?? 'no key', d.node.address ?? '')
  show('uptime', formatDuration(d.node.uptimeSeconds), d.node.uptimeSeconds)

  const t = d.traffic
  show('total-bytes', formatBytes(t.totalBytes), t.totalBytes)
  show('window-bytes', formatBytes(t.windowBytes), t.windowBytes)
  const last = t.points.at(-1)?.value ?? 0
  show('last-bytes', formatBytes(last), last)
  show('bucket-seconds', String(t.bucketSeconds))
  show('bucket-caption', String(t.bucketSeconds))
  drawTraffic(t)

  const c = d.cache
  show('hit-ratio', formatRatio(c.hitRatio), c.hitRatio ?? '')
  show('cache-hits', formatCount(c.hits), c.hits)
  show('cache-misses', formatCount(c.misses), c.misses)
  const body = $('tiers').tBodies[0]
  body.replaceChildren()
  for (const tier of c.tiers) {
    const row = el('tr', undefined, { 'data-tier': tier.tier })
    const use = tier.maxBytes > 0 ? tier.bytes / tier.maxBytes : 0
    const meter = el('meter', undefined, { min: 0, max: 1, value: use, 'aria-hidden': 'true' })
    const cells = [
      el('th', tier.tier, { scope: 'row' }),
      el('td', formatBytes(tier.bytes), { 'data-value': tier.bytes, 'data-field': 'bytes' }),
      el('td', formatBytes(tier.maxBytes), { 'data-value': tier.maxBytes, 'data-field': 'maxBytes' }),
      el('td', formatCount(tier.objects), { 'data-value': tier.objects, 'data-field': 'objects' }),
      el('td', undefined, { 'data-field': 'use' }),
    ]
    cells[4].append(meter, ` ${formatRatio(use)}`)
    row.append(...cells)
    body.append(row)
  }

  show('peers', d.peers === null ? 'not available yet' : formatCount(d.peers.count), d.peers?.count ?? '')
  $('peers').classList.toggle('empty', d.peers === null)
  fillList($('receipts'), d.receipts)
  fillList($('earnings'), d.earnings)
  renderMore($('more'), d, KNOWN)
}

startRefresh('/dashboard/data.json', render, 'node')
