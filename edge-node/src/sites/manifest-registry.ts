/**
 * The site manifests this node serves `/s/<site>/<path>` from: verified signed
 * manifests, highest sequence wins, one publisher per site. Who owns a site name: the
 * operator's pin, else the tracker's record, else (a node without a tracker) the first
 * publisher whose manifest the node accepted. Manifests come from the
 * tracker (fetched on demand and refreshed) or are pushed by publishers; both paths go
 * through the same verification. Accepted manifests are kept on disk so a restart
 * serves the same sites at once.
 */
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import {
  decodeSiteManifest,
  encodeSiteManifest,
  ForbiddenError,
  type ManifestEntry,
  type Signed,
  type SiteManifest,
  StaleError,
  verifySiteManifest,
} from '@shoal/protocol'
import type { Logger } from 'pino'

export const DEFAULT_MANIFEST_REFRESH_MS = 30_000

/** Where manifests come from when the node has none or its copy is old. */
export interface ManifestSource {
  fetchManifest(site: string, options?: { signal?: AbortSignal }): Promise<Signed<SiteManifest> | undefined>
}

export interface ManifestRegistryInit {
  /** Directory that keeps accepted manifests across restarts. */
  dir: string
  /** How old a manifest may get before the next request refreshes it from the source. */
  refreshMs?: number
  /** Publishers pinned per site by the operator; others are refused for that site. */
  pinned?: Record<string, `0x${string}`>
}

export interface ManifestRegistryComponents {
  source?: ManifestSource
  logger?: Logger
  now?: () => number
}

export interface ResolvedPath {
  manifest: SiteManifest
  entry: ManifestEntry
}

interface Held {
  cids: Set<string>
  manifest: SiteManifest
  byPath: Map<string, ManifestEntry>
  fetchedAt: number
}

export interface ManifestRegistry {
  /** Verifies and installs a manifest; `StaleError` when not newer, `ForbiddenError` for another publisher. */
  accept(signed: Signed<SiteManifest>): Promise<SiteManifest>
  /** The entry for a path, refreshing the site's manifest from the source when due. */
  resolve(site: string, path: string, options?: { signal?: AbortSignal }): Promise<ResolvedPath | undefined>
  /** The entry for a path from what is held now, without I/O (the hit fast path). */
  peek(site: string, path: string): ResolvedPath | undefined
  /** The manifest held for a site. */
  get(site: string): SiteManifest | undefined
  /** Loads manifests kept on disk. */
  load(): Promise<void>
  sites(): string[]
  /** True when a held manifest names this CID (pushes of such content are expected). */
  hasCid(cid: string): boolean
}

/**
 * @example
 * const registry = createManifestRegistry({ dir: join(dataDir, 'manifests') }, { source: trackerClient })
 * await registry.load()
 * const hit = await registry.resolve('blog', '/index.html')
 */
