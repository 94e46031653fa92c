/**
 * `publishDirectory` against a real tracker and real edge nodes on 127.0.0.1 (nodes that
 * take pushes only for content a held manifest names and check owners with the
 * tracker): publish then fetch every file with the SDK, byte for byte; republish; the
 * refusals (symlinks out of the directory, another publisher's site); a node that
 * refuses pushes is replaced by another.
 */
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { computeCid } from '@shoal/protocol'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createClient } from '../src/index.ts'
import { contentTypeOf, publishDirectory, walkDirectory } from '../src/node/index.ts'
import { bytesOf } from './helpers/nodes.ts'
import {
  type PublishNetwork,
  type SampleFiles,
  startPublishNetwork,
  writeSampleSite,
} from './helpers/publish-network.ts'
import { startTracker } from './helpers/tracker.ts'

describe('publishDirectory', () => {
  let net: PublishNetwork
  let dir: string
  let files: SampleFiles
  const publisher = privateKeyToAccount(generatePrivateKey())

  beforeAll(async () => {
    net = await startPublishNetwork(3, { refusing: true })
    ;({ dir, files } = await writeSampleSite())
  }, 30_000)
  afterAll(async () => {
    await net?.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('walks a directory: NFC paths in code point order, hidden files skipped but .well-known kept', async () => {
    const walked = await walkDirectory(dir)
    expect(walked.map((f) => f.path)).toEqual(
      [...files.keys()].sort((a, b) => (Buffer.from(a) < Buffer.from(b) ? -1 : 1)),
    )
    expect(walked.some((f) => f.path === '/.env')).toBe(false)
    const all = await walkDirectory(dir, { hidden: 'include' })
    expect(all.map((f) => f.path)).toContain('/.env')
    expect(contentTypeOf('/index.html')).toBe('text/html; charset=utf-8')
    expect(contentTypeOf('/media/big.bin')).toBe('application/octet-stream')
  })

  it('publishes a directory and every file comes back byte for byte through the SDK', async () => {
    const phases = new Set<string>()
    let last = { phase: '', loaded: 0, total: 0 }
    const summary = await publishDirectory(dir, {
      site: 'docs',
      tracker: net.tracker.url,
      account: publisher,
      replicas: 3,
      onProgress: (p) => {
        phases.add(p.phase)
        last = p
      },
    })
    expect(summary.sequence).toBe(1)
    expect(summary.created).toBe(true)
    expect(summary.files).toBe(files.size)
    expect(summary.bytes).toBe([...files.values()].reduce((s, b) => s + b.length, 0))
    expect([...phases]).toEqual(['hash', 'push'])
    expect(last.loaded).toBe(last.total)
    // the two files with the same bytes are one content, pushed once
    const index = summary.entries.find((e) => e.path === '/index.html')
    expect(summary.entries.find((e) => e.path === '/copy-of-index.html')?.cid).toBe(index?.cid)
    expect(summary.contents.length).toBe(files.size - 1)
    // every content on 3 nodes, never the node that refuses pushes; it was tried and replaced
    expect(summary.complete).toBe(true)
    for (const c of summary.contents) {
      expect(c.nodes.length).toBe(3)
      expect(c.nodes).not.toContain(net.refusing)
    }
    expect(summary.contents.some((c) => c.failed.some((f) => f.node === net.refusing))).toBe(true)
    expect(summary.contents.find((c) => c.failed.length > 0)?.failed[0]?.code).toBe('SHOAL_ERR_UNAVAILABLE')

    // the CIDs are the protocol's
    for (const e of summary.entries) {
      const { cid } = await computeCid(files.get(e.path) as Uint8Array)
      expect(e.cid).toBe(cid.text)
    }

    const client = createClient({ tracker: net.tracker.url })
    try {
      for (const [path, bytes] of files) {
        const res = await client.fetch(`shoal://docs${encodeURI(path)}`)
        expect(res.status, path).toBe(200)
        expect(Buffer.from(await bytesOf(res)).equals(Buffer.from(bytes)), path).toBe(true)
      }
      expect((await client.fetch('shoal://docs/index.html')).headers.get('content-type')).toBe(
        'text/html; charset=utf-8',
      )
    } finally {
      await client.stop()
    }
  }, 60_000)

  it('republishing bumps the sequence and pushes only what changed', async () => {
    const changed = new TextEncoder().encode('<!doctype html><h1>Hello again</h1>\n')
    await writeFile(join(dir, 'index.html'), changed)
    const summary = await publishDirectory(dir, {
      site: 'docs',
      tracker: net.tracker.url,
      account: publisher,
      replicas: 3,
    })
    expect(summary.sequence).toBe(2)
    expect(summary.created).toBe(false)
    const fresh = summary.contents.find((c) => c.paths.includes('/index.html'))
    expect(fresh?.pushed.length).toBe(3)
    const unchanged = summary.contents.find((c) => c.paths.includes('/media/big.bin'))
    expect(unchanged?.pushed).toEqual([])
    expect(unchanged?.skipped.length).toBe(3)
    expect(summary.bytesPushed).toBe(changed.length * 3)

    const client = createClient({ tracker: net.tracker.url })
    try {
      const res = await client.fetch('shoal://docs/index.html')
      expect(Buffer.from(await bytesOf(res)).equals(Buffer.from(changed))).toBe(true)
    } finally {
      await client.stop()
    }
    await writeFile(join(dir, 'index.html'), files.get('/index.html') as Uint8Array)
  }, 60_000)

  it('refuses another publisher’s site before sending anything', async () => {
    const other = privateKeyToAccount(generatePrivateKey())
    await expect(
      publishDirectory(dir, { site: 'docs', tracker: net.tracker.url, account: other }),
    ).rejects.toMatchObject({ code: 'SHOAL_ERR_FORBIDDEN' })
    const held = await fetch(`${net.tracker.url}/v1/sites/docs`).then((r) => r.json())
    expect(held.message.sequence).toBe(2)
  })

  it('refuses a symbolic link that leads out of the directory, and bad options', async () => {
    const outside = await mkdtemp(join(tmpdir(), 'shoal-outside-'))
    const site = await mkdtemp(join(tmpdir(), 'shoal-link-site-'))
    try {
      await writeFile(join(outside, 'secret.txt'), 'do not publish')
      await writeFile(join(site, 'ok.txt'), 'fine')
      await symlink(join(site, 'ok.txt'), join(site, 'inside-link.txt'))
      expect((await walkDirectory(site)).map((f) => f.path)).toEqual(['/inside-link.txt', '/ok.txt'])
      await symlink(join(outside, 'secret.txt'), join(site, 'leak.txt'))
      await expect(
        publishDirectory(site, { site: 'leaky', tracker: net.tracker.url, account: publisher }),
      ).rejects.toMatchObject({
        code: 'SHOAL_ERR_INVALID_ARGUMENT',
        message: expect.stringContaining('outside'),
      })
      expect((await fetch(`${net.tracker.url}/v1/sites/leaky`)).status).toBe(404)
      await expect(
        publishDirectory(site, { site: 'Bad_Name', tracker: net.tracker.url, account: publisher }),
      ).rejects.toMatchObject({ code: 'SHOAL_ERR_INVALID_ARGUMENT' })
      await expect(
        publishDirectory(site, { site: 'x', tracker: net.tracker.url, account: publisher, replicas: 0 }),
      ).rejects.toMatchObject({ code: 'SHOAL_ERR_INVALID_ARGUMENT' })
    } finally {
      await rm(outside, { recursive: true, force: true })
      await rm(site, { recursive: true, force: true })
    }
  })

  it('registers nothing when the tracker has no node to push to', async () => {
    const empty = await startTracker()
    try {
      await expect(
        publishDirectory(dir, { site: 'nowhere', tracker: empty.url, account: publisher }),
      ).rejects.toMatchObject({ code: 'SHOAL_ERR_UNAVAILABLE' })
      expect((await fetch(`${empty.url}/v1/sites/nowhere`)).status).toBe(404)
    } finally {
      await empty.close()
    }
  })

  it('stops when aborted', async () => {
    await expect(
      publishDirectory(dir, {
        site: 'aborted',
        tracker: net.tracker.url,
        account: publisher,
        signal: AbortSignal.abort(),
      }),
    ).rejects.toMatchObject({ code: 'SHOAL_ERR_ABORTED' })
    expect((await fetch(`${net.tracker.url}/v1/sites/aborted`)).status).toBe(404)
  })
})
