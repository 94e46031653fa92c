/**
 * The SDK in headless Chromium: its core entry bundled with esbuild, served from a page
 * on its own 127.0.0.1 origin, fetching from a real tracker and real edge nodes on other
 * origins (so CORS is exercised: preflights, Range, exposed Content-Range). Every answer
 * is hashed in the page and compared with a hash computed here.
 */
import { createHash } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import type { ManifestEntry } from '@shoal/protocol'
import type { BrowserContext, Page } from 'playwright-core'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { bundleForBrowser, type StaticServer, serveStatic, useBrowser } from '../../test-support/browser.ts'
import {
  type Content,
  type FaultyNode,
  makeContent,
  type Nodes,
  startEdgeNodes,
  startFaultyNode,
  waitFor,
} from './helpers/nodes.ts'
import { publish, registerNode, signManifest, startTracker, type TrackerFixture } from './helpers/tracker.ts'

const CHUNK = 16384
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex')

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>shoal sdk</title></head>
<body><script type="module">
import * as shoal from '/shoal.js'
globalThis.shoal = shoal
document.body.dataset.ready = 'yes'
</script></body></html>`

/** What a fetch in the page returns to the test. */
interface PageResult {
  status: number
  contentRange: string | null
  contentType: string | null
  length: number
  sha256: string
  events: { type: string; node?: string; chunk?: number; outcome?: string }[]
}

interface PageFetch {
  tracker: string
  url: string
  range?: string
  key?: string
}

/** Runs `client.fetch(url)` in the page with a fresh client, hashing the body there. */
function fetchInPage(page: Page, args: PageFetch): Promise<PageResult> {
  return page.evaluate(async ({ tracker, url, range, key }) => {
    type Sdk = typeof import('./browser-entry.ts')
    const sdk = (globalThis as unknown as { shoal: Sdk }).shoal
    const events: PageResult['events'] = []
    const client = sdk.createClient({
      tracker,
      ...(key === undefined ? {} : { account: sdk.privateKeyToAccount(key as `0x${string}`) }),
      onEvent: (e) => events.push({ ...e }),
    })
    const res = await client.fetch(url, range === undefined ? {} : { headers: { range } })
    const bytes = new Uint8Array(await res.arrayBuffer())
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))
    await client.stop()
    return {
      status: res.status,
      contentRange: res.headers.get('content-range'),
      contentType: res.headers.get('content-type'),
      length: bytes.length,
      sha256: [...digest].map((b) => b.toString(16).padStart(2, '0')).join(''),
      events,
    }
  }, args)
}

describe('the SDK in headless Chromium against a real tracker and edge nodes', () => {
  const browser = useBrowser()
  let site: StaticServer
  let t: TrackerFixture
  let nodes: Nodes
  let proxies: FaultyNode[]
  let context: BrowserContext
  let page: Page
  /** Every URL the page asked for. */
  let requested: string[]
  const keys = [0, 1, 2].map(() => privateKeyToAccount(generatePrivateKey()))
  const publisher = privateKeyToAccount(generatePrivateKey())
  let html: Content
  let image: Content

  beforeAll(async () => {
    const bundle = await bundleForBrowser(fileURLToPath(new URL('./browser-entry.ts', import.meta.url)))
    expect(bundle).not.toMatch(/from\s*["']node:/)
    site = await serveStatic({
      '/': { type: 'text/html; charset=utf-8', body: PAGE },
      '/shoal.js': { type: 'text/javascript; charset=utf-8', body: bundle },
    })
    t = await startTracker()
    nodes = await startEdgeNodes(3, keys)
    proxies = []
    for (const url of nodes.urls) proxies.push(await startFaultyNode(url))
    for (let i = 0; i < 3; i++) await registerNode(t, keys[i]!, proxies[i]!.url)
    html = await makeContent(3_000, 1024, 1)
    image = await makeContent(300_000, CHUNK, 2)
    await nodes.push(html)
    await nodes.push(image)
    const entry = (path: string, c: Content, contentType: string): ManifestEntry => ({
      path,
      cid: c.cid.text,
      size: c.bytes.length,
      contentType,
      cacheControl: '',
    })
    await publish(
      t,
      await signManifest(publisher, 'blog', 1, [
        entry('/index.html', html, 'text/html; charset=utf-8'),
        entry('/img/photo.png', image, 'image/png'),
      ]),
    )
  })

  beforeEach(async () => {
    // a fresh context per test: no HTTP cache or preflight cache carried over
    context = await browser().newContext()
    page = await context.newPage()
    requested = []
    page.on('request', (r) => requested.push(r.url()))
    await page.goto(`${site.url}/`)
    await page.waitForSelector('body[data-ready="yes"]', { state: 'attached', timeout: 10_000 })
  })

  afterEach(async () => {
    // every request the page made has finished or was aborted (hedges, losers of a race;
    // the tracker's probes pass through the proxies too, and end at once)
    await waitFor(() => proxies.every((p) => p.open === 0))
    await context.close()
    for (const p of proxies) p.fault = { kind: 'ok' }
  })

  afterAll(async () => {
    await site?.close()
    await t?.close()
    for (const p of proxies ?? []) await p.close()
    await nodes?.close()
  })

  it('fetches a site path and a CID, verified, from another origin', async () => {
    const byPath = await fetchInPage(page, { tracker: t.url, url: 'shoal://blog/index.html' })
    expect(byPath).toMatchObject({
      status: 200,
      contentType: 'text/html; charset=utf-8',
      length: html.bytes.length,
      sha256: sha256(html.bytes),
    })
    const byCid = await fetchInPage(page, { tracker: t.url, url: `shoal://${image.cid.text}` })
    expect(byCid).toMatchObject({ status: 200, length: image.bytes.length, sha256: sha256(image.bytes) })
    // the page really went to the tracker and the nodes (nothing else, nothing outside 127.0.0.1)
    expect(requested.some((u) => u.startsWith(`${t.url}/v1/sites/blog/entries`))).toBe(true)
    expect(requested.some((u) => proxies.some((p) => u === `${p.url}c/${image.cid.text}`))).toBe(true)
    expect(requested.every((u) => u.startsWith('http://127.0.0.1:'))).toBe(true)
  })

  it('answers a Range with 206 and exactly those bytes (Content-Range read across origins)', async () => {
    const res = await fetchInPage(page, {
      tracker: t.url,
      url: 'shoal://blog/img/photo.png',
      range: 'bytes=20000-40000',
    })
    const want = image.bytes.subarray(20000, 40001)
    expect(res).toMatchObject({
      status: 206,
      contentRange: `bytes 20000-40000/${image.bytes.length}`,
      contentType: 'image/png',
      length: want.length,
      sha256: sha256(want),
    })
    // only the chunks the range needs were asked for: ranged requests to the nodes
    const contentRequests = proxies.flatMap((p) => p.requests).filter((r) => r === `/c/${image.cid.text}`)
    expect(contentRequests.length).toBeGreaterThan(0)
  })

  it('routes around a node that flips a bit: correct bytes, the liar named and reported', async () => {
    const selected = (await (await fetch(`${t.url}/v1/select?cid=${image.cid.text}&count=3`)).json()) as {
      nodes: { node: string; httpUrl: string }[]
    }
    const first = selected.nodes[0]!
    const liar = proxies.find((p) => p.url === first.httpUrl)!
    liar.fault = { kind: 'flip', offset: 5 * CHUNK + 3 }
    liar.requests.length = 0
    const res = await fetchInPage(page, {
      tracker: t.url,
      url: `shoal://${image.cid.text}`,
      key: generatePrivateKey(),
    })
    expect(res).toMatchObject({ status: 200, length: image.bytes.length, sha256: sha256(image.bytes) })
    expect(liar.requests).toContain(`/c/${image.cid.text}`)
    expect(res.events).toContainEqual(
      expect.objectContaining({ type: 'integrity-failure', node: liar.url, chunk: 5 }),
    )
    // the report went from the page to the tracker (a cross-origin JSON POST)
    expect(res.events).toContainEqual(
      expect.objectContaining({ type: 'report', node: liar.url, chunk: 5, outcome: 'filed' }),
    )
    expect(t.tracker.index.explain(first.node).figures.failures).toBeGreaterThan(0)
  })
})
