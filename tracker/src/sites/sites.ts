/**
 * Publishers' signed site manifests. The first publisher of a site owns it; a manifest
 * replaces the held one only with a higher sequence. The manifest is served back
 * exactly as `encodeSiteManifest` writes it, and single entries as
 * `ManifestEntryProof`s, so a client resolving one path never downloads the manifest.
 *
 * Order of checks: strict format → ownership (another publisher: 403) → sequence
 * (equal or lower: 409, before any hashing or signature recovery) → timestamp and
 * signature → atomic store write (which re-checks ownership and sequence, so two
 * replicas accepting at once cannot both win).
 */
import {
  createManifestEntryProver,
  decodeSiteManifest,
  encodeManifestEntryProof,
  encodeSiteManifest,
  ForbiddenError,
  InvalidArgumentError,
  type ManifestEntryProver,
  NotFoundError,
  pathProblem,
  verifySiteManifest,
} from '@shoal/protocol'
import type { Logger } from 'pino'
import type { TrackerMetrics } from '../metrics.ts'
import type { ContentRef, StoreCallOptions, TrackerStore } from '../store/types.ts'

/** Sites whose entry provers are kept (about 64 bytes per entry each). */
export const DEFAULT_MAX_PROVERS = 32

export interface SiteServiceInit {
  maxProvers?: number
}

export interface SiteServiceComponents {
  store: TrackerStore
  clock: () => number
  logger?: Logger
  metrics?: TrackerMetrics
}

export interface PublishResult {
  site: string
  publisher: string
  sequence: number
  entryCount: number
  created: boolean
}

export interface SiteService {
  publish(text: string, options?: StoreCallOptions): Promise<PublishResult>
  /** The held manifest, exactly as `encodeSiteManifest` writes it. */
  manifest(site: string, options?: StoreCallOptions): Promise<string>
  /** The encoded `ManifestEntryProof` of one path. */
  entryProof(site: string, path: string, options?: StoreCallOptions): Promise<string>
}

const SITE_RE = /^[a-z0-9][a-z0-9-]{0,62}$/

/** Throws `InvalidArgumentError` unless `site` is a site name. */
export function checkSite(site: string): void {
  if (!SITE_RE.test(site)) throw new InvalidArgumentError(`${JSON.stringify(site)} is not a site name`)
}

export function createSiteService(init: SiteServiceInit, components: SiteServiceComponents): SiteService {
  const { store, clock, logger, metrics } = components
  const maxProvers = init.maxProvers ?? DEFAULT_MAX_PROVERS
  const provers = new Map<string, { sequence: number; prover: ManifestEntryProver }>()

  return {
    async publish(text, options) {
      const signed = decodeSiteManifest(text)
      const m = signed.message
      const held = await store.getSite(m.site, options)
      if (held !== undefined && held.publisher.toLowerCase() !== m.publisher.toLowerCase()) {
        throw new ForbiddenError(`site ${m.site} belongs to another publisher`)
      }
      const now = clock()
      await verifySiteManifest(signed, {
        now: Math.floor(now / 1000),
        ...(held !== undefined ? { knownSequence: held.sequence } : {}),
      })
      const contents = new Map<string, ContentRef>()
      for (const e of m.entries) contents.set(e.cid, { cid: e.cid, size: e.size })
      await store.putSite(
        {
          site: m.site,
          publisher: m.publisher,
          sequence: m.sequence,
          timestamp: m.timestamp,
          entryCount: m.entries.length,
          manifest: encodeSiteManifest(signed),
          updatedAt: now,
        },
        [...contents.values()],
        options,
      )
      provers.delete(m.site)
      metrics?.sitesPublished.inc()
      logger?.info(
        { site: m.site, sequence: m.sequence, entries: m.entries.length },
        'site manifest accepted',
      )
      return {
        site: m.site,
        publisher: m.publisher,
        sequence: m.sequence,
        entryCount: m.entries.length,
        created: held === undefined,
      }
    },

    async manifest(site, options) {
      checkSite(site)
      const row = await store.getSite(site, options)
      if (row === undefined) throw new NotFoundError(`no site named ${JSON.stringify(site)}`)
      return row.manifest
    },

    async entryProof(site, path, options) {
      checkSite(site)
      const problem = pathProblem(path)
      if (problem !== undefined) throw new InvalidArgumentError(`path ${problem}`)
      const row = await store.getSite(site, options)
      if (row === undefined) throw new NotFoundError(`no site named ${JSON.stringify(site)}`)
      let held = provers.get(site)
      if (held === undefined || held.sequence !== row.sequence) {
        held = { sequence: row.sequence, prover: createManifestEntryProver(decodeSiteManifest(row.manifest)) }
        if (provers.size >= maxProvers) provers.delete(provers.keys().next().value as string)
      } else {
        provers.delete(site)
      }
      provers.set(site, held)
      return encodeManifestEntryProof(held.prover.prove(path))
    },
  }
}
