/**
 * Purging cached copies of a site's paths on edge nodes with a signed `PurgeRequest`.
 *
 * A node keeps purgeable copies only of origin-pull sites (`/s/<site>/…` in front of an
 * HTTP origin), and it accepts the purge when the request is signed by the publisher its
 * operator configured for that site (`--publisher NAME=0x…`). Content named by a site
 * manifest is addressed by its content id and never stale: it changes by publishing a new
 * manifest, not by purging.
 */
import { randomBytes } from 'node:crypto'
import {
  comparePaths,
  encodePurgeRequest,
  InvalidArgumentError,
  isShoalError,
  pathProblem,
  type RecordSigner,
  signPurgeRequest,
} from '@shoal/protocol'
import { bytesToHex } from 'viem'
import { callNode } from './node-http.ts'

export interface PurgeOptions {
  site: string
  /** Exact paths (percent-decoded, e.g. `/café/menu.html`). */
  paths?: readonly string[]
  /** Path prefixes (`/img/`, or `/` for the whole site). */
  prefixes?: readonly string[]
  /** The publisher's key. */
  account: RecordSigner & { address: `0x${string}` }
  /** Base URLs of the nodes to purge. */
  nodes: readonly string[]
  signal?: AbortSignal
}

/** One node's answer: how many cached responses it dropped, or why it refused. */
export type PurgeResult =
  | { node: string; ok: true; purged: number }
  | { node: string; ok: false; code: string; message: string }

function normalized(list: readonly string[], prefix: boolean): string[] {
  const out = new Set<string>()
  for (const raw of list) {
    const path = raw.normalize('NFC')
    const problem = pathProblem(path, prefix)
    if (problem !== undefined)
      throw new InvalidArgumentError(`${prefix ? 'prefix' : 'path'} "${raw}" ${problem}`)
    out.add(path)
  }
  return [...out].sort(comparePaths)
}

/**
 * Signs one purge request and sends it to every node in `nodes` (in parallel). Resolves
 * to each node's answer; it never throws for a node's refusal.
 *
 * @example
 * const results = await purgeSite({ site: 'shop', paths: ['/index.html'], prefixes: ['/img/'],
 *   account, nodes: ['http://127.0.0.1:7480/'] })
 * for (const r of results) console.log(r.node, r.ok ? r.purged : r.code)
 */
export async function purgeSite(options: PurgeOptions): Promise<PurgeResult[]> {
  const paths = normalized(options.paths ?? [], false)
  const prefixes = normalized(options.prefixes ?? [], true)
  if (paths.length + prefixes.length === 0)
    throw new InvalidArgumentError('purge needs at least one path or prefix')
  if (options.nodes.length === 0) throw new InvalidArgumentError('purge needs at least one node')
  const signed = await signPurgeRequest(options.account, {
    publisher: options.account.address,
    site: options.site,
    paths,
    prefixes,
    timestamp: Math.floor(Date.now() / 1000),
    nonce: bytesToHex(randomBytes(32)),
  })
  const body = encodePurgeRequest(signed)
  return Promise.all(
    options.nodes.map(async (node): Promise<PurgeResult> => {
      try {
        const res = await callNode(node, '/admin/purge', {
          method: 'POST',
          body,
          headers: { 'content-type': 'application/json' },
          ...(options.signal ? { signal: options.signal } : {}),
        })
        const purged = (res.body as { purged?: unknown } | undefined)?.purged
        return { node, ok: true, purged: typeof purged === 'number' ? purged : 0 }
      } catch (err) {
        if (options.signal?.aborted) throw err
        return isShoalError(err)
          ? { node, ok: false, code: err.code, message: err.message }
          : { node, ok: false, code: 'SHOAL_ERR_INTERNAL', message: (err as Error).message }
      }
    }),
  )
}
