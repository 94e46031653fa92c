// What both dashboards' scripts share: formatting, DOM and SVG helpers, the generic
// "section" list and the live refresh loop. Plain ES module, no dependency; the pages
// load it as /dashboard/kit.js (same origin, allowed by their CSP).
const SVG = 'http://www.w3.org/2000/svg'
const UNITS = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB']
/** How often the pages fetch data.json again. */
export const REFRESH_MS = 3000

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
export const formatRatio = (r) => (r === null || r === undefined ? '—' : `${(r * 100).toFixed(1)} %`)
/** 1234 → "1,234", null → "—". */
export const formatCount = (n) => (n === null || n === undefined ? '—' : Number(n).toLocaleString('en-US'))
/** 0.12345 → "0.123", null → "—". */
export const formatScore = (v) => (v === null || v === undefined ? '—' : Number(v).toFixed(3))
/** 15.6 → "16 ms", null → "—". */
export const formatMs = (v) => (v === null || v === undefined ? '—' : `${Math.round(v)} ms`)
/** 1764000000000 → "2025-11-24 16:00 UTC". */
export const formatTime = (t) => `${new Date(t).toISOString().slice(0, 16).replace('T', ' ')} UTC`
/** 3725 → "1 h 2 min". */
export function formatDuration(seconds) {
  const d = Math.floor(seconds / 86400)
  const h = Math.floor((seconds % 86400) / 3600)
  const m = Math.floor((seconds % 3600) / 60)
  const s = Math.floor(seconds % 60)
  return d > 0 ? `${d} d ${h} h` : h > 0 ? `${h} h ${m} min` : m > 0 ? `${m} min ${s} s` : `${s} s`
}

export const $ = (id) => document.getElementById(id)

/** Sets an element's text, and its exact figure in `data-value`. */
export function show(id, text, value) {
  const node = $(id)
  node.textContent = text
  if (value !== undefined) node.dataset.value = String(value)
}

export function el(name, text, attrs = {}) {
  const node = document.createElement(name)
  if (text !== undefined) node.textContent = text
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v))
  return node
}

export function svgEl(name, attrs, text) {
  const node = document.createElementNS(SVG, name)
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v))
  if (text !== undefined) node.textContent = text
  return node
}

/** Removes what a chart drew, keeping its accessible `<title>` and `<desc>`. */
export function clearChart(svg) {
  for (const child of [...svg.children])
    if (child.tagName !== 'title' && child.tagName !== 'desc') child.remove()
}

/** Fills a `<dl>` with a section's fields, or "not available yet" for `null`. */
export function fillList(dl, section) {
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

/** Draws every top-level field of `data` not in `known` as its own section in `container`. */
export function renderMore(container, data, known) {
  container.replaceChildren()
  for (const [name, section] of Object.entries(data)) {
    if (known.has(name)) continue
    const id = `section-${name.replace(/[^a-zA-Z0-9_-]/g, '-')}`
    const heading = el('h2', name, { id: `${id}-heading` })
    const dl = el('dl', undefined, { class: 'figures', id, 'aria-labelledby': `${id}-heading` })
    fillList(dl, typeof section === 'object' ? section : { value: section })
    container.append(heading, dl)
  }
}

/** Shows when the figures were made (the `#updated` time). */
export function showUpdated(generatedAt) {
  const updated = $('updated')
  updated.textContent = new Date(generatedAt).toLocaleTimeString('en-GB')
  updated.dateTime = new Date(generatedAt).toISOString()
}

/**
 * Fetches `url` now and every `REFRESH_MS` after each answer, hands the JSON to
 * `render`, then marks `body[data-generated-at]`; a failure is said in `#status`.
 */
export function startRefresh(url, render, who) {
  const refresh = async () => {
    try {
      const res = await fetch(url, { cache: 'no-store' })
      if (!res.ok) throw new Error(`the ${who} answered ${res.status}`)
      const data = await res.json()
      render(data)
      showUpdated(data.generatedAt)
      document.body.dataset.generatedAt = String(data.generatedAt)
      $('status').textContent = ''
    } catch (err) {
      $('status').textContent = `Could not load the figures: ${err.message}. Retrying.`
    } finally {
      setTimeout(refresh, REFRESH_MS)
    }
  }
  refresh()
}
