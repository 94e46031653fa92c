// The node dashboard's script: reads /dashboard/data.json every few seconds and draws
// the figures and an SVG bar chart. No library and no request but data.json (CSP).
const REFRESH_MS = 3000
const SVG = 'http://www.w3.org/2000/svg'
const KNOWN = new Set(['schema', 'generatedAt', 'node', 'traffic', 'cache', 'peers', 'receipts', 'earnings'])
const UNITS = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB']

/** 999 → "999 B", 1536 → "1.5 KiB". */
export function formatBytes(n) {
  if (n < 1024) return `${n} B`
  let v = n
  let unit = -1
  while (v >= 1024 && unit < UNITS.length - 1) {
    v /= 1024
    unit++
  }
  return `${v.toFixed(1)} ${UNITS[unit]}`
}

/** 0.5 → "50.0 %", null → "—". */
export function formatRatio(r) {
  return r === null || r === undefined ? '—' : `${(r * 100).toFixed(1)} %`
}

export function formatCount(n) {
  return n === null || n === undefined ? '—' : Number(n).toLocaleString('en-US')
}

function formatDuration(seconds) {
  const d = Math.floor(seconds / 86400)
  const h = Math.floor((seconds % 86400) / 3600)
  const m = Math.floor((seconds % 3600) / 60)
  const s = seconds % 60
  return d > 0 ? `${d} d ${h} h` : h > 0 ? `${h} h ${m} min` : m > 0 ? `${m} min ${s} s` : `${s} s`
}

const $ = (id) => document.getElementById(id)

function show(id, text, value) {
  const el = $(id)
  el.textContent = text
  if (value !== undefined) el.dataset.value = String(value)
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

function drawTraffic(traffic) {
  const svg = $('traffic-chart')
  for (const child of [...svg.children])
    if (child.tagName !== 'title' && child.tagName !== 'desc') child.remove()
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
    const tip = svgEl('title', {})
    tip.textContent = `${new Date(p.t).toLocaleTimeString('en-GB')}: ${formatBytes(p.value)}`
    bar.append(tip)
    svg.append(bar)
  })
  const label = svgEl('text', { x: 4, y: 12 })
  label.textContent = `peak ${formatBytes(peak)}`
  svg.append(label)
  $('traffic-desc').textContent =
    peak === 0
      ? 'Nothing served in the last hour.'
      : `${formatBytes(traffic.windowBytes)} served in the last hour; peak ${formatBytes(peak)} per ${traffic.bucketSeconds} s.`
  show('peak-bytes', formatBytes(peak), peak)
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

function render(d) {
  show('node-address', d.node.address ?? 'no key', d.node.address ?? '')
  show('uptime', formatDuration(d.node.uptimeSeconds), d.node.uptimeSeconds)
  const updated = $('updated')
  updated.textContent = new Date(d.generatedAt).toLocaleTimeString('en-GB')
  updated.dateTime = new Date(d.generatedAt).toISOString()

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
    const meter = el('meter', formatRatio(use), {
      min: 0,
      max: 1,
      value: use,
      'aria-label': `${tier.tier} tier use`,
    })
    const cells = [
      el('th', tier.tier, { scope: 'row' }),
      el('td', formatBytes(tier.bytes), { 'data-value': tier.bytes, 'data-field': 'bytes' }),
      el('td', formatBytes(tier.maxBytes), { 'data-value': tier.maxBytes, 'data-field': 'maxBytes' }),
      el('td', formatCount(tier.objects), { 'data-value': tier.objects, 'data-field': 'objects' }),
      el('td'),
    ]
    cells[4].append(meter, ` ${formatRatio(use)}`)
    row.append(...cells)
    body.append(row)
  }

  show('peers', d.peers === null ? 'not available yet' : formatCount(d.peers.count), d.peers?.count ?? '')
  $('peers').classList.toggle('empty', d.peers === null)
  fillList($('receipts'), d.receipts)
  fillList($('earnings'), d.earnings)

  const more = $('more')
  more.replaceChildren()
  for (const [name, section] of Object.entries(d)) {
    if (KNOWN.has(name)) continue
    const id = `section-${name.replace(/[^a-zA-Z0-9_-]/g, '-')}`
    const h = el('h2', name, { id: `${id}-heading` })
    const dl = el('dl', undefined, { class: 'figures', id, 'aria-labelledby': `${id}-heading` })
    fillList(dl, typeof section === 'object' ? section : { value: section })
    more.append(h, dl)
  }
  document.body.dataset.generatedAt = String(d.generatedAt)
}

async function refresh() {
  try {
    const res = await fetch('/dashboard/data.json', { cache: 'no-store' })
    if (!res.ok) throw new Error(`the node answered ${res.status}`)
    render(await res.json())
    $('status').textContent = ''
  } catch (err) {
    $('status').textContent = `Could not load the figures: ${err.message}. Retrying.`
  } finally {
    setTimeout(refresh, REFRESH_MS)
  }
}

if (typeof document !== 'undefined') refresh()
