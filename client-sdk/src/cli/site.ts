/** `shoal site show <name>`: the tracker's manifest for a site, verified, as a table. */
import { NotFoundError, verifySiteManifest } from '@shoal/protocol'
import { createTrackerClient } from '../tracker-client.ts'
import type { Command } from './args.ts'
import { formatBytes, renderTable } from './format.ts'

type SiteShowCommand = Extract<Command, { kind: 'site-show' }>

export async function runSiteShow(cmd: SiteShowCommand, signal: AbortSignal): Promise<number> {
  const tracker = createTrackerClient({ url: cmd.tracker })
  const signed = await tracker.getSite(cmd.site, { signal })
  if (signed === undefined) throw new NotFoundError(`the tracker has no site "${cmd.site}"`)
  // the tracker checked it; check again: this output is what a publisher trusts
  const manifest = await verifySiteManifest(signed, { maxAgeSeconds: Number.POSITIVE_INFINITY })
  if (cmd.json) {
    process.stdout.write(`${JSON.stringify(manifest, null, 2)}\n`)
    return 0
  }
  const lines = [
    `site       ${manifest.site}`,
    `publisher  ${manifest.publisher}`,
    `sequence   ${manifest.sequence}`,
    `published  ${new Date(manifest.timestamp * 1000).toISOString()}`,
    `origin     ${manifest.origin || '(none)'}`,
    `entries    ${manifest.entries.length} (${formatBytes(manifest.entries.reduce((s, e) => s + e.size, 0))})`,
  ]
  process.stdout.write(`${lines.join('\n')}\n`)
  if (manifest.entries.length > 0) {
    const rows = manifest.entries.map((e) => [e.path, formatBytes(e.size), e.contentType, e.cid])
    process.stdout.write(`${renderTable(['path', 'size', 'type', 'cid'], rows)}\n`)
  }
  return 0
}
