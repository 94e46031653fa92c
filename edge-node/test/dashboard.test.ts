/**
 * The node dashboard: its time series, its JSON, and the page in headless Chromium
 * showing the same figures as the JSON, refreshing live, under a strict CSP with no
 * request but its own.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DASHBOARD_CSP } from '@shoal/dashboard-kit'
// the page's own formatting: the figures must read exactly this
import { formatBytes, formatCount, formatRatio } from '@shoal/dashboard-kit/kit.js'
import { computeCid } from '@shoal/protocol'
import type { Page } from 'playwright-core'
import { request } from 'undici'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { accessibilityViolations, type PageWatch, useBrowser, watchPage } from '../../test-support/browser.ts'
import type { NodeDashboardData } from '../src/dashboard/dashboard.ts'
import { createCounterSeries } from '../src/dashboard/series.ts'
import { createEdgeNode, type EdgeNode } from '../src/node.ts'

describe('counter series', () => {
  it('records growth per bucket over the window, oldest first, and survives a counter restart', () => {
    let now = 1_000_000
    const s = createCounterSeries({ bucketMs: 10, buckets: 4 }, { clock: () => now })
    s.observe(100) // the baseline: not growth
    now += 3
    s.observe(150)
    now += 10
    s.observe(170)
    now += 10
    s.observe(20) // restarted from 0: 20 of growth
    expect(s.points()).toEqual([
      { t: 999_990, value: 0 },
      { t: 1_000_000, value: 50 },
      { t: 1_000_010, value: 20 },
      { t: 1_000_020, value: 20 },
    ])
    now += 10
    expect(s.points().map((p) => p.value)).toEqual([50, 20, 20, 0])
    now += 100
    expect(s.points().every((p) => p.value === 0)).toBe(true)
    expect(() => createCounterSeries({ bucketMs: 0 })).toThrow(
      expect.objectContaining({ code: 'SHOAL_ERR_INVALID_ARGUMENT' }),
    )
    expect(() => s.observe(-1)).toThrow(expect.objectContaining({ code: 'SHOAL_ERR_INVALID_ARGUMENT' }))
  })
})

describe('the node dashboard', () => {
  let dataDir: string
  let node: EdgeNode
  const browser = useBrowser()
  const account = privateKeyToAccount(generatePrivateKey())
  const bytes = Buffer.alloc(300_000, 9)
  let cid: string

  const data = async (): Promise<NodeDashboardData> => {
    const res = await request(`${node.url}/dashboard/data.json`)
    expect(res.statusCode).toBe(200)
    return (await res.body.json()) as NodeDashboardData
  }
  const get = async (path: string, headers: Record<string, string> = {}) => {
    const res = await request(`${node.url}${path}`, { headers })
    await res.body.dump()
    return res.statusCode
  }

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'shoal-dashboard-'))
    node = createEdgeNode(
      { dataDir, host: '127.0.0.1', port: 0, acceptPushes: 'any', shutdownGraceMs: 100 },
      {
        account,
        dashboard: {
          receipts: () => ({ sessions: 2, bytesAcknowledged: 123_456 }),
          sections: { mesh: async () => ({ topics: 3 }) },
        },
      },
    )
    await node.start()
    cid = (await computeCid(bytes, { chunkSize: 65536 })).cid.text
    await (await request(`${node.url}/c/${cid}`, { method: 'PUT', body: bytes })).body.dump()
  })
  afterAll(async () => {
    await node?.stop()
    await rm(dataDir, { recursive: true, force: true })
  })

  it('data.json counts bytes served (fast path and node:http), hits, misses and tiers', async () => {
    const before = await data()
    expect(await get(`/c/${cid}`)).toBe(200) // memory hit: the fast path
    expect(await get(`/c/${cid}`, { range: 'bytes=0-999' })).toBe(206) // node:http
    expect(await get(`/c/${'saejacwl7zmysqljumvgcadjudd6kk4c4mshl6mtoy46y3xxrdba7q5wy'}`)).toBe(404) // a miss
    const after = await data()
    expect(after.schema).toBe(1)
    expect(after.node.address).toBe(account.address)
    expect(after.node.url).toBe(node.url)
    // the fast path counts its heads too
    expect(after.traffic.totalBytes - before.traffic.totalBytes).toBeGreaterThanOrEqual(bytes.length + 1000)
    expect(after.traffic.totalBytes - before.traffic.totalBytes).toBeLessThan(bytes.length + 1000 + 2048)
    expect(after.traffic.points).toHaveLength(360)
    expect(after.traffic.bucketSeconds).toBe(10)
    expect(after.traffic.windowBytes).toBe(after.traffic.points.reduce((a, p) => a + p.value, 0))
    expect(after.cache.hits - before.cache.hits).toBe(2)
    expect(after.cache.misses - before.cache.misses).toBe(1)
    expect(after.cache.hitRatio).toBeCloseTo(after.cache.hits / (after.cache.hits + after.cache.misses), 10)
    const memory = after.cache.tiers.find((t) => t.tier === 'memory')!
    expect(memory.maxBytes).toBe(node.options.memoryCacheBytes)
    expect(memory.objects).toBeGreaterThanOrEqual(1)
    expect(memory.bytes).toBeGreaterThanOrEqual(bytes.length)
    expect(after.peers).toEqual({ count: 0, neighbours: [] }) // the mesh's, with no neighbour yet
    expect(after.receipts).toEqual({ sessions: 2, bytesAcknowledged: 123_456 })
    expect(after.earnings).toBeNull()
    expect(after.mesh).toEqual({ topics: 3 })
  })

  it('serves the page, script and style with a strict CSP; refuses writes and unknown paths', async () => {
    for (const [path, type] of [
      ['/dashboard', 'text/html'],
      ['/dashboard/app.js', 'text/javascript'],
      ['/dashboard/kit.js', 'text/javascript'],
      ['/dashboard/data.json', 'application/json'],
    ] as const) {
      const res = await request(`${node.url}${path}`)
      const text = await res.body.text()
      expect(res.statusCode, path).toBe(200)
      expect(res.headers['content-type'], path).toContain(type)
      expect(res.headers['content-security-policy'], path).toBe(DASHBOARD_CSP)
      expect(res.headers['access-control-allow-origin'], path).toBeUndefined()
      // nothing from elsewhere: no absolute URL in the page or its script and style
      if (path !== '/dashboard/data.json')
        expect(text, path).not.toMatch(/(?:src|href)=["']?(?:https?:)?\/\//)
    }
    const post = await request(`${node.url}/dashboard/data.json`, { method: 'POST', body: '{}' })
    expect([post.statusCode, ((await post.body.json()) as { error: { code: string } }).error.code]).toEqual([
      405,
      'SHOAL_ERR_METHOD_NOT_ALLOWED',
    ])
    expect(await get('/dashboard/nope.js')).toBe(404)
    expect(await get('/dashboard/app.css')).toBe(404) // the node page has only the kit's style
  })

  describe('in headless Chromium', () => {
    let page: Page
    let watch: PageWatch

    beforeAll(async () => {
      page = await browser().newPage()
      watch = watchPage(page)
      await page.goto(`${node.url}/dashboard`)
      await page.waitForSelector('body[data-generated-at]', { state: 'attached', timeout: 10_000 })
    })

    const text = (selector: string) => page.locator(selector).textContent()
    const value = (selector: string) => page.locator(selector).getAttribute('data-value')

    it('shows the figures of data.json', async () => {
      const d = await data()
      // the page may have drawn an older answer: wait for the one with these counters
      await page.waitForFunction(
        (total) => document.getElementById('total-bytes')?.dataset.value === String(total),
        d.traffic.totalBytes,
        { timeout: 10_000 },
      )
      expect(await text('#node-address')).toBe(account.address)
      expect(await text('#total-bytes')).toBe(formatBytes(d.traffic.totalBytes))
      expect(await text('#window-bytes')).toBe(formatBytes(d.traffic.windowBytes))
      expect(await value('#window-bytes')).toBe(String(d.traffic.windowBytes))
      expect(await text('#hit-ratio')).toBe(formatRatio(d.cache.hitRatio))
      expect(await text('#cache-hits')).toBe(formatCount(d.cache.hits))
      expect(await text('#cache-misses')).toBe(formatCount(d.cache.misses))
      for (const tier of d.cache.tiers) {
        const row = `#tiers tr[data-tier="${tier.tier}"]`
        expect(await text(`${row} td[data-field="bytes"]`)).toBe(formatBytes(tier.bytes))
        expect(await text(`${row} td[data-field="maxBytes"]`)).toBe(formatBytes(tier.maxBytes))
        expect(await text(`${row} td[data-field="objects"]`)).toBe(formatCount(tier.objects))
        expect(Number(await page.locator(`${row} meter`).getAttribute('value'))).toBeCloseTo(
          tier.bytes / tier.maxBytes,
          6,
        )
      }
      expect(await text('#peers')).toBe('0')
      expect(await text('#receipts dd[data-key="sessions"]')).toBe('2')
      expect(await text('#receipts dd[data-key="bytesAcknowledged"]')).toBe('123,456')
      expect(await text('#earnings')).toContain('not available yet')
      expect(await text('#section-mesh dd[data-key="topics"]')).toBe('3')
      // one bar per non-empty interval, and the chart says what it shows
      const bars = await page.locator('#traffic-chart rect.bar').count()
      expect(bars).toBe(d.traffic.points.filter((p) => p.value > 0).length)
      expect(bars).toBeGreaterThan(0)
      expect(await page.locator('#traffic-desc').textContent()).toContain(formatBytes(d.traffic.windowBytes))
    })

    it('refreshes live as the node serves more', async () => {
      const before = Number(await value('#total-bytes'))
      expect(await get(`/c/${cid}`)).toBe(200)
      const d = await data()
      expect(d.traffic.totalBytes).toBeGreaterThan(before)
      await page.waitForFunction(
        (total) => Number(document.getElementById('total-bytes')?.dataset.value) >= total,
        d.traffic.totalBytes,
        { timeout: 10_000 },
      )
      expect(await text('#total-bytes')).toBe(formatBytes(Number(await value('#total-bytes'))))
    })

    it('breaks no WCAG 2.1 A/AA rule that axe-core checks', async () => {
      expect(await accessibilityViolations(page)).toEqual([])
    })

    it('made no request but its own and broke no CSP rule', async () => {
      expect(watch.requested.length).toBeGreaterThanOrEqual(4)
      expect(watch.requested.every((u) => u.startsWith(`${node.url}/dashboard`))).toBe(true)
      expect(watch.problems).toEqual([])
    })
  })
})
