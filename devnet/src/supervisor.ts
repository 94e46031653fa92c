/**
 * Child processes of the devnet: each service (tracker, edge nodes) runs its real
 * command line as its own process, with its log in a file. The supervisor waits for
 * the line that says a service is serving, notices a child that dies while the devnet
 * runs (so the devnet can report it and shut down instead of hanging), and stops every
 * child it started — by its PID, SIGTERM first and SIGKILL after a grace period.
 *
 * Children are spawned with an IPC channel: a Shoal service whose parent disappears
 * (the channel disconnects) stops itself, so even a killed devnet leaves no orphans.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { createWriteStream, type WriteStream } from 'node:fs'
import { readFile } from 'node:fs/promises'

export interface ServiceSpec {
  /** A name for messages: `tracker`, `node 3`. */
  name: string
  /** The script run with this Node (`process.execPath`). */
  script: string
  args: string[]
  env?: Record<string, string>
  /** Where stdout and stderr go. */
  logFile: string
  /** The line that says it is up; its `url` group (else its first group) is the service's URL. */
  ready: RegExp
  /** Default 30 s. */
  readyTimeoutMs?: number
}

export interface Service {
  readonly name: string
  readonly pid: number
  /** The URL captured from the ready line. */
  readonly url: string
  /** The whole ready line's match. */
  readonly match: RegExpMatchArray
  readonly logFile: string
}

export interface ServiceExit {
  service: string
  pid: number
  code: number | null
  signal: NodeJS.Signals | null
  /** The last lines of its log. */
  tail: string
}

export interface Supervisor {
  start(spec: ServiceSpec): Promise<Service>
  /** Called once when a child exits while the supervisor is not stopping. */
  onCrash(listener: (exit: ServiceExit) => void): void
  /** Stops every child (SIGTERM, then SIGKILL after `graceMs`). */
  stopAll(graceMs?: number): Promise<void>
  readonly pids: readonly number[]
}

/** A service that could not start: what it said before it gave up. */
export class ServiceStartError extends Error {
  override name = 'ServiceStartError'
  /** The last lines the service wrote. */
  readonly tail: string
  constructor(message: string, tail: string) {
    super(message)
    this.tail = tail
  }
}

async function tailOf(file: string, lines = 12): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '')
  return text.trimEnd().split('\n').slice(-lines).join('\n')
}

export function createSupervisor(): Supervisor {
  const children: { name: string; child: ChildProcess; log: WriteStream; logFile: string }[] = []
  const crashListeners: ((exit: ServiceExit) => void)[] = []
  let stopping = false
  let crashed = false

  const start = async (spec: ServiceSpec): Promise<Service> => {
    if (stopping) throw new Error('the devnet is stopping')
    const log = createWriteStream(spec.logFile, { flags: 'a' })
    await once(log, 'open')
    const child = spawn(process.execPath, [spec.script, ...spec.args], {
      env: { ...process.env, ...spec.env },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      // its own process group: Ctrl-C in the terminal reaches the devnet only, which
      // then stops its children in order (they still stop if the devnet dies: IPC)
      detached: true,
    })
    if (child.pid === undefined) {
      log.end()
      await once(child, 'error').catch(() => {})
      throw new ServiceStartError(`${spec.name} could not be started`, '')
    }
    const pid = child.pid
    const entry = { name: spec.name, child, log, logFile: spec.logFile }
    children.push(entry)
    child.stderr!.pipe(log, { end: false })

    let buffered = ''
    const readyTimeoutMs = spec.readyTimeoutMs ?? 30_000
    const match = await new Promise<RegExpMatchArray>((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup()
        reject(new ServiceStartError(`${spec.name} did not start within ${readyTimeoutMs / 1000} s`, ''))
      }, readyTimeoutMs)
      const onData = (chunk: Buffer) => {
        log.write(chunk)
        buffered = (buffered + chunk.toString('utf8')).slice(-8192)
        const m = spec.ready.exec(buffered)
        if (m !== null) {
          cleanup()
          resolve(m)
        }
      }
      const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
        cleanup()
        reject(
          new ServiceStartError(`${spec.name} exited while starting (${signal ?? `code ${code}`})`, buffered),
        )
      }
      const cleanup = () => {
        clearTimeout(timer)
        child.stdout!.off('data', onData)
        child.off('exit', onExit)
      }
      child.stdout!.on('data', onData)
      child.once('exit', onExit)
    }).catch(async (err: unknown) => {
      if (err instanceof ServiceStartError) {
        await new Promise((r) => setTimeout(r, 50))
        throw new ServiceStartError(err.message, await tailOf(spec.logFile))
      }
      throw err
    })
    child.stdout!.pipe(log, { end: false })
    child.once('exit', (code, signal) => {
      if (stopping || crashed) return
      crashed = true
      void tailOf(spec.logFile).then((tail) => {
        for (const listener of crashListeners) listener({ service: spec.name, pid, code, signal, tail })
      })
    })
    return { name: spec.name, pid, url: match.groups?.url ?? match[1] ?? '', match, logFile: spec.logFile }
  }

  return {
    start,
    onCrash(listener) {
      crashListeners.push(listener)
    },
    get pids() {
      return children.map((c) => c.child.pid!)
    },
    async stopAll(graceMs = 5_000) {
      stopping = true
      await Promise.all(
        children.map(async ({ child, log }) => {
          if (child.exitCode === null && child.signalCode === null) {
            const exited = once(child, 'exit')
            child.kill('SIGTERM')
            const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
            await exited
            clearTimeout(timer)
          }
          await new Promise<void>((resolve) => log.end(resolve))
        }),
      )
      children.length = 0
    },
  }
}
