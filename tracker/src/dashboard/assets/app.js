// The network dashboard's script: reads /dashboard/data.json every few seconds and draws
// the totals, an SVG chart of scores and the node table. No library and no request but
// data.json (CSP).
const REFRESH_MS = 3000
const SVG = 'http://www.w3.org/2000/svg'
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

export const formatScore = (v) => (v === null || v === undefined ? '—' : Number(v).toFixed(3))
export const formatCount = (n) => (n === null || n === undefined ? '—' : Number(n).toLocaleString('en-US'))
export const formatMs = (v) => (v === null || v === undefined ? '—' : `${Math.round(v)} ms`)
/** 1764000000000 → "2025-11-24 16:00 UTC". */
export const formatTime = (t) => `${new Date(t).toISOString().slice(0, 16).replace('T', ' ')} UTC`
/** "0x1234…cdef". */
export const shortAddress = (a) => `${a.slice(0, 6)}…${a.slice(-4)}`

function formatDuration(seconds) {
  const d = Math.floor(seconds / 86400)
  const h = Math.floor((seconds % 86400) / 3600)
  const m = Math.floor((seconds % 3600) / 60)
  const s = Math.floor(seconds % 60)
  return d > 0 ? `${d} d ${h} h` : h > 0 ? `${h} h ${m} min` : m > 0 ? `${m} min ${s} s` : `${s} s`
}

const $ = (id) => document.getElementById(id)

function show(id, text, value) {
  const node = $(id)
  node.textContent = text
  if (value !== undefined) node.dataset.value = String(value)
}

function el(name, text, attrs = {}) {
  const node = document.createElement(name)
  if (text !== undefined) node.textContent = text
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v))
  return node
}

function svgEl(name, attrs) {
  const node = document.createElementNS(SVG, name)
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v))
  return node
}

function fillList(dl, section) {
  dl.replaceChildren()
  if (section === null || section === undefined) {
    const row = el('div')
    row.append(el('dt', 'Status'), el('dd', 'not available yet', { class: 'empty' }))
    dl.append(row)
    return
  }
  for (const [key, value] of Object.entries(section)) {
    const row = el('div')
    const text =
      typeof value === 'number'
        ? formatCount(value)
        : typeof value === 'string'
          ? value
          : JSON.stringify(value)
    row.append(el('dt', key), el('dd', text, { 'data-key': key }))
    dl.append(row)
  }
}

function drawScores(nodes) {
  const svg = $('score-chart')
  for (const child of [...svg.children])
    if (child.tagName !== 'title' && child.tagName !== 'desc') child.remove()
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
  const updated = $('updated')
  updated.textContent = new Date(d.generatedAt).toLocaleTimeString('en-GB')
  updated.dateTime = new Date(d.generatedAt).toISOString()

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
    row.append(el('td', 'No nodes registered yet.', { colspan: 11, class: 'empty' }))
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

  const more = $('more')
  more.replaceChildren()
  for (const [name, section] of Object.entries(d)) {
    if (KNOWN.has(name)) continue
    const id = `section-${name.replace(/[^a-zA-Z0-9_-]/g, '-')}`
    const heading = el('h2', name, { id: `${id}-heading` })
    const dl = el('dl', undefined, { class: 'figures', id, 'aria-labelledby': `${id}-heading` })
    fillList(dl, typeof section === 'object' ? section : { value: section })
    more.append(heading, dl)
  }
  document.body.dataset.generatedAt = String(d.generatedAt)
}

async function refresh() {
  try {
    const res = await fetch('/dashboard/data.json', { cache: 'no-store' })
    if (!res.ok) throw new Error(`the tracker answered ${res.status}`)
    render(await res.json())
    $('status').textContent = ''
  } catch (err) {
    $('status').textContent = `Could not load the figures: ${err.message}. Retrying.`
  } finally {
    setTimeout(refresh, REFRESH_MS)
  }
}

if (typeof document !== 'undefined') refresh()
