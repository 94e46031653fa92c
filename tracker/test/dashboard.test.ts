/**
 * The network dashboard: data.json against the API, and the page in headless Chromium
 * showing exactly the figures of the data.json answer it drew, under a strict CSP with
 * no request but its own.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DASHBOARD_CSP } from '@shoal/dashboard-kit'
// the page's own formatting: the figures must read exactly this
import { formatCount, formatMs, formatScore, formatTime } from '@shoal/dashboard-kit/kit.js'
import type { Page } from 'playwright-core'
import { Registry } from 'prom-client'
import { request } from 'undici'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { accessibilityViolations, type PageWatch, useBrowser, watchPage } from '../../test-support/browser.ts'
import { createSqliteStore, createTracker, type Tracker, type TrackerDashboardData } from '../src/index.ts'
import {
  makeContent,
  publishSite,
  registerNode,
  startTestNode,
  type TestNode,
  waitFor,
} from './helpers/test-node.ts'
import { FAST } from './helpers/tracker.ts'

const PARTS = ['uptime', 'success', 'latency', 'throughput', 'integrity'] as const

/** Everything the page shows, read in one synchronous pass (no refresh can land in between). */
interface Shown {
  generatedAt: string
  totals: Record<string, string>
  byStatus: Record<string, string>
  rows: Record<string, Record<string, string>>
  epoch: Record<string, string>
  settled: string
  payouts: Record<string, string>
  bars: number
}

function readPage(page: Page): Promise<Shown> {
  return page.evaluate(() => {
    const text = (id: string) => document.getElementById(id)?.textContent ?? ''
    const rows: Record<string, Record<string, string>> = {}
    for (const tr of document.querySelectorAll<HTMLTableRowElement>('#nodes tbody tr[data-node]')) {
      const cells: Record<string, string> = { short: tr.querySelector('th code')?.textContent ?? '' }
      for (const td of tr.querySelectorAll<HTMLTableCellElement>('td[data-field]'))
        cells[td.dataset.field!] = td.textContent!.trim()
      rows[tr.dataset.node!] = cells
    }
    const list = (id: string) =>
      Object.fromEntries(
        [...document.querySelectorAll<HTMLElement>(`#${id} dd[data-key]`)].map((dd) => [
          dd.dataset.key!,
          dd.textContent!,
        ]),
      )
    return {
      generatedAt: document.body.dataset.generatedAt ?? '',
      totals: Object.fromEntries(
        ['total-nodes', 'total-eligible', 'mean-score', 'total-regions', 'total-sites', 'issuer'].map(
          (id) => [id, text(id)],
        ),
      ),
      byStatus: Object.fromEntries(
        [...document.querySelectorAll<HTMLElement>('#by-status dd')].map((dd) => [
          dd.dataset.status!,
          dd.textContent!,
        ]),
      ),
      rows,
      epoch: Object.fromEntries(['epoch-number', 'epoch-start', 'epoch-end'].map((id) => [id, text(id)])),
      settled: text('settled'),
      payouts: list('payouts'),
      bars: document.querySelectorAll('#score-chart rect.bar').length,
    }
  })
}

