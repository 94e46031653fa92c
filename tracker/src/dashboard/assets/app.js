// The network dashboard's script: draws /dashboard/data.json (totals, an SVG chart of
// nodes by score, the node table, epochs, payouts, sections other parts add) and
// refreshes it live.
import {
  $,
  clearChart,
  el,
  fillList,
  formatCount,
  formatDuration,
  formatMs,
  formatScore,
  formatTime,
  renderMore,
  show,
  startRefresh,
  svgEl,
} from './kit.js'

const KNOWN = new Set([
  'schema',
  'generatedAt',
  'tracker',
  'totals',
  'formula',
  'nodes',
  'truncated',
  'epochs',
  'payouts',
])
const PARTS = ['uptime', 'success', 'latency', 'throughput', 'integrity']

/** "0x1234…cdef". */
export const shortAddress = (a) => `${a.slice(0, 6)}…${a.slice(-4)}`

function drawScores(nodes) {
  const svg = $('score-chart')
  clearChart(svg)
  const bins = new Array(10).fill(0)
  for (const n of nodes) bins[Math.min(9, Math.floor(n.score * 10))]++
  const peak = Math.max(...bins)
  const [w, h, top] = [720, 160, 16]
  const step = w / bins.length
  bins.forEach((count, i) => {
    if (count === 0) return
    const bh = ((h - top) * count) / peak
    const bar = svgEl('rect', { class: 'bar', x: i * step + 2, y: h - bh, width: step - 4, height: bh })
    const tip = svgEl('title', {})
    tip.textContent = `${count} node${count === 1 ? '' : 's'} scoring ${(i / 10).toFixed(1)}–${((i + 1) / 10).toFixed(1)}`
    bar.append(tip)
    svg.append(bar)
    const label = svgEl('text', { x: i * step + step / 2 - 4, y: h - bh - 3 })
    label.textContent = String(count)
    svg.append(label)
  })
  $('score-desc').textContent =
    nodes.length === 0
      ? 'No nodes yet.'
      : bins
          .map((c, i) =>
            c === 0 ? '' : `${c} between ${(i / 10).toFixed(1)} and ${((i + 1) / 10).toFixed(1)}`,
          )
          .filter(Boolean)
          .join('; ')
}

function render(d) {
  show('issuer', d.tracker.issuer, d.tracker.issuer)
  show('uptime', formatDuration(d.tracker.uptimeSeconds), d.tracker.uptimeSeconds)

  const t = d.totals
  show('total-nodes', formatCount(t.nodes), t.nodes)
  show('total-eligible', formatCount(t.eligible), t.eligible)
  show('mean-score', formatScore(t.meanScore), t.meanScore ?? '')
  show('total-regions', formatCount(Object.keys(t.regions).length), Object.keys(t.regions).length)
  show('total-sites', formatCount(t.sites), t.sites)
  const byStatus = $('by-status')
  byStatus.replaceChildren()
  for (const [status, n] of Object.entries(t.byStatus)) {
    const row = el('div')
    row.append(el('dt', status), el('dd', formatCount(n), { 'data-status': status, 'data-value': n }))
    byStatus.append(row)
  }
  drawScores(d.nodes)

  show('formula', d.formula)
  $('truncated').textContent = d.truncated ? ` (the first ${d.nodes.length} of ${t.nodes})` : ''
  const body = $('nodes').tBodies[0]
  body.replaceChildren()
  for (const n of d.nodes) {
    const row = el('tr', undefined, { 'data-node': n.node })
    const name = el('th', undefined, { scope: 'row' })
    name.append(el('code', shortAddress(n.node), { title: n.node }))
    const score = el('td', undefined, { class: 'num', 'data-field': 'score', 'data-value': n.score })
    score.append(
      el('meter', undefined, { min: 0, max: 1, value: n.score, 'aria-hidden': 'true' }),
      ` ${formatScore(n.score)}`,
    )
    row.append(
      name,
      el('td', n.region, { 'data-field': 'region' }),
      el('td', n.status, { 'data-field': 'status', class: `status-${n.status}` }),
      // how clients reach it: its URL (the probes answer), only the mesh, or not at all
      el('td', n.reachability ?? '—', { 'data-field': 'reachability' }),
      score,
      ...PARTS.map((p) =>
        el('td', formatScore(n.components[p]), {
          class: 'num',
          'data-field': p,
          'data-value': n.components[p],
        }),
      ),
      el('td', formatMs(n.latencyMs), { class: 'num', 'data-field': 'latencyMs' }),
      el('td', formatCount(n.integrityFailures), { class: 'num', 'data-field': 'integrityFailures' }),
    )
    body.append(row)
  }
  if (d.nodes.length === 0) {
    const row = el('tr')
    row.append(el('td', 'No nodes registered yet.', { colspan: 12, class: 'empty' }))
    body.append(row)
  }

  const e = d.epochs
  show('epoch-number', formatCount(e.current.number), e.current.number)
  show('epoch-start', formatTime(e.current.startsAt), e.current.startsAt)
  $('epoch-start').dateTime = new Date(e.current.startsAt).toISOString()
  show('epoch-end', formatTime(e.current.endsAt), e.current.endsAt)
  $('epoch-end').dateTime = new Date(e.current.endsAt).toISOString()
  show('epoch-length', formatDuration(e.lengthMs / 1000), e.lengthMs)
  fillList($('settled'), e.settled)
  fillList($('payouts'), d.payouts)

  renderMore($('more'), d, KNOWN)
}

startRefresh('/dashboard/data.json', render, 'tracker')