export function createManifestRegistry(
  init: ManifestRegistryInit,
  components: ManifestRegistryComponents = {},
): ManifestRegistry {
  const refreshMs = init.refreshMs ?? DEFAULT_MANIFEST_REFRESH_MS
  const now = components.now ?? Date.now
  const held = new Map<string, Held>()
  const refreshing = new Map<string, Promise<void>>()

  const install = (manifest: SiteManifest): void => {
    held.set(manifest.site, {
      manifest,
      byPath: new Map(manifest.entries.map((e) => [e.path, e])),
      cids: new Set(manifest.entries.map((e) => e.cid)),
      fetchedAt: now(),
    })
  }

  const check = async (signed: Signed<SiteManifest>): Promise<SiteManifest> => {
    const site = signed.message?.site
    const current = typeof site === 'string' ? held.get(site) : undefined
    const manifest = await verifySiteManifest(signed, {
      ...(current === undefined ? {} : { knownSequence: current.manifest.sequence }),
      maxAgeSeconds: Number.POSITIVE_INFINITY,
    })
    const pinned = init.pinned?.[manifest.site] ?? current?.manifest.publisher
    if (pinned !== undefined && pinned.toLowerCase() !== manifest.publisher.toLowerCase()) {
      throw new ForbiddenError(`site "${manifest.site}" belongs to another publisher`)
    }
    return manifest
  }

  const persist = async (signed: Signed<SiteManifest>): Promise<void> => {
    await mkdir(init.dir, { recursive: true })
    const file = join(init.dir, `${signed.message.site}.json`)
    const tmp = `${file}.${process.pid}.tmp`
    await writeFile(tmp, encodeSiteManifest(signed))
    await rename(tmp, file)
  }

  const refresh = (site: string, signal?: AbortSignal): Promise<void> => {
    const source = components.source
    if (source === undefined) return Promise.resolve()
    let pending = refreshing.get(site)
    if (pending === undefined) {
      pending = (async () => {
        const signed = await source.fetchManifest(site, { signal })
        const current = held.get(site)
        if (signed === undefined) return
        if (current !== undefined && signed.message.sequence <= current.manifest.sequence) {
          current.fetchedAt = now()
          return
        }
        const manifest = await check(signed)
        install(manifest)
        await persist(signed)
        components.logger?.info({ site, sequence: manifest.sequence }, 'site manifest updated')
      })().finally(() => refreshing.delete(site))
      refreshing.set(site, pending)
    }
    return pending
  }

  const lookup = (site: string, path: string): ResolvedPath | undefined => {
    const h = held.get(site)
    const entry = h?.byPath.get(path)
    return h === undefined || entry === undefined ? undefined : { manifest: h.manifest, entry }
  }

  return {
    async accept(signed) {
      const manifest = await check(signed)
      // the tracker is the authority on who owns a site name: a push for a site the
      // tracker knows must come from the same publisher
      if (components.source !== undefined && init.pinned?.[manifest.site] === undefined) {
        const known = await components.source.fetchManifest(manifest.site)
        if (
          known !== undefined &&
          known.message.publisher.toLowerCase() !== manifest.publisher.toLowerCase()
        ) {
          throw new ForbiddenError(`site "${manifest.site}" belongs to another publisher at the tracker`)
        }
      }
      const current = held.get(manifest.site)
      if (current !== undefined && manifest.sequence <= current.manifest.sequence) {
        throw new StaleError(`site "${manifest.site}" already has sequence ${current.manifest.sequence}`)
      }
      await persist(signed)
      install(manifest)
      components.logger?.info({ site: manifest.site, sequence: manifest.sequence }, 'site manifest accepted')
      return manifest
    },

    async resolve(site, path, options = {}) {
      const h = held.get(site)
      if (h === undefined) {
        await refresh(site, options.signal)
      } else if (now() - h.fetchedAt > refreshMs) {
        // serve what is held; refresh in the background (stale-while-revalidate)
        refresh(site).catch((err: unknown) =>
          components.logger?.warn({ site, err: (err as Error).message }, 'manifest refresh failed'),
        )
      }
      return lookup(site, path)
    },

    peek: lookup,

    get: (site) => held.get(site)?.manifest,

    async load() {
      let files: string[]
      try {
        files = await readdir(init.dir)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
        throw err
      }
      for (const file of files.filter((f) => f.endsWith('.json'))) {
        try {
          const signed = decodeSiteManifest(await readFile(join(init.dir, file), 'utf8'))
          const manifest = await check(signed)
          const current = held.get(manifest.site)
          if (current === undefined || current.manifest.sequence < manifest.sequence) install(manifest)
        } catch (err) {
          components.logger?.warn(
            { file, err: (err as Error).message },
            'ignoring a kept manifest that does not verify',
          )
        }
      }
    },

    sites: () => [...held.keys()],

    hasCid(cid) {
      for (const h of held.values()) if (h.cids.has(cid)) return true
      return false
    },
  }
}