describe('the network dashboard', () => {
  let dir: string
  let tracker: Tracker
  const browser = useBrowser()
  const nodes: TestNode[] = []

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-tracker-dashboard-'))
    tracker = createTracker(
      {
        ...FAST,
        epochSeconds: 3_600,
        // a busy machine must not mark the answering nodes down: only refused probes count
        probeTimeoutMs: 5_000,
        index: { downAfterMs: 60_000 },
      },
      {
        store: createSqliteStore({ path: join(dir, 'tracker.db') }),
        account: privateKeyToAccount(generatePrivateKey()),
        register: new Registry(),
        dashboard: { payouts: () => ({ epoch: 7, claimed: 2 }) },
      },
    )
    await tracker.start()
    for (const region of ['eu-west', 'eu-west', 'us-east']) {
      const node = await startTestNode({ region })
      nodes.push(node)
      expect((await registerNode(tracker.url, node, { session: false })).status).toBe(201)
    }
    await waitFor(() => nodes.every((n) => tracker.index.get(n.address)?.status === 'active'))
    // one node stops answering probes: another status, another score
    nodes[2]!.mode = 'refuse'
    await waitFor(() => tracker.index.get(nodes[2]!.address)?.status === 'down')
    const content = await makeContent(2048)
    await publishSite(tracker.url, privateKeyToAccount(generatePrivateKey()), 'blog', 1, [
      { path: '/index.html', content },
    ])
  })
  afterAll(async () => {
    await tracker?.stop()
    for (const n of nodes) await n.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('data.json agrees with the API: nodes, scores, components, totals, epochs', async () => {
    const res = await request(`${tracker.url}/dashboard/data.json`)
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-security-policy']).toBe(DASHBOARD_CSP)
    const d = (await res.body.json()) as TrackerDashboardData
    const stats = (await (await request(`${tracker.url}/v1/stats`)).body.json()) as {
      nodes: { nodes: number; byStatus: Record<string, number> }
      sites: number
      tracker: { issuer: string }
    }
    expect(d.schema).toBe(1)
    expect(d.totals.nodes).toBe(stats.nodes.nodes)
    expect(d.totals.byStatus).toEqual(stats.nodes.byStatus)
    expect(d.totals.byStatus).toMatchObject({ active: 2, down: 1 })
    expect(d.totals.sites).toBe(stats.sites)
    expect(d.totals.sites).toBe(1)
    expect(Object.keys(d.totals.regions).sort()).toEqual(['eu-west', 'us-east'])
    expect(d.tracker.issuer).toBe(stats.tracker.issuer)
    expect(d.nodes.map((n) => n.node).sort()).toEqual(nodes.map((n) => n.address).sort())
    // best first
    expect(d.nodes.map((n) => n.score)).toEqual([...d.nodes.map((n) => n.score)].sort((a, b) => b - a))
    for (const n of d.nodes) {
      const api = (await (await request(`${tracker.url}/v1/nodes/${n.node}`)).body.json()) as {
        status: string
        eligible: boolean
        record: { message: { region: string } }
        components: Record<string, number>
      }
      expect(n.status).toBe(api.status)
      expect(n.region).toBe(api.record.message.region)
      // probes go on between the two answers: the components drift a little
      for (const p of PARTS) expect(Math.abs(n.components[p] - api.components[p]!), p).toBeLessThan(0.05)
      // within one answer, the score is the formula over its components
      const c = n.components
      expect(n.score).toBeCloseTo(
        c.uptime ** 2 * c.success ** 2 * Math.sqrt(c.latency * c.throughput) * c.integrity,
        4,
      )
    }
    expect(d.nodes.find((n) => n.node === nodes[2]!.address)!.status).toBe('down')
    expect(d.epochs.lengthMs).toBe(3_600_000)
    expect(d.epochs.current.startsAt).toBe(d.epochs.current.number * 3_600_000)
    expect(d.epochs.current.endsAt - d.epochs.current.startsAt).toBe(3_600_000)
    expect(d.generatedAt).toBeGreaterThanOrEqual(d.epochs.current.startsAt)
    expect(d.epochs.settled).toBeNull()
    expect(d.payouts).toEqual({ epoch: 7, claimed: 2 })
    // the dashboard is for people on the tracker's own origin: no CORS
    const pre = await request(`${tracker.url}/dashboard/data.json`, {
      method: 'OPTIONS',
      headers: { origin: 'http://127.0.0.1:1', 'access-control-request-method': 'GET' },
    })
    await pre.body.dump()
    expect([pre.statusCode, pre.headers['access-control-allow-origin']]).toEqual([405, undefined])
  })

  it('serves the page, script, style and icon under a strict CSP, with no external link', async () => {
    for (const [path, type] of [
      ['/dashboard', 'text/html'],
      ['/dashboard/app.js', 'text/javascript'],
      ['/dashboard/app.css', 'text/css'],
      ['/dashboard/kit.css', 'text/css'],
    ] as const) {
      const res = await request(`${tracker.url}${path}`)
      const text = await res.body.text()
      expect(res.statusCode, path).toBe(200)
      expect(res.headers['content-type'], path).toContain(type)
      expect(res.headers['content-security-policy'], path).toBe(DASHBOARD_CSP)
      expect(text, path).not.toMatch(/(?:src|href)=["']?(?:https?:)?\/\//)
    }
  })

  describe('in headless Chromium', () => {
    let page: Page
    let watch: PageWatch
    /** Every data.json answer the page received, by generatedAt. */
    const answers = new Map<string, TrackerDashboardData>()

    beforeAll(async () => {
      page = await browser().newPage()
      watch = watchPage(page)
      page.on('response', async (r) => {
        if (!r.url().endsWith('/dashboard/data.json')) return
        const d = (await r.json().catch(() => undefined)) as TrackerDashboardData | undefined
        if (d !== undefined) answers.set(String(d.generatedAt), d)
      })
      await page.goto(`${tracker.url}/dashboard`)
      await page.waitForSelector('body[data-generated-at]', { state: 'attached', timeout: 10_000 })
    })

    it('shows the figures of the data.json answer it drew', async () => {
      const shown = await readPage(page)
      const d = await waitFor(() => answers.get(shown.generatedAt), { timeoutMs: 5_000 })
      expect(shown.totals).toEqual({
        'total-nodes': formatCount(d.totals.nodes),
        'total-eligible': formatCount(d.totals.eligible),
        'mean-score': formatScore(d.totals.meanScore),
        'total-regions': '2',
        'total-sites': '1',
        issuer: d.tracker.issuer,
      })
      expect(shown.byStatus).toEqual(
        Object.fromEntries(Object.entries(d.totals.byStatus).map(([s, n]) => [s, formatCount(n)])),
      )
      expect(Object.keys(shown.rows).sort()).toEqual(nodes.map((n) => n.address).sort())
      for (const n of d.nodes) {
        const row = shown.rows[n.node]!
        expect(row.short).toBe(`${n.node.slice(0, 6)}…${n.node.slice(-4)}`)
        expect(row.region).toBe(n.region)
        expect(row.status).toBe(n.status)
        expect(row.reachability).toBe(n.reachability ?? '—')
        expect(['url', 'none']).toContain(n.reachability)
        expect(row.score).toBe(formatScore(n.score))
        for (const p of PARTS) expect(row[p], `${n.node} ${p}`).toBe(formatScore(n.components[p]))
        expect(row.latencyMs).toBe(formatMs(n.latencyMs))
        expect(row.integrityFailures).toBe(formatCount(n.integrityFailures))
      }
      expect(shown.epoch).toEqual({
        'epoch-number': formatCount(d.epochs.current.number),
        'epoch-start': formatTime(d.epochs.current.startsAt),
        'epoch-end': formatTime(d.epochs.current.endsAt),
      })
      expect(shown.settled).toContain('not available yet')
      expect(shown.payouts).toEqual({ epoch: '7', claimed: '2' })
      // one bar per non-empty tenth of the score range
      const tenths = new Set(d.nodes.map((n) => Math.min(9, Math.floor(n.score * 10))))
      expect(shown.bars).toBe(tenths.size)
    })

    it('refreshes live: a node that comes back shows as active again', async () => {
      nodes[2]!.mode = 'ok'
      await waitFor(() => tracker.index.get(nodes[2]!.address)?.status === 'active')
      await page.waitForFunction(
        (node) =>
          document.querySelector(`#nodes tr[data-node="${node}"] td[data-field="status"]`)?.textContent ===
          'active',
        nodes[2]!.address,
        { timeout: 10_000 },
      )
      const shown = await readPage(page)
      const d = await waitFor(() => answers.get(shown.generatedAt), { timeoutMs: 5_000 })
      expect(shown.byStatus).toEqual(
        Object.fromEntries(Object.entries(d.totals.byStatus).map(([s, n]) => [s, formatCount(n)])),
      )
      expect(answers.size).toBeGreaterThan(1)
    })

    it('breaks no WCAG 2.1 A/AA rule that axe-core checks', async () => {
      expect(await accessibilityViolations(page)).toEqual([])
    })

    it('made no request but its own and broke no CSP rule', async () => {
      expect(watch.requested.length).toBeGreaterThanOrEqual(4)
      expect(watch.requested.every((u) => u.startsWith(`${tracker.url}/dashboard`))).toBe(true)
      expect(watch.problems).toEqual([])
    })
  })
})
