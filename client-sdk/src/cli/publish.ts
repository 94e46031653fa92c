/** `shoal publish <dir> --site NAME`: `publishDirectory` with a progress bar and a summary table. */
import { publishDirectory } from '../node/publish-directory.ts'
import type { Command } from './args.ts'
import { formatBytes, hostOf, renderTable } from './format.ts'
import { openKey } from './passphrase.ts'
import { createProgressBar } from './progress.ts'

type PublishCommand = Extract<Command, { kind: 'publish' }>

export async function runPublish(
  cmd: PublishCommand,
  env: NodeJS.ProcessEnv,
  signal: AbortSignal,
): Promise<number> {
  const account = await openKey(cmd.key, env, process.stdin.isTTY === true && process.stderr.isTTY === true)
  const bar = createProgressBar(process.stderr, cmd.progress)
  let summary: Awaited<ReturnType<typeof publishDirectory>>
  try {
    summary = await publishDirectory(cmd.dir, {
      site: cmd.site,
      tracker: cmd.tracker,
      account,
      signal,
      hidden: cmd.includeHidden ? 'include' : 'skip',
      ...(cmd.replicas === undefined ? {} : { replicas: cmd.replicas }),
      ...(cmd.origin === undefined ? {} : { origin: cmd.origin }),
      ...(cmd.cacheControl === undefined ? {} : { cacheControl: cmd.cacheControl }),
      ...(cmd.chunkSize === undefined ? {} : { chunkSize: cmd.chunkSize }),
      ...(cmd.concurrency === undefined ? {} : { concurrency: cmd.concurrency }),
      onProgress: (p) => bar.update(p.loaded, p.total, p.phase),
    })
  } finally {
    bar.stop()
  }
  const { manifest: _signed, ...rest } = summary
  if (cmd.json) {
    process.stdout.write(`${JSON.stringify(rest, null, 2)}\n`)
  } else {
    const byCid = new Map(summary.contents.map((c) => [c.cid, c]))
    const rows = summary.entries.map((e) => {
      const c = byCid.get(e.cid)
      return [e.path, formatBytes(e.size), e.cid, (c?.nodes ?? []).map(hostOf).join(' ') || '(none)']
    })
    process.stdout.write(`${renderTable(['path', 'size', 'cid', 'nodes'], rows)}\n`)
    const nodes = new Set(summary.contents.flatMap((c) => c.nodes))
    const pushed = summary.contents.reduce((n, c) => n + c.pushed.length, 0)
    const held = summary.contents.reduce((n, c) => n + c.skipped.length, 0)
    process.stdout.write(
      `published site ${summary.site} sequence ${summary.sequence}${summary.created ? ' (new site)' : ''}: ` +
        `${summary.files} files, ${formatBytes(summary.bytes)}; ${pushed} copies pushed ` +
        `(${formatBytes(summary.bytesPushed)}), ${held} already held, on ${nodes.size} nodes ` +
        `(${summary.replicas} replicas asked)\n`,
    )
  }
  const failures = summary.contents.flatMap((c) => c.failed.map((f) => ({ ...f, path: c.paths[0] })))
  for (const f of failures.slice(0, 10)) {
    process.stderr.write(
      `shoal: push of ${f.path} to ${f.node} failed (replaced by another node): ${f.message}\n`,
    )
  }
  if (failures.length > 10) process.stderr.write(`shoal: … and ${failures.length - 10} more failed pushes\n`)
  const short = summary.contents.filter((c) => c.nodes.length > 0 && c.nodes.length < summary.replicas)
  if (short.length > 0) {
    const fewest = Math.min(...short.map((c) => c.nodes.length))
    process.stderr.write(
      `shoal: ${short.length} of ${summary.contents.length} contents are on fewer than ${summary.replicas} nodes ` +
        `(down to ${fewest}): the tracker listed too few nodes that took them\n`,
    )
  }
  if (summary.unplaced.length > 0) {
    process.stderr.write(
      `shoal: no node took ${summary.unplaced.length} content(s); the manifest is registered but those paths cannot be served yet\n`,
    )
    return 1
  }
  return 0
}
