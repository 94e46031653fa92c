/**
 * The lifecycle of a long-running service's command line (`shoal-node`,
 * `shoal-tracker`): wait for SIGTERM/SIGINT and stop gracefully, and turn a fatal error
 * into an operator's message and exit code (2 for bad configuration, 1 otherwise).
 */
import { readFile } from 'node:fs/promises'
import { isShoalError } from '@shoal/protocol'

export interface ServiceLog {
  info(fields: object, message: string): void
  warn(fields: object, message: string): void
  error(fields: object, message: string): void
}

/**
 * Resolves once the service has stopped after SIGTERM or SIGINT (or, when a supervisor
 * started it with an IPC channel, once that channel closes); a second signal exits at
 * once with status 1.
 *
 * @example
 * await untilStopped(() => node.stop(), log, 'finishing in-flight responses')
 */
export function untilStopped(stop: () => Promise<void>, log: ServiceLog, what: string): Promise<void> {
  return new Promise<void>((resolve) => {
    let stopping = false
    const onSignal = (signal: string) => {
      if (stopping) {
        log.warn({ signal }, 'second signal: exiting now')
        process.exit(1)
      }
      stopping = true
      log.info({ signal }, `stopping: ${what}`)
      stop().then(resolve, (err: unknown) => {
        log.error({ err: (err as Error).message }, 'stop failed')
        resolve()
      })
    }
    process.on('SIGTERM', () => onSignal('SIGTERM'))
    process.on('SIGINT', () => onSignal('SIGINT'))
    // started by a supervisor with an IPC channel (the devnet): when the supervisor goes
    // away, the channel closes, and the service stops instead of living on as an orphan
    if (process.connected) process.once('disconnect', () => onSignal('parent gone'))
  })
}

/** Prints a fatal error for the operator and exits: 2 for configuration problems, else 1. */
export function exitOnFatal(name: string, err: unknown): never {
  if (isShoalError(err)) {
    process.stderr.write(`${name}: ${err.message}\n`)
    process.exit(err.code === 'SHOAL_ERR_INVALID_ARGUMENT' || err.code === 'SHOAL_ERR_INVALID_FORMAT' ? 2 : 1)
  }
  const e = err as NodeJS.ErrnoException
  if (e.code === 'EADDRINUSE' || e.code === 'EACCES' || e.code === 'EADDRNOTAVAIL') {
    process.stderr.write(`${name}: cannot listen: ${e.message}\n`)
    process.exit(2)
  }
  process.stderr.write(`${name}: ${e.stack ?? String(err)}\n`)
  process.exit(1)
}

/**
 * The `version` of the package.json at `url` (a command line's `--version`).
 *
 * @example
 * process.stdout.write(`${await packageVersion(new URL('../package.json', import.meta.url))}\n`)
 */
export async function packageVersion(url: URL): Promise<string> {
  const pkg = JSON.parse(await readFile(url, 'utf8')) as { version?: unknown }
  return String(pkg.version)
}
