/**
 * The Merkle tree over a site manifest's entries: the same binary SHA-256 tree content
 * ids use (leaf SHA-256(0x00 ‖ bytes), node SHA-256(0x01 ‖ left ‖ right), an odd node
 * promoted), one leaf per entry in manifest order, the leaf bytes being the entry's
 * canonical JSON in UTF-8. Its root and the entry count are what the publisher signs.
 */

import { type Hex, toHex } from 'viem'
import { hashTextLeaf } from '#sha256'
import { HASH_SIZE } from '../content/constants.ts'
import { createMerkleTree, type MerkleTree, merkleRoot } from '../content/merkle.ts'
import type { ManifestEntry, SiteManifest, SiteManifestHeader } from './schemas.ts'

/**
 * The canonical JSON layout of a site manifest document: the header's first five fields,
 * then the entries, each with its fields in this order. It differs from the EIP-712 struct
 * (`siteManifestTypes`), which has `entryCount` and `entriesRoot` in place of `entries`.
 */
export const siteManifestLayout = {
  SiteManifest: [
    { name: 'publisher', type: 'address' },
    { name: 'site', type: 'string' },
    { name: 'sequence', type: 'uint64' },
    { name: 'origin', type: 'string' },
    { name: 'timestamp', type: 'uint64' },
    { name: 'entries', type: 'ManifestEntry[]' },
  ],
  ManifestEntry: [
    { name: 'path', type: 'string' },
    { name: 'cid', type: 'string' },
    { name: 'size', type: 'uint64' },
    { name: 'contentType', type: 'string' },
    { name: 'cacheControl', type: 'string' },
  ],
} as const

/**
 * The canonical JSON of a valid entry, keys in layout order: exactly the text
 * `encodeSiteManifest` writes for it inside `entries`.
 */
export function entryJson(entry: ManifestEntry): string {
  return JSON.stringify({
    path: entry.path,
    cid: entry.cid,
    size: entry.size,
    contentType: entry.contentType,
    cacheControl: entry.cacheControl,
  })
}

/** The leaf hash of a valid entry: SHA-256(0x00 ‖ UTF-8 of its canonical JSON). */
export function entryLeaf(entry: ManifestEntry): Uint8Array {
  return hashTextLeaf(entryJson(entry))
}

/** The leaf hashes of valid entries, concatenated (`count × 32` bytes). */
export function entryLeaves(entries: readonly ManifestEntry[]): Uint8Array {
  const leaves = new Uint8Array(entries.length * HASH_SIZE)
  for (let i = 0; i < entries.length; i++) leaves.set(entryLeaf(entries[i] as ManifestEntry), i * HASH_SIZE)
  return leaves
}

/**
 * The root of the tree over zero entries: the tree of one empty leaf, SHA-256(0x00), as
 * for empty content. A real hash rather than 32 zero bytes, so that a root left unset by
 * a bug never passes for the empty manifest.
 */
export function emptyEntriesRoot(): Uint8Array {
  return hashTextLeaf('')
}

/** The entries tree of valid entries; `undefined` for none (the empty manifest has no leaf to prove). */
export function entriesTree(entries: readonly ManifestEntry[]): MerkleTree | undefined {
  return entries.length === 0 ? undefined : createMerkleTree(entryLeaves(entries))
}

/** `entriesRoot` of valid entries, lowercase 0x-hex. */
export function entriesRootOf(entries: readonly ManifestEntry[]): Hex {
  return toHex(entries.length === 0 ? emptyEntriesRoot() : merkleRoot(entryLeaves(entries)))
}

/** The header (the EIP-712 struct) of a valid manifest, with `entriesRoot` computed. */
export function headerOf(
  manifest: SiteManifest,
  entriesRoot = entriesRootOf(manifest.entries),
): SiteManifestHeader {
  return {
    publisher: manifest.publisher,
    site: manifest.site,
    sequence: manifest.sequence,
    origin: manifest.origin,
    timestamp: manifest.timestamp,
    entryCount: manifest.entries.length,
    entriesRoot,
  }
}
