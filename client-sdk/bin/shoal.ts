#!/usr/bin/env node
/**
 * `shoal`: the publisher's and app developer's command line. The only place that reads
 * argv and the environment; the commands take plain options.
 */
import { parseCommand, USAGE } from '../src/cli/args.ts'
import { runGet } from '../src/cli/get.ts'
import { runKeyCreate, runKeyShow } from '../src/cli/key.ts'
import { runPublish } from '../src/cli/publish.ts'
import { runPurge } from '../src/cli/purge.ts'
import { runSiteShow } from '../src/cli/site.ts'
import { exitOnFatal, packageVersion } from '../src/node/service.ts'

const controller = new AbortController()

async function main(argv: string[]): Promise<number> {
  const command = parseCommand(argv, process.env)
  // Ctrl-C aborts the work (a partial download is removed); a second one exits at once
  process.once('SIGINT', () => {
    controller.abort()
    process.once('SIGINT', () => process.exit(130))
  })
  const { signal } = controller
  switch (command.kind) {
    case 'help':
      process.stdout.write(USAGE)
      return 0
    case 'version':
      process.stdout.write(`${await packageVersion(new URL('../package.json', import.meta.url))}\n`)
      return 0
    case 'get':
      return runGet(command, signal)
    case 'publish':
      return runPublish(command, process.env, signal)
    case 'purge':
      return runPurge(command, process.env, signal)
    case 'site-show':
      return runSiteShow(command, signal)
    case 'key-create':
      return runKeyCreate(command, process.env)
    case 'key-show':
      return runKeyShow(command)
  }
}

/** Exits once what was written to stdout has been flushed (a pipe may still hold some). */
function exitAfterFlush(code: number): void {
  process.stdout.write('', () => process.exit(code))
}

main(process.argv.slice(2)).then(exitAfterFlush, (err: unknown) => {
  if (controller.signal.aborted) {
    process.stderr.write('shoal: interrupted\n')
    process.exit(130)
  }
  exitOnFatal('shoal', err)
})
