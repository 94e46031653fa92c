/**
 * The `shoal` command line, run as a child process through the pinned Node, against a
 * real tracker and real edge nodes on 127.0.0.1: key create, publish then `shoal get`
 * every file (to files and to stdout) and fetch with the SDK, byte for byte; republish
 * bumps the sequence (`shoal site show`); bad usage exits 2 with a clear message; a wrong
 * passphrase is a clear error; `-o` never leaves a partial file; purge then fetch
 * refetches from the origin.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createEdgeNode, type EdgeNode } from '@shoal/edge-node'
import { computeCid } from '@shoal/protocol'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createClient } from '../src/index.ts'
import { createKeystoreFile } from '../src/node/index.ts'
import { bytesOf, startFaultyNode } from './helpers/nodes.ts'
import {
  type PublishNetwork,
  type SampleFiles,
  startPublishNetwork,
  writeSampleSite,
} from './helpers/publish-network.ts'

const BIN = fileURLToPath(new URL('../bin/shoal.ts', import.meta.url))
const PASSPHRASE = 'correct horse battery staple'

interface Result {
  code: number | null
  stdout: Buffer
  stderr: string
}

function run(args: string[], env: Record<string, string> = {}): Promise<Result> {
  const child: ChildProcess = spawn(
    process.execPath,
    ['--disable-warning=ExperimentalWarning', BIN, ...args],
    {
      env: { ...process.env, SHOAL_PASSPHRASE: '', SHOAL_TRACKER: '', SHOAL_KEY: '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  const out: Buffer[] = []
  let stderr = ''
  child.stdout?.on('data', (d: Buffer) => out.push(d))
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d
  })
  return once(child, 'close').then(([code]) => ({
    code: code as number | null,
    stdout: Buffer.concat(out),
    stderr,
  }))
}

describe('shoal command line', () => {
  let net: PublishNetwork
  let site: { dir: string; files: SampleFiles }
  let work: string
  let keyFile: string
  let env: Record<string, string>

  beforeAll(async () => {
    net = await startPublishNetwork(2)
    site = await writeSampleSite()
    work = await mkdtemp(join(tmpdir(), 'shoal-cli-work-'))
    keyFile = join(work, 'keys', 'publisher.json')
    env = { SHOAL_TRACKER: net.tracker.url, SHOAL_KEY: keyFile, SHOAL_PASSPHRASE: PASSPHRASE }
    await createKeystoreFile(keyFile, PASSPHRASE, { n: 1024 })
  }, 30_000)
  afterAll(async () => {
    await net?.close()
    await rm(site.dir, { recursive: true, force: true })
    await rm(work, { recursive: true, force: true })
  })

  it('creates a publisher key with mode 0600 and refuses to overwrite it', async () => {
    const keyFile = join(work, 'keys', 'new.json')
    const res = await run(['key', 'create', '--out', keyFile, '--scrypt-n', '1024'], env)
    expect(res.stderr).toBe('')
    expect(res.code).toBe(0)
    const address = /address (0x[0-9a-fA-F]{40})/.exec(res.stdout.toString())?.[1]
    expect(address).toBeDefined()
    expect((await stat(keyFile)).mode & 0o777).toBe(0o600)
    const shown = await run(['key', 'show', '--key', keyFile], env)
    expect(shown.stdout.toString().trim()).toBe(address)
    const again = await run(['key', 'create', '--out', keyFile], env)
    expect(again.code).toBe(2)
    expect(again.stderr).toContain('already exists')
    // no passphrase and no terminal to ask on
    const none = await run(['key', 'create', '--out', join(work, 'other.json')], {
      ...env,
      SHOAL_PASSPHRASE: '',
    })
    expect(none.code).toBe(2)
    expect(none.stderr).toContain('SHOAL_PASSPHRASE')
  })

  it('publishes a directory, then shoal get and the SDK return every file byte for byte', async () => {
    const res = await run(['publish', site.dir, '--site', 'blog', '--replicas', '2', '--json'], env)
    expect(res.stderr).toBe('')
    expect(res.code).toBe(0)
    const summary = JSON.parse(res.stdout.toString())
    expect(summary.sequence).toBe(1)
    expect(summary.files).toBe(site.files.size)
    expect(summary.complete).toBe(true)

    // the human summary: a table and a line, no progress bar when stderr is not a terminal
    const human = await run(['publish', site.dir, '--site', 'blog', '--replicas', '2'], env)
    expect(human.code).toBe(0)
    expect(human.stdout.toString()).toContain('/café/menü du jour.html')
    expect(human.stdout.toString()).toMatch(/published site blog sequence 2: 9 files/)
    expect(human.stderr).toBe('')

    const out = join(work, 'out')
    await rm(out, { recursive: true, force: true })
    await (await import('node:fs/promises')).mkdir(out)
    let i = 0
    for (const [path, bytes] of site.files) {
      const file = join(out, `f${i++}`)
      const got = await run(['get', `shoal://blog${encodeURI(path)}`, '-o', file], env)
      expect(got.stderr, path).toBe('')
      expect(got.code, path).toBe(0)
      expect(Buffer.from(await readFile(file)).equals(Buffer.from(bytes)), path).toBe(true)
    }
    // to stdout (piped): the bytes and nothing else, no bar
    const big = site.files.get('/media/big.bin') as Uint8Array
    const piped = await run(['get', 'shoal://blog/media/big.bin'], env)
    expect(piped.code).toBe(0)
    expect(piped.stdout.equals(Buffer.from(big))).toBe(true)
    expect(piped.stderr).toBe('')
    // by content id
    const cid = summary.entries.find((e: { path: string }) => e.path === '/media/big.bin').cid
    const byCid = await run(['get', `shoal://${cid}`], env)
    expect([byCid.code, byCid.stderr, byCid.stdout.length]).toEqual([0, '', big.length])
    expect(byCid.stdout.equals(Buffer.from(big))).toBe(true)

    const client = createClient({ tracker: net.tracker.url })
    try {
      for (const [path, bytes] of site.files) {
        const r = await client.fetch(`shoal://blog${encodeURI(path)}`)
        expect(Buffer.from(await bytesOf(r)).equals(Buffer.from(bytes)), path).toBe(true)
      }
    } finally {
      await client.stop()
    }
  }, 120_000)

  it('shows the site: sequence, publisher and entries; republishing bumps the sequence', async () => {
    const before = await run(['site', 'show', 'blog'], env)
    expect(before.code).toBe(0)
    const seq = Number(/sequence\s+(\d+)/.exec(before.stdout.toString())?.[1])
    expect(seq).toBeGreaterThanOrEqual(1)
    const address = (await run(['key', 'show'], env)).stdout.toString().trim()
    expect(before.stdout.toString()).toContain(`publisher  ${address}`)
    expect(before.stdout.toString()).toContain('/a/b/c/deep.txt')
    await run(['publish', site.dir, '--site', 'blog', '--replicas', '2', '--json'], env)
    const after = JSON.parse((await run(['site', 'show', 'blog', '--json'], env)).stdout.toString())
    expect(after.sequence).toBe(seq + 1)
    expect(after.entries.length).toBe(site.files.size)
    const missing = await run(['site', 'show', 'nosuchsite'], env)
    expect(missing.code).toBe(1)
    expect(missing.stderr).toContain('no site "nosuchsite"')
  }, 60_000)

  it('exits 2 with a clear message on bad usage', async () => {
    // the full list of refusals is in cli-args.test.ts (in-process); here, the exit code
    const cases: [string[], string][] = [
      [['frobnicate'], 'unknown command "frobnicate"'],
      [['publish', site.dir], 'needs --site NAME'],
      [['get', 'shoal://blog/index.html', '--bogus'], "Unknown option '--bogus'"],
      [['get', 'ftp://example.org/x'], 'ftp'],
    ]
    for (const [args, message] of cases) {
      const res = await run(args, env)
      expect(res.code, args.join(' ')).toBe(2)
      expect(res.stderr, args.join(' ')).toContain(message)
    }
    const noTracker = await run(['site', 'show', 'blog'], { ...env, SHOAL_TRACKER: '' })
    expect(noTracker.code).toBe(2)
    expect(noTracker.stderr).toContain('--tracker URL or SHOAL_TRACKER')
    const noTrackerGet = await run(['get', 'shoal://blog/index.html'], { ...env, SHOAL_TRACKER: '' })
    expect(noTrackerGet.code).toBe(2)
    expect(noTrackerGet.stderr).toContain('needs a tracker')
    const help = await run(['--help'])
    expect(help.code).toBe(0)
    expect(help.stdout.toString()).toContain('shoal publish <dir> --site NAME')
  }, 60_000)

  it('says plainly that the passphrase is wrong', async () => {
    const res = await run(['publish', site.dir, '--site', 'blog', '--replicas', '2'], {
      ...env,
      SHOAL_PASSPHRASE: 'wrong',
    })
    expect(res.code).toBe(2)
    expect(res.stderr).toContain(`cannot open key file ${keyFile}: wrong passphrase`)
    const passFile = join(work, 'pass.txt')
    await writeFile(passFile, `${PASSPHRASE}\n`, { mode: 0o600 })
    const fromFile = await run(
      ['publish', site.dir, '--site', 'blog', '--replicas', '2', '--json', '--passphrase-file', passFile],
      {
        ...env,
        SHOAL_PASSPHRASE: 'wrong',
      },
    )
    expect(fromFile.stderr).toBe('')
    expect(fromFile.code).toBe(0)
  }, 30_000)

  it('never leaves a partial or wrong file behind with -o', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shoal-cli-get-'))
    try {
      const file = join(dir, 'keep.txt')
      await writeFile(file, 'previous contents')
      const res = await run(['get', 'shoal://blog/no/such/file.txt', '-o', file], env)
      expect(res.code).toBe(1)
      expect(res.stderr).toContain('has no entry "/no/such/file.txt"')
      expect(await readFile(file, 'utf8')).toBe('previous contents')
      // a node that is not there: nothing is written
      const dead = await run(['get', 'shoal://blog/index.html', '-o', join(dir, 'new.txt')], {
        ...env,
        SHOAL_TRACKER: 'http://127.0.0.1:9',
      })
      expect(dead.code).toBe(1)
      expect((await readdir(dir)).sort()).toEqual(['keep.txt'])
      // the only node dies mid-body, after the first chunk was verified and written:
      // the temp file is removed and the target never appears
      const big = summaryCid(site.files, '/media/big.bin')
      const dying = await startFaultyNode(net.urls[0] as string, { kind: 'die', after: 300_000 })
      try {
        const cut = await run(
          ['get', `shoal://${await big}`, '--node', dying.url, '-o', join(dir, 'big.bin')],
          {
            ...env,
            SHOAL_TRACKER: '',
          },
        )
        expect(cut.code).toBe(1)
        expect(dying.requests.some((r) => r.startsWith('/c/'))).toBe(true)
        expect((await readdir(dir)).sort()).toEqual(['keep.txt'])
      } finally {
        await dying.close()
      }
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  }, 30_000)

  it('draws progress bars on a terminal (a pseudo-terminal from script(1))', async () => {
    const onTerminal = async (args: string[]): Promise<{ code: unknown; seen: string }> => {
      const command = [process.execPath, '--disable-warning=ExperimentalWarning', BIN, ...args]
        .map((a) => `'${a}'`)
        .join(' ')
      const child = spawn('script', ['-qec', command, '/dev/null'], {
        env: { ...process.env, ...env, TERM: 'xterm', COLUMNS: '120' },
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      let seen = ''
      child.stdout?.on('data', (d: Buffer) => {
        seen += d
      })
      const [code] = await once(child, 'close')
      return { code, seen }
    }
    const published = await onTerminal(['publish', site.dir, '--site', 'blog', '--replicas', '2'])
    expect(published.code).toBe(0)
    expect(published.seen).toContain('hash  [')
    expect(published.seen).toContain('push  [')
    expect(published.seen).toMatch(/published site blog sequence \d+/)
    const file = join(work, 'tty-big.bin')
    const got = await onTerminal(['get', 'shoal://blog/media/big.bin', '-o', file])
    expect(got.code).toBe(0)
    expect(got.seen).toContain('get   [')
    expect(got.seen).toContain('100%')
    expect(got.seen).toContain(`wrote 524 KiB to ${file}`)
    expect(
      Buffer.from(await readFile(file)).equals(Buffer.from(site.files.get('/media/big.bin') as Uint8Array)),
    ).toBe(true)
  }, 30_000)
})

async function summaryCid(files: SampleFiles, path: string): Promise<string> {
  return (await computeCid(files.get(path) as Uint8Array)).cid.text
}

describe('shoal purge', () => {
  let node: EdgeNode
  let dataDir: string
  let origin: http.Server
  let originUrl: string
  let hits = 0
  let body = 'version 1'
  let slowStarted = false
  let work: string
  let env: Record<string, string>

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'shoal-cli-purge-'))
    const keyFile = join(work, 'publisher.json')
    env = { SHOAL_KEY: keyFile, SHOAL_PASSPHRASE: PASSPHRASE }
    const created = await run(['key', 'create', '--scrypt-n', '1024'], env)
    const address = /address (0x[0-9a-fA-F]{40})/.exec(created.stdout.toString())?.[1] as `0x${string}`
    origin = http.createServer((req, res) => {
      if (req.url === '/slow') {
        // headers and a little body, then nothing: the client waits until interrupted
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '1000000' }).write('partial')
        slowStarted = true
        return
      }
      hits++
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=600' }).end(body)
    })
    origin.listen(0, '127.0.0.1')
    await once(origin, 'listening')
    originUrl = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`
    dataDir = await mkdtemp(join(tmpdir(), 'shoal-cli-purge-node-'))
    node = createEdgeNode({
      dataDir,
      host: '127.0.0.1',
      port: 0,
      shutdownGraceMs: 200,
      sites: [{ name: 'shop', origin: originUrl, publisher: address }],
    })
    await node.start()
  }, 30_000)
  afterAll(async () => {
    await node?.stop()
    origin?.closeAllConnections()
    origin?.close()
    await rm(dataDir, { recursive: true, force: true })
    await rm(work, { recursive: true, force: true })
  })

  it('purges a path on the nodes, and the next fetch goes to the origin again', async () => {
    const url = `${node.url.replace(/\/$/, '')}/s/shop/price.txt`
    expect(await (await fetch(url)).text()).toBe('version 1')
    expect(await (await fetch(url)).text()).toBe('version 1')
    expect(hits).toBe(1)
    body = 'version 2'
    const res = await run(['purge', '--site', 'shop', '--node', node.url, '/price.txt', '--json'], env)
    expect(res.stderr).toBe('')
    expect(res.code).toBe(0)
    expect(JSON.parse(res.stdout.toString())).toEqual([{ node: node.url, ok: true, purged: 1 }])
    expect(await (await fetch(url)).text()).toBe('version 2')
    expect(hits).toBe(2)
    // a prefix purge of the whole site, and a key the node does not know for the site
    const all = await run(['purge', '--site', 'shop', '--node', node.url, '--prefix', '/'], env)
    expect(all.code).toBe(0)
    expect(all.stdout.toString()).toContain('purged 1')
    const otherKey = join(work, 'other.json')
    await run(['key', 'create', '--out', otherKey, '--scrypt-n', '1024'], env)
    const refused = await run(
      ['purge', '--site', 'shop', '--node', node.url, '/price.txt', '--key', otherKey],
      env,
    )
    expect(refused.code).toBe(1)
    expect(refused.stdout.toString()).toContain('SHOAL_ERR_FORBIDDEN')
  }, 60_000)

  it('gets https:// URLs (from the origin) and stops cleanly on Ctrl-C', async () => {
    const file = join(work, 'price.txt')
    const before = hits
    const res = await run(['get', `${originUrl}/price.txt`, '-o', file])
    expect(res.stderr).toBe('')
    expect(res.code).toBe(0)
    expect(await readFile(file, 'utf8')).toBe(body)
    expect(hits).toBe(before + 1)
    // a body that never ends: SIGINT aborts, exit 130, no file
    const child = spawn(
      process.execPath,
      [
        '--disable-warning=ExperimentalWarning',
        BIN,
        'get',
        `${originUrl}/slow`,
        '-o',
        join(work, 'slow.txt'),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    let stderr = ''
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d
    })
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        if (slowStarted) {
          clearInterval(poll)
          resolve()
        }
      }, 20)
    })
    child.kill('SIGINT')
    const [code] = await once(child, 'close')
    expect(code).toBe(130)
    expect(stderr).toContain('interrupted')
    expect((await readdir(work)).filter((f) => f.includes('slow'))).toEqual([])
  }, 60_000)
})
