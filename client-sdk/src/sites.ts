/**
 * `shoal://<site>/<path>` → a verified manifest entry. The tracker answers an entry proof
 * (`GET /v1/sites/<site>/entries?path=…`), checked with `verifyManifestEntryProof`: the
 * publisher's signature over the header, the entry's Merkle path to the signed entries
 * root, the site and path asked, the publisher trusted for the site, and a sequence not
 * below the highest this client has seen for the site (a tracker or cache cannot roll a
 * site back). Verified entries are reused for `siteTtlMs`.
 */
import {
  type Cid,
  InvalidArgumentError,
  InvalidFormatError,
  type ManifestEntry,
  parseCid,
  type SiteManifestHeader,
  verifyManifestEntryProof,
} from '@shoal/protocol'
import type { Address } from 'viem'
import type { TrackerClient } from './tracker-client.ts'

export interface ResolvedEntry {
  site: string
  path: string
  header: SiteManifestHeader
  entry: ManifestEntry
  cid: Cid
}

export interface SiteResolverInit {
  /** Publishers pinned per site. Other sites trust the first publisher seen (for the client's life). */
  pins: ReadonlyMap<string, Address>
  ttlMs: number
}

export interface SiteResolverComponents {
  tracker: TrackerClient | undefined
  clock?: () => number
}

export interface SiteResolver {
  resolve(site: string, path: string, options?: { signal?: AbortSignal }): Promise<ResolvedEntry>
  /** The highest manifest sequence verified for a site. */
  sequenceOf(site: string): number | undefined
  clear(): void
}

const MAX_CACHED_ENTRIES = 10_000

/**
 * @example
 * const sites = createSiteResolver({ pins: new Map(), ttlMs: 10_000 }, { tracker })
 * const { entry, cid } = await sites.resolve('blog', '/index.html')
 */
export function createSiteResolver(init: SiteResolverInit, components: SiteResolverComponents): SiteResolver {
  const { tracker } = components
  const clock = components.clock ?? Date.now
  const highest = new Map<string, number>()
  const publishers = new Map<string, Address>(init.pins)
  const cache = new Map<string, { resolved: ResolvedEntry; expires: number }>()

  return {
    async resolve(site, path, options = {}) {
      if (tracker === undefined)
        throw new InvalidArgumentError(`shoal://${site}${path} needs a tracker to resolve the site`)
      const key = `${site}\u0000${path}`
      const hit = cache.get(key)
      if (
        hit !== undefined &&
        hit.expires > clock() &&
        hit.resolved.header.sequence >= (highest.get(site) ?? 0)
      ) {
        return hit.resolved
      }
      const proof = await tracker.getEntryProof(site, path, options)
      const known = highest.get(site)
      const publisher = publishers.get(site)
      const { header, entry } = await verifyManifestEntryProof(proof, {
        site,
        path,
        ...(known === undefined ? {} : { knownSequence: known }),
        ...(publisher === undefined ? {} : { publisher }),
      })
      const resolved: ResolvedEntry = { site, path, header, entry, cid: parseCid(entry.cid) }
      if (resolved.cid.size !== entry.size) {
        throw new InvalidFormatError(
          `the manifest entry ${path} of ${site} says ${entry.size} bytes, its CID ${resolved.cid.size}`,
        )
      }
      // verified: remember the publisher (trust on first use) and the sequence
      if (publisher === undefined) publishers.set(site, header.publisher)
      if (known === undefined || header.sequence > known) highest.set(site, header.sequence)
      if (init.ttlMs > 0) {
        if (cache.size >= MAX_CACHED_ENTRIES) cache.delete(cache.keys().next().value as string)
        cache.set(key, { resolved, expires: clock() + init.ttlMs })
      }
      return resolved
    },
    sequenceOf(site) {
      return highest.get(site)
    },
    clear() {
      cache.clear()
    },
  }
}
