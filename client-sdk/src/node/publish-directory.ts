/**
 * Publishing a directory as a Shoal site: hash every file into a content id, sign the
 * site manifest with the publisher's key, register it with the tracker and push the
 * content to the nodes the tracker places it on.
 *
 * The order follows the tracker's and the nodes' rules:
 * 1. files are hashed first (nothing is sent for a directory that cannot be published);
 * 2. the tracker's current manifest gives the owner (another publisher's site fails here,
 *    `SHOAL_ERR_FORBIDDEN`, before anything is sent) and the sequence (previous + 1);
 * 3. nodes are selected per content id (`GET /v1/select`), the ones clients will ask;
 * 4. the manifest is registered with the tracker (`POST /v1/sites`): this claims the
 *    site name, and a node asked to take the manifest checks its publisher against the
 *    tracker's;
 * 5. each selected node gets the manifest (`PUT /manifests/<site>`; a node that accepts
 *    pushes only for content a manifest it holds names needs it first), then the bytes
 *    (`PUT /c/<cid>`), unless it already holds them (`HEAD /c/<cid>`). A node that fails
 *    is replaced by the next one the tracker listed.
 */
import { createReadStream } from 'node:fs'
import {
  type Cid,
  computeCid,
  DEFAULT_CHUNK_SIZE,
  encodeSiteManifest,
  ForbiddenError,
  IntegrityError,
  InvalidArgumentError,
  isShoalError,
  type ManifestEntry,
  type RecordSigner,
  type Signed,
  type SiteManifest,
  signSiteManifest,
  throwIfAborted,
  UnavailableError,
} from '@shoal/protocol'
import pMap from 'p-map'
import { createTrackerClient, type SelectedNode, type TrackerClient } from '../tracker-client.ts'
import { contentTypeOf } from './content-type.ts'
import { callNode } from './node-http.ts'
import { type WalkedFile, walkDirectory } from './walk-directory.ts'

/** Nodes each content is pushed to. */
export const DEFAULT_REPLICAS = 3
/** Contents pushed at once (each to its replicas in parallel). */
export const DEFAULT_PUSH_CONCURRENCY = 4
/** Extra nodes asked of the tracker per content, to replace nodes that fail. */
const SPARE_NODES = 3
const MAX_SELECT = 32
const SITE_RE = /^[a-z0-9][a-z0-9-]{0,62}$/

export type PublishProgress =
  /** Hashing the files: bytes read of all files. */
  | { phase: 'hash'; loaded: number; total: number }
  /** Pushing: bytes sent or found already held, over all replicas. */
  | { phase: 'push'; loaded: number; total: number }

export interface PublishOptions {
  /** The site name (`[a-z0-9][a-z0-9-]{0,62}`). */
  site: string
  /** The tracker: its base URL or a tracker client. */
  tracker: string | TrackerClient
  /** The publisher's key: signs the manifest, owns the site. */
  account: RecordSigner & { address: `0x${string}` }
  /** Nodes each content is pushed to (1–32, default 3). */
  replicas?: number
  /** Chunk size of the content ids (default 256 KiB). */
  chunkSize?: number
  /** The manifest's origin URL (`''`, the default: content only on the nodes). */
  origin?: string
  /** `Cache-Control` of every entry (`''`, the default: the edge's own). */
  cacheControl?: string
  /** Hidden files (names starting with `.`, except `.well-known`): `skip` (default) or `include`. */
  hidden?: 'skip' | 'include'
  /** Contents pushed at once (default 4). */
  concurrency?: number
  /** The region hint passed to the tracker's selection. */
  region?: string
  signal?: AbortSignal
  onProgress?: (progress: PublishProgress) => void
}

export interface PushFailure {
  node: string
  code: string
  message: string
}

/** Where one content id ended up. */
export interface PublishedContent {
  cid: string
  size: number
  /** The site paths with these bytes. */
  paths: string[]
  /** Nodes that hold it now (pushed or already held), by base URL. */
  nodes: string[]
  pushed: string[]
  skipped: string[]
  failed: PushFailure[]
}

