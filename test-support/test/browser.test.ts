import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  accessibilityViolations,
  bundleForBrowser,
  CHROMIUM_PATH,
  ensureChromium,
  type StaticServer,
  serveStatic,
  useBrowser,
} from '../browser.ts'

describe('the shared browser helper', () => {
  it('finds the installed chromium, and fails with a clear message (never a skip) when it cannot install it', async () => {
    expect(await ensureChromium()).toBe(CHROMIUM_PATH)
    await expect(ensureChromium({ path: '/nonexistent/shoal/chromium', root: false })).rejects.toThrow(
      /need Debian's chromium at \/nonexistent\/shoal\/chromium; it is missing and this process is not root.*apt-get install -y chromium/,
    )
  })

  it('bundles a browser entry, and refuses one that imports a node: module, naming it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shoal-bundle-'))
    try {
      await writeFile(join(dir, 'ok.ts'), 'export const answer: number = 42\n')
      await writeFile(
        join(dir, 'bad.ts'),
        "import { readFileSync } from 'node:fs'\nexport const read = readFileSync\n",
      )
      expect(await bundleForBrowser(join(dir, 'ok.ts'))).toMatch(/answer = 42/)
      await expect(bundleForBrowser(join(dir, 'bad.ts'))).rejects.toThrow(
        /bad\.ts does not bundle for browsers: .*Could not resolve "node:fs"/,
      )
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  describe('serveStatic and accessibilityViolations', () => {
    const browser = useBrowser()
    let site: StaticServer
    beforeAll(async () => {
      site = await serveStatic({
        '/': { type: 'text/html', body: '<p>hi</p>' },
        '/bad': { type: 'text/html', body: '<!doctype html><html><body><img src="/x.png"></body></html>' },
        '/good': {
          type: 'text/html',
          body: '<!doctype html><html lang="en"><head><title>ok</title></head><body><main><h1>ok</h1></main></body></html>',
        },
      })
    })
    it('axe-core finds what a page breaks, and nothing on a clean one', async () => {
      const page = await browser().newPage()
      await page.goto(`${site.url}/bad`)
      const ids = (await accessibilityViolations(page)).map((v) => v.id).sort()
      expect(ids).toEqual(expect.arrayContaining(['html-has-lang', 'image-alt']))
      await page.goto(`${site.url}/good`)
      expect(await accessibilityViolations(page)).toEqual([])
      await page.close()
    })
    afterAll(async () => {
      await site.close()
    })
    it('serves its files on 127.0.0.1 and 404 for anything else', async () => {
      expect(site.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
      const ok = await fetch(`${site.url}/`)
      expect([ok.status, ok.headers.get('content-type'), await ok.text()]).toEqual([
        200,
        'text/html',
        '<p>hi</p>',
      ])
      const missing = await fetch(`${site.url}/x.js`)
      await missing.body?.cancel()
      expect(missing.status).toBe(404)
      expect(site.hits.slice(-2)).toEqual(['/', '/x.js'])
    })
  })
})
