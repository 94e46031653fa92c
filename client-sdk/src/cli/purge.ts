/** `shoal purge --site NAME --node URL <path…> [--prefix]`: one signed purge request to each node. */
import { purgeSite } from '../node/purge-site.ts'
import type { Command } from './args.ts'
import { hostOf, renderTable } from './format.ts'
import { openKey } from './passphrase.ts'

type PurgeCommand = Extract<Command, { kind: 'purge' }>

export async function runPurge(
  cmd: PurgeCommand,
  env: NodeJS.ProcessEnv,
  signal: AbortSignal,
): Promise<number> {
  const account = await openKey(cmd.key, env, process.stdin.isTTY === true && process.stderr.isTTY === true)
  const results = await purgeSite({
    site: cmd.site,
    ...(cmd.prefix ? { prefixes: cmd.paths } : { paths: cmd.paths }),
    account,
    nodes: cmd.nodes,
    signal,
  })
  if (cmd.json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`)
  else {
    const rows = results.map((r) => [hostOf(r.node), r.ok ? `purged ${r.purged}` : `${r.code}: ${r.message}`])
    process.stdout.write(`${renderTable(['node', 'result'], rows)}\n`)
  }
  return results.every((r) => r.ok) ? 0 : 1
}