export interface PublishSummary {
  site: string
  publisher: string
  sequence: number
  /** True when this publish created the site. */
  created: boolean
  files: number
  bytes: number
  entries: ManifestEntry[]
  contents: PublishedContent[]
  /** Replicas asked for. */
  replicas: number
  /** Bytes sent to nodes (skipped copies not counted). */
  bytesPushed: number
  /** Every content reached the replicas asked for. */
  complete: boolean
  /** Content ids no node took: the site is published but these paths cannot be served yet. */
  unplaced: string[]
  /** The signed manifest as registered. */
  manifest: Signed<SiteManifest>
}

async function* counted(file: string, onBytes: (n: number) => void): AsyncGenerator<Uint8Array> {
  for await (const piece of createReadStream(file) as AsyncIterable<Buffer>) {
    onBytes(piece.length)
    yield piece
  }
}

function failureOf(node: string, err: unknown): PushFailure {
  return isShoalError(err)
    ? { node, code: err.code, message: err.message }
    : { node, code: 'SHOAL_ERR_INTERNAL', message: (err as Error).message }
}

/**
 * Publishes the files of `dir` as site `site`: see the module comment for the steps.
 * Resolves to a summary (files, bytes, content ids, the nodes of each); content no node
 * took is listed in `unplaced` (the manifest is registered all the same).
 *
 * @example
 * const account = await loadKeystoreFile('publisher.json', passphrase)
 * const summary = await publishDirectory('./public', {
 *   site: 'blog', tracker: 'http://127.0.0.1:7470', account, replicas: 2,
 *   onProgress: (p) => console.error(p.phase, p.loaded, '/', p.total),
 * })
 * console.log(summary.sequence, summary.contents.map((c) => [c.cid, c.nodes]))
 */
