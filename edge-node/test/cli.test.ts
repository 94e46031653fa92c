import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'

const BIN = fileURLToPath(new URL('../bin/shoal-node.ts', import.meta.url))

function run(args: string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, ['--disable-warning=ExperimentalWarning', BIN, ...args], {
    env: { ...process.env, SHOAL_KEY_PASSPHRASE: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
}

async function output(child: ChildProcess): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d
  })
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d
  })
  const [code] = (await once(child, 'exit')) as [number | null]
  return { code, stdout, stderr }
}

describe('shoal-node command line', () => {
  let dir: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-cli-'))
  })
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('prints help', async () => {
    const res = await output(run(['--help']))
    expect(res.code).toBe(0)
    expect(res.stdout).toContain('shoal-node start')
  })

  it('refuses bad configuration with a clear message and exit code 2', async () => {
    const res = await output(run(['start', '--memory-cache', 'lots', '--data-dir', dir]))
    expect(res.code).toBe(2)
    expect(res.stderr).toContain('--memory-cache: "lots" is not a size')
    const badOrigin = await output(
      run(['start', '--origin', 'ftp://x', '--data-dir', dir, '--listen', '127.0.0.1:0']),
    )
    expect(badOrigin.code).toBe(2)
    expect(badOrigin.stderr).toContain('defaultOrigin must use http or https')
    const missingConfig = await output(run(['start', '--config', join(dir, 'none.json')]))
    expect(missingConfig.code).toBe(2)
    expect(missingConfig.stderr).toContain('cannot read config file')
  })

  it('starts with sensible defaults, creates a 0600 key on first start and stops cleanly on SIGTERM', async () => {
    const child = run(['start', '--listen', '127.0.0.1:0', '--data-dir', dir, '--log-level', 'warn'])
    const exited = output(child)
    const url = await new Promise<string>((resolve, reject) => {
      let seen = ''
      child.stdout?.on('data', (d: Buffer) => {
        seen += d
        const m = /serving at (\S+)/.exec(seen)
        if (m?.[1] !== undefined) resolve(m[1])
      })
      child.once('exit', (code) => reject(new Error(`exited early with ${code}`)))
    })
    const health = await request(`${url}/health`)
    const body = (await health.body.json()) as { status: string; node: string }
    expect(body.status).toBe('ok')
    expect(body.node).toMatch(/^0x[0-9a-fA-F]{40}$/)
    expect((await stat(join(dir, 'node-key.json'))).mode & 0o777).toBe(0o600)
    expect((await stat(join(dir, 'node-key.pass'))).mode & 0o777).toBe(0o600)
    expect(JSON.parse(await readFile(join(dir, 'node-key.json'), 'utf8')).address).toBe(
      body.node.slice(2).toLowerCase(),
    )
    child.kill('SIGTERM')
    const res = await exited
    expect(res.code).toBe(0)

    const shown = await output(run(['key', 'show', '--data-dir', dir]))
    expect(shown.stdout.trim()).toBe(body.node)
  })
})
