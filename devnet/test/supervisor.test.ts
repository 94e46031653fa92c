/**
 * The devnet's supervisor with real child processes: it reports a child that dies while
 * the devnet runs (with the child's last log lines), says why a child failed to start,
 * stops a child that ignores SIGTERM, and a killed devnet leaves no orphan behind.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isAlive } from '../../test-support/processes.ts'
import { createSupervisor, type ServiceExit, ServiceStartError } from '../src/supervisor.ts'

async function until(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs
  while (Date.now() < end) {
    if (check()) return true
    await new Promise((r) => setTimeout(r, 25))
  }
  return check()
}

describe('the devnet supervisor', () => {
  let dir: string
  const script = async (name: string, text: string) => {
    const file = join(dir, name)
    await writeFile(file, text)
    return file
  }
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-supervisor-'))
  })
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('reports a child that dies after it started, with its last log lines, once', async () => {
    const steady = await script(
      'steady.mjs',
      `console.log('listening on http://127.0.0.1:1/'); setInterval(() => {}, 1000)`,
    )
    const crashing = await script(
      'crash.mjs',
      `console.log('listening on http://127.0.0.1:2/')
       setTimeout(() => { console.error('fatal: disk on fire'); process.exit(3) }, 300)`,
    )
    const supervisor = createSupervisor()
    const crashes: ServiceExit[] = []
    supervisor.onCrash((exit) => crashes.push(exit))
    try {
      const ready = /listening on (?<url>\S+)/
      const first = await supervisor.start({
        name: 'node 1',
        script: steady,
        args: [],
        logFile: join(dir, 'n1.log'),
        ready,
      })
      expect(first.url).toBe('http://127.0.0.1:1/')
      const second = await supervisor.start({
        name: 'node 2',
        script: crashing,
        args: [],
        logFile: join(dir, 'n2.log'),
        ready,
      })
      expect(supervisor.pids).toEqual([first.pid, second.pid])
      expect(await until(() => crashes.length === 1, 5_000)).toBe(true)
      expect(crashes[0]).toMatchObject({ service: 'node 2', pid: second.pid, code: 3, signal: null })
      expect(crashes[0]?.tail).toContain('fatal: disk on fire')
      // a second death while the devnet is already going down is not reported again
      process.kill(first.pid, 'SIGKILL')
      await new Promise((r) => setTimeout(r, 200))
      expect(crashes).toHaveLength(1)
    } finally {
      await supervisor.stopAll(1_000)
    }
  })

  it('says why a child could not start: its exit and its last words, or the time it was given', async () => {
    const supervisor = createSupervisor()
    try {
      const failing = await script(
        'fail.mjs',
        `console.error('shoal-node: --port: 70000 is not a port'); process.exit(2)`,
      )
      const error = await supervisor
        .start({
          name: 'node 1',
          script: failing,
          args: [],
          logFile: join(dir, 'fail.log'),
          ready: /listening/,
        })
        .catch((err: unknown) => err)
      expect(error).toBeInstanceOf(ServiceStartError)
      expect((error as ServiceStartError).message).toBe('node 1 exited while starting (code 2)')
      expect((error as ServiceStartError).tail).toContain('--port: 70000 is not a port')

      const silent = await script('silent.mjs', `console.log('warming up'); setInterval(() => {}, 1000)`)
      const slow = await supervisor
        .start({
          name: 'tracker',
          script: silent,
          args: [],
          logFile: join(dir, 'silent.log'),
          ready: /listening/,
          readyTimeoutMs: 500,
        })
        .catch((err: unknown) => err)
      expect(slow).toBeInstanceOf(ServiceStartError)
      expect((slow as ServiceStartError).message).toBe('tracker did not start within 0.5 s')
      expect((slow as ServiceStartError).tail).toContain('warming up')
    } finally {
      await supervisor.stopAll(1_000)
    }
  })

  it('stops a child that ignores SIGTERM with SIGKILL after the grace period', async () => {
    const stubborn = await script(
      'stubborn.mjs',
      `process.on('SIGTERM', () => console.log('not stopping')); console.log('listening on x'); setInterval(() => {}, 1000)`,
    )
    const supervisor = createSupervisor()
    const service = await supervisor.start({
      name: 'node 1',
      script: stubborn,
      args: [],
      logFile: join(dir, 'stubborn.log'),
      ready: /listening on (\S+)/,
    })
    expect(service.url).toBe('x')
    const started = Date.now()
    await supervisor.stopAll(300)
    expect(Date.now() - started).toBeGreaterThanOrEqual(250)
    expect(isAlive(service.pid)).toBe(false)
  })

  it('a killed devnet leaves no orphan: a Shoal service stops when its supervisor disappears', async () => {
    const serviceModule = new URL('../../client-sdk/src/node/service.ts', import.meta.url).href
    const supervisorModule = new URL('../src/supervisor.ts', import.meta.url).href
    const service = await script(
      'service.ts',
      `import { untilStopped } from '${serviceModule}'
       const log = { info: (_f: object, m: string) => console.log(m), warn() {}, error() {} }
       const timer = setInterval(() => {}, 1000)
       console.log('listening on http://127.0.0.1:2/')
       await untilStopped(async () => clearInterval(timer), log, 'nothing in flight')
       console.log('stopped')`,
    )
    // a stand-in for the devnet: starts the service through the supervisor, says its PID
    const devnet = await script(
      'devnet.ts',
      `import { createSupervisor } from '${supervisorModule}'
       const s = createSupervisor()
       const svc = await s.start({ name: 'node 1', script: ${JSON.stringify(service)}, args: [],
         logFile: ${JSON.stringify(join(dir, 'orphan.log'))}, ready: /listening on (\\S+)/ })
       console.log('child ' + svc.pid)
       setInterval(() => {}, 1000)`,
    )
    const parent = spawn(process.execPath, [devnet], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    parent.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString()
    })
    expect(await until(() => /child \d+/.test(out), 15_000)).toBe(true)
    const childPid = Number(/child (\d+)/.exec(out)?.[1])
    expect(isAlive(childPid)).toBe(true)
    const exited = once(parent, 'exit')
    parent.kill('SIGKILL')
    await exited
    const gone = await until(() => !isAlive(childPid), 10_000)
    if (!gone) process.kill(childPid, 'SIGKILL')
    expect(gone).toBe(true)
  })
})