export async function publishDirectory(dir: string, options: PublishOptions): Promise<PublishSummary> {
  const { site, account, signal, onProgress } = options
  if (typeof site !== 'string' || !SITE_RE.test(site)) {
    throw new InvalidArgumentError(`"${site}" is not a site name (lowercase letters, digits and -, up to 63)`)
  }
  const replicas = options.replicas ?? DEFAULT_REPLICAS
  if (!Number.isSafeInteger(replicas) || replicas < 1 || replicas > MAX_SELECT)
    throw new InvalidArgumentError(`replicas must be an integer from 1 to ${MAX_SELECT}`)
  const concurrency = options.concurrency ?? DEFAULT_PUSH_CONCURRENCY
  if (!Number.isSafeInteger(concurrency) || concurrency < 1)
    throw new InvalidArgumentError('concurrency must be a positive integer')
  const tracker =
    typeof options.tracker === 'string' ? createTrackerClient({ url: options.tracker }) : options.tracker

  // 1. hash
  const files = await walkDirectory(dir, { ...(options.hidden ? { hidden: options.hidden } : {}), signal })
  const total = files.reduce((sum, f) => sum + f.size, 0)
  let hashed = 0
  onProgress?.({ phase: 'hash', loaded: 0, total })
  const entries: ManifestEntry[] = []
  const contents = new Map<string, { cid: Cid; file: WalkedFile; paths: string[] }>()
  for (const file of files) {
    const { cid } = await computeCid(
      counted(file.file, (n) => {
        hashed += n
        onProgress?.({ phase: 'hash', loaded: hashed, total })
      }),
      { chunkSize: options.chunkSize ?? DEFAULT_CHUNK_SIZE, ...(signal ? { signal } : {}) },
    )
    if (cid.size !== file.size) throw new IntegrityError(`${file.file} changed while it was read`)
    entries.push({
      path: file.path,
      cid: cid.text,
      size: cid.size,
      contentType: contentTypeOf(file.path),
      cacheControl: options.cacheControl ?? '',
    })
    const known = contents.get(cid.text)
    if (known === undefined) contents.set(cid.text, { cid, file, paths: [file.path] })
    else known.paths.push(file.path)
  }

  // 2. owner and sequence
  const previous = await tracker.getSite(site, signal ? { signal } : {})
  if (previous !== undefined && previous.message.publisher.toLowerCase() !== account.address.toLowerCase()) {
    throw new ForbiddenError(
      `site "${site}" belongs to ${previous.message.publisher}, not ${account.address}`,
    )
  }
  const signed = await signSiteManifest(account, {
    publisher: account.address,
    site,
    sequence: (previous?.message.sequence ?? 0) + 1,
    origin: options.origin ?? '',
    timestamp: Math.floor(Date.now() / 1000),
    entries,
  })

  // 3. placement
  const count = Math.min(MAX_SELECT, replicas + SPARE_NODES)
  const placements = new Map<string, SelectedNode[]>()
  await pMap(
    [...contents.keys()],
    async (cid) => {
      placements.set(
        cid,
        await tracker.select(cid, {
          count,
          ...(options.region ? { region: options.region } : {}),
          ...(signal ? { signal } : {}),
        }),
      )
    },
    { concurrency: 8, ...(signal ? { signal } : {}) },
  )
  if (contents.size > 0 && [...placements.values()].every((nodes) => nodes.length === 0)) {
    throw new UnavailableError('the tracker has no active node to push the content to; nothing was published')
  }

  // 4. register
  const published = await tracker.publishSite(signed, signal ? { signal } : {})

  // 5. push
  const body = encodeSiteManifest(signed)
  const manifestOn = new Map<string, Promise<void>>()
  const ensureManifest = (node: string): Promise<void> => {
    let pending = manifestOn.get(node)
    if (pending === undefined) {
      pending = callNode(node, `/manifests/${site}`, {
        method: 'PUT',
        body,
        headers: { 'content-type': 'application/json' },
        ...(signal ? { signal } : {}),
      }).then(
        () => undefined,
        (err: unknown) => {
          // the node already holds this manifest (it fetched it from the tracker) or a newer one
          if (isShoalError(err) && err.code === 'SHOAL_ERR_STALE') return
          throw err
        },
      )
      manifestOn.set(node, pending)
    }
    return pending
  }
  const holds = async (node: string, cid: string): Promise<boolean> => {
    try {
      await callNode(node, `/c/${cid}`, { method: 'HEAD', ...(signal ? { signal } : {}) })
      return true
    } catch (err) {
      if (signal?.aborted) throw err
      return false
    }
  }

  let loaded = 0
  let bytesPushed = 0
  let pushTotal = 0
  for (const [cid, c] of contents)
    pushTotal += c.cid.size * Math.min(replicas, placements.get(cid)?.length ?? 0)
  const progress = () => onProgress?.({ phase: 'push', loaded, total: pushTotal })
  progress()

  const results = await pMap(
    [...contents.values()],
    async ({ cid, file, paths }): Promise<PublishedContent> => {
      const candidates = placements.get(cid.text) ?? []
      const out: PublishedContent = {
        cid: cid.text,
        size: cid.size,
        paths,
        nodes: [],
        pushed: [],
        skipped: [],
        failed: [],
      }
      let next = 0
      const worker = async () => {
        while (next < candidates.length) {
          throwIfAborted(signal)
          const node = (candidates[next++] as SelectedNode).httpUrl
          // publishing pushes over HTTP: a mesh-only node (never selected without mesh=1) is skipped
          if (node === undefined) continue
          let sent = 0
          let settled = false
          try {
            await ensureManifest(node)
            if (await holds(node, cid.text)) {
              out.skipped.push(node)
            } else {
              await callNode(node, `/c/${cid.text}`, {
                method: 'PUT',
                body: counted(file.file, (n) => {
                  // a refused body may still be read after the answer: count only until then
                  if (settled) return
                  sent += n
                  loaded += n
                  progress()
                }),
                headers: { 'content-type': 'application/octet-stream', 'content-length': String(cid.size) },
                ...(signal ? { signal } : {}),
              })
              bytesPushed += cid.size
              out.pushed.push(node)
            }
            settled = true
            loaded += cid.size - sent
            progress()
            out.nodes.push(node)
            return
          } catch (err) {
            settled = true
            if (signal?.aborted) throw err
            loaded -= sent
            progress()
            out.failed.push(failureOf(node, err))
          }
        }
      }
      await Promise.all(Array.from({ length: Math.min(replicas, candidates.length) }, worker))
      return out
    },
    { concurrency, ...(signal ? { signal } : {}) },
  )

  return {
    site,
    publisher: account.address,
    sequence: published.sequence,
    created: published.created,
    files: files.length,
    bytes: total,
    entries,
    contents: results,
    replicas,
    bytesPushed,
    complete: results.every((c) => c.nodes.length >= replicas),
    unplaced: results.filter((c) => c.nodes.length === 0).map((c) => c.cid),
    manifest: signed,
  }
}
