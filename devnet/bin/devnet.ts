#!/usr/bin/env node
/**
 * `npm start`: boots the devnet, shows progress, prints the summary and the URLs, and
 * stays up until Ctrl-C (or exits after the summary with --exit). A child process that
 * dies is reported and the devnet shuts down instead of hanging.
 */
import { isShoalError } from '@shoal/protocol'
import { parseDevnetArgs } from '../src/args.ts'
import { type Devnet, startDevnet } from '../src/devnet.ts'
import { createProgress } from '../src/progress.ts'
import { runScenario } from '../src/scenario.ts'
import { ServiceStartError } from '../src/supervisor.ts'

async function main(argv: string[]): Promise<number> {
  const command = parseDevnetArgs(argv)
  if (command.kind === 'help') {
    process.stdout.write(command.text)
    return 0
  }
  const progress = createProgress(process.stdout)
  const started = Date.now()
  let devnet: Devnet | undefined
  let stopping: Promise<void> | undefined
  const shutdown = (why: string, code: number) => {
    stopping ??= (async () => {
      process.stdout.write(`\n${why}: stopping every process the devnet started…\n`)
      await devnet?.stop()
      if (devnet !== undefined) {
        process.stdout.write(
          devnet.keep ? `kept the data in ${devnet.dataDir}\n` : 'removed the temporary data\n',
        )
      }
      process.exit(code)
    })()
    return stopping
  }
  let interrupted = false
  process.on('SIGINT', () => {
    if (interrupted) process.exit(130)
    interrupted = true
    void shutdown('Ctrl-C', 0)
  })
  process.on('SIGTERM', () => void shutdown('SIGTERM', 0))

  devnet = await startDevnet(command, progress)
  devnet.onCrash((exit) => {
    process.stderr.write(
      `\n${exit.service} (pid ${exit.pid}) exited unexpectedly (${exit.signal ?? `code ${exit.code}`}). Its last log lines:\n${exit.tail}\n`,
    )
    void shutdown('a devnet process crashed', 1)
  })
  let result: Awaited<ReturnType<typeof runScenario>>
  try {
    result = await runScenario(devnet, progress)
  } catch (err) {
    process.stderr.write(`\nnpm start: ${(err as Error).message}\nlogs: ${devnet.dataDir} (kept)\n`)
    await devnet.stop({ keep: true })
    return 1
  }
  process.stdout.write(`\n${result.table}\n`)
  process.stdout.write(`\nReady in ${((Date.now() - started) / 1000).toFixed(1)} s.\n`)
  if (command.exit) {
    await shutdown('--exit', 0)
    return 0
  }
  process.stdout.write('Press Ctrl-C to stop.\n')
  await new Promise(() => {})
  return 0
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (isShoalError(err)) {
      process.stderr.write(`npm start: ${err.message}\n`)
      process.exit(err.code === 'SHOAL_ERR_INVALID_ARGUMENT' ? 2 : 1)
    }
    if (err instanceof ServiceStartError) {
      process.stderr.write(`npm start: ${err.message}\n${err.tail}\n`)
      process.exit(1)
    }
    process.stderr.write(`npm start: ${(err as Error).stack ?? String(err)}\n`)
    process.exit(1)
  },
)
