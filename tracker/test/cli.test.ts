import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { parseCommand, parseDuration, parseListen } from '../src/cli/args.ts'

const BIN = fileURLToPath(new URL('../bin/shoal-tracker.ts', import.meta.url))
let dirs: string[] = []
afterEach(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true })
  dirs = []
})

function run(
  args: string[],
  env: Record<string, string> = {},
  onLine?: (line: string, kill: () => void) => void,
) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', BIN, ...args], {
      env: { ...process.env, ...env },
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => {
      stdout += d
      for (const line of d.toString().split('\n'))
        if (line !== '') onLine?.(line, () => child.kill('SIGTERM'))
    })
    child.stderr.on('data', (d: Buffer) => {
      stderr += d
    })
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

describe('shoal-tracker argument parsing', () => {
  it('turns flags and environment into options, flags first', () => {
    const c = parseCommand(
      [
        'start',
        '--listen',
        '0.0.0.0:8000',
        '--probe-interval',
        '10s',
        '--epoch-length',
        '2h',
        '--allow-private-urls',
      ],
      {
        SHOAL_TRACKER_DATA_DIR: '/d',
        SHOAL_TRACKER_LISTEN: '1.2.3.4:1',
        SHOAL_TRACKER_POSTGRES: 'postgres://db/x',
      },
    )
    expect(c).toEqual({
      kind: 'start',
      dataDir: '/d',
      postgres: 'postgres://db/x',
      logLevel: 'info',
      options: {
        host: '0.0.0.0',
        port: 8000,
        probeIntervalMs: 10_000,
        epochSeconds: 7_200,
        allowPrivateUrls: true,
        meshProbe: true,
      },
    })
    expect(
      parseCommand(['start', '--distributor', `0x${'1'.repeat(40)}`], {
        SHOAL_RPC_URL: 'http://127.0.0.1:8545',
        SHOAL_ESCROW: `0x${'2'.repeat(40)}`,
      }),
    ).toMatchObject({
      chain: {
        rpcUrl: 'http://127.0.0.1:8545',
        distributor: `0x${'1'.repeat(40)}`,
        escrow: `0x${'2'.repeat(40)}`,
      },
    })
    // the mesh probe: on by default; off with a flag or SHOAL_MESH_PROBE=0
    expect(parseCommand(['start'], {})).toMatchObject({ options: { meshProbe: true } })
    expect(parseCommand(['start', '--mesh-probe'], { SHOAL_MESH_PROBE: '0' })).toMatchObject({
      options: { meshProbe: true },
    })
    expect(parseCommand(['start'], { SHOAL_MESH_PROBE: '1' })).toMatchObject({ options: { meshProbe: true } })
    expect(parseCommand(['start'], { SHOAL_MESH_PROBE: '0' })).toMatchObject({
      options: { meshProbe: false },
    })
    expect(parseCommand(['start', '--no-mesh-probe'], {})).toMatchObject({ options: { meshProbe: false } })
    expect(() => parseCommand(['start', '--mesh-probe', '--no-mesh-probe'], {})).toThrow('contradict')
    expect(() => parseCommand(['start'], { SHOAL_MESH_PROBE: 'yes' })).toThrow('SHOAL_MESH_PROBE')
    expect(parseCommand([], {})).toEqual({ kind: 'help' })
    expect(parseCommand(['key', 'show'], {})).toEqual({ kind: 'key-show', dataDir: './shoal-tracker-data' })
    expect(parseDuration('1.5m', 'x')).toBe(90_000)
    expect(parseListen('[::1]:80')).toEqual({ host: '::1', port: 80 })
  })

  it('refuses bad configuration with messages that name the flag', () => {
    const bad: [string[], string][] = [
      [['start', '--probe-interval', '30'], '--probe-interval'],
      [['start', '--probe-interval', '10ms'], 'at least 1s'],
      [['start', '--epoch-length', 'soon'], '--epoch-length'],
      [['start', '--listen', 'nowhere'], '--listen'],
      [['start', '--postgres', 'mysql://x'], '--postgres'],
      [['start', '--log-level', 'loud'], '--log-level'],
      [['start', '--nope'], 'nope'],
      [['stop'], 'unknown command'],
      [['start', '--rpc-url', 'http://127.0.0.1:8545'], '--distributor'],
      [
        [
          'start',
          '--rpc-url',
          'ftp://x',
          '--distributor',
          `0x${'1'.repeat(40)}`,
          '--escrow',
          `0x${'2'.repeat(40)}`,
        ],
        '--rpc-url',
      ],
      [
        [
          'start',
          '--rpc-url',
          'http://127.0.0.1:8545',
          '--distributor',
          '0x12',
          '--escrow',
          `0x${'2'.repeat(40)}`,
        ],
        '--distributor',
      ],
    ]
    for (const [argv, text] of bad) {
      expect(() => parseCommand(argv, {})).toThrow(
        expect.objectContaining({ code: 'SHOAL_ERR_INVALID_ARGUMENT' }),
      )
      expect(() => parseCommand(argv, {})).toThrow(text)
    }
  })
})

describe('shoal-tracker', () => {
  it('exits 2 with a clear message on bad configuration', async () => {
    const r = await run(['start', '--probe-interval', 'often'])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('shoal-tracker: --probe-interval: "often" is not a duration')
    const busy = await run(['start', '--listen', '127.0.0.1:99999'])
    expect(busy.code).toBe(2)
  })

  it('starts with a new key and SQLite store, serves the API, and stops on SIGTERM keeping its key', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shoal-tracker-cli-'))
    dirs.push(dir)
    let url = ''
    let health: unknown
    const r = await run(
      ['start', '--listen', '127.0.0.1:0', '--data-dir', dir, '--log-level', 'warn'],
      { SHOAL_KEY_PASSPHRASE: 'correct horse battery staple' },
      (line, kill) => {
        const m = /serving at (http:\S+)/.exec(line)
        if (m === null) return
        url = m[1]!
        fetch(`${url}/health`)
          .then((res) => res.json())
          .then((body) => {
            health = body
            kill()
          })
      },
    )
    expect(r.code).toBe(0)
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect(health).toEqual({ status: 'ok', nodes: 0 })
    expect((await stat(join(dir, 'tracker-key.json'))).mode & 0o777).toBe(0o600)
    expect((await stat(join(dir, 'tracker.db'))).isFile()).toBe(true)
    const address = JSON.parse(await readFile(join(dir, 'tracker-key.json'), 'utf8')).address as string
    const show = await run(['key', 'show', '--data-dir', dir])
    expect(show.stdout.trim().toLowerCase()).toBe(`0x${address.toLowerCase().replace(/^0x/, '')}`)
    const wrong = await run(['start', '--listen', '127.0.0.1:0', '--data-dir', dir], {
      SHOAL_KEY_PASSPHRASE: 'wrong',
    })
    expect(wrong.code).toBe(2)
    expect(wrong.stderr).toContain('wrong passphrase')
  }, 60_000)
})
