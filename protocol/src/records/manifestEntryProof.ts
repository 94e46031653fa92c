/**
 * Per-path resolution without the whole manifest: one entry, the signed header and the
 * entry's Merkle path to `header.entriesRoot`. A client checks a 100 000-entry site's
 * `/index.html` with at most 17 hashes and one signature recovery instead of downloading
 * and hashing about 20 MB of manifest.
 */
import { type Address, getAddress, type Hex, hexToBytes, isAddress, toHex } from 'viem'
import { verifyMerkleProof } from '../content/merkle.ts'
import {
  InvalidArgumentError,
  InvalidFormatError,
  InvalidProofError,
  InvalidSignatureError,
  NotFoundError,
  StaleError,
} from '../errors.ts'
import {
  checkTimestamp,
  decodeRecord,
  parseStrict,
  readClock,
  structDigest,
  type VerifySiteManifestOptions,
} from './codec.ts'
import { comparePaths } from './fields.ts'
import { RECORD_DEFAULTS } from './limits.ts'
import { emptyEntriesRoot, entriesTree, entryLeaf, headerOf } from './manifestEntries.ts'
import {
  type ManifestEntry,
  type ManifestEntryProof,
  manifestEntryProofSchema,
  type Signed,
  type SiteManifest,
  type SiteManifestHeader,
} from './schemas.ts'
import { recoverSigner } from './signature.ts'

const NAME = 'ManifestEntryProof'

/** Options of `verifyManifestEntryProof`. */
export interface VerifyManifestEntryProofOptions extends Omit<VerifySiteManifestOptions, 'knownSequence'> {
  /**
   * The highest manifest sequence already seen for this site. A proof from a lower
   * sequence is `StaleError`; one from the same sequence is accepted, since the other
   * paths of the manifest a client holds come with that sequence too.
   */
  knownSequence?: number
  /** The site the caller asked for: a proof for another site is `InvalidProofError`. */
  site?: string
  /** The path the caller asked for: a proof of another entry is `InvalidProofError`. */
  path?: string
  /** The key the caller trusts for the site: a header signed by another is `InvalidSignatureError`. */
  publisher?: Address
}

/** What a verified entry proof establishes: the publisher signed this header, and this entry is in it. */
export interface VerifiedManifestEntry {
  header: SiteManifestHeader
  entry: ManifestEntry
}

/** Proves any path of one manifest, the entries tree built once. */
export interface ManifestEntryProver {
  /** The manifest's header, `entryCount` and `entriesRoot` computed (frozen). */
  readonly header: SiteManifestHeader
  /** The manifest's signature, which signs the header. */
  readonly signature: Hex
  /** The entry proof of `path`; `NotFoundError` when the manifest has no such path. */
  prove(path: string): ManifestEntryProof
}

/** Index of `path` among entries sorted by code point, or -1. */
function findEntry(entries: readonly ManifestEntry[], path: string): number {
  let low = 0
  let high = entries.length - 1
  while (low <= high) {
    const mid = (low + high) >>> 1
    const order = comparePaths((entries[mid] as ManifestEntry).path, path)
    if (order === 0) return mid
    if (order < 0) low = mid + 1
    else high = mid - 1
  }
  return -1
}

/**
 * Builds the entries tree of a signed manifest once, for a node that answers many
 * per-path requests: each proof then costs no hashing. The manifest is validated strictly
 * and copied, but its signature is not checked here: prove from a manifest verified when
 * it was accepted (`verifySiteManifest`). Holds about 64 bytes per entry beside the copy.
 *
 * @throws InvalidFormatError
 * @example
 * const prover = createManifestEntryProver(signed)
 * const body = encodeManifestEntryProof(prover.prove('/index.html'))
 */
export function createManifestEntryProver(signed: Signed<SiteManifest>): ManifestEntryProver {
  const { message, signature } = decodeRecord('SiteManifest', signed)
  const { entries } = message
  const tree = entriesTree(entries)
  const header = Object.freeze(headerOf(message, toHex(tree?.root ?? emptyEntriesRoot())))
  return {
    header,
    signature,
    prove(path) {
      if (typeof path !== 'string') throw new InvalidArgumentError('path must be a string')
      const index = findEntry(entries, path)
      if (index < 0 || tree === undefined) {
        throw new NotFoundError(
          `site ${header.site} (sequence ${header.sequence}) has no entry ${JSON.stringify(path)}`,
        )
      }
      return {
        header: { ...header },
        signature,
        index,
        entry: { ...(entries[index] as ManifestEntry) },
        proof: tree.proof(index).map((hash) => toHex(hash)),
      }
    },
  }
}

/**
 * The entry proof of one path of a signed manifest. Hashes every entry; a node proving
 * many paths keeps a `createManifestEntryProver` instead. Does not check the signature.
 *
 * @throws InvalidFormatError, NotFoundError (no such path)
 * @example
 * const proof = createManifestEntryProof(signed, '/index.html')
 */
export function createManifestEntryProof(signed: Signed<SiteManifest>, path: string): ManifestEntryProof {
  return createManifestEntryProver(signed).prove(path)
}

function readExpectations(
  options: unknown,
): Pick<VerifyManifestEntryProofOptions, 'site' | 'path' | 'publisher'> {
  const { site, path, publisher } = (options ?? {}) as VerifyManifestEntryProofOptions
  for (const [name, value] of [
    ['site', site],
    ['path', path],
  ] as const) {
    if (value !== undefined && typeof value !== 'string')
      throw new InvalidArgumentError(`${name} must be a string`)
  }
  if (
    publisher !== undefined &&
    (typeof publisher !== 'string' || !isAddress(publisher, { strict: false }))
  ) {
    throw new InvalidArgumentError('publisher must be an address')
  }
  return { site, path, publisher: publisher === undefined ? undefined : getAddress(publisher) }
}

/**
 * Verifies an entry proof, cheap checks first: options; the strict format (as
 * `decodeManifestEntryProof`); the expected site, path and publisher when given;
 * freshness (timestamp not in the future, optional maximum age, sequence not below
 * `knownSequence`); the entry's leaf against `header.entriesRoot` at `index` through the
 * proof, whose length is fixed by `index` and the signed `entryCount`; and last the
 * publisher's signature over the header, recovered from its EIP-712 digest.
 *
 * It proves that the publisher signed a manifest holding this entry at this position,
 * nothing about any other path: there is no proof of absence, and a node's "not found"
 * proves nothing. Nor does it show that the signed entries are sorted and unique; only
 * verifying the whole manifest does (`verifySiteManifest`), which is also how a client
 * learns that a path is absent.
 *
 * @throws InvalidArgumentError, InvalidFormatError, ExpiredError, StaleError, InvalidProofError,
 *   InvalidSignatureError
 * @example
 * const { header, entry } = await verifyManifestEntryProof(decodeManifestEntryProof(body), {
 *   site: 'blog', path: '/index.html', publisher, knownSequence: 41 })
 */
export async function verifyManifestEntryProof(
  proof: ManifestEntryProof,
  options?: VerifyManifestEntryProofOptions,
): Promise<VerifiedManifestEntry> {
  const clock = readClock(options)
  const expected = readExpectations(options)
  const valid = parseStrict(NAME, manifestEntryProofSchema, proof)
  const { header, entry, index, signature } = valid
  if (expected.site !== undefined && header.site !== expected.site) {
    throw new InvalidProofError(`the proof is for site ${header.site}, not ${expected.site}`)
  }
  if (expected.path !== undefined && entry.path !== expected.path) {
    throw new InvalidProofError(
      `the proof is for ${JSON.stringify(entry.path)}, not ${JSON.stringify(expected.path)}`,
    )
  }
  if (expected.publisher !== undefined && header.publisher !== expected.publisher) {
    throw new InvalidSignatureError(
      `site ${header.site} is published by ${expected.publisher}, not by ${header.publisher}`,
    )
  }
  checkTimestamp(
    'SiteManifest',
    header.timestamp,
    clock.maxAge ?? RECORD_DEFAULTS.siteManifestMaxAgeSeconds,
    clock,
  )
  if (clock.knownSequence !== undefined && header.sequence < clock.knownSequence) {
    throw new StaleError(`SiteManifest sequence ${header.sequence} is below the known ${clock.knownSequence}`)
  }
  verifyMerkleProof({
    root: hexToBytes(header.entriesRoot),
    count: header.entryCount,
    index,
    leaf: entryLeaf(entry),
    proof: valid.proof.map((hash) => hexToBytes(hash)),
  })
  const recovered = await recoverSigner(structDigest('SiteManifest', header), signature)
  if (recovered !== header.publisher) {
    throw new InvalidSignatureError(
      `SiteManifest was signed by ${recovered}, not by its publisher ${header.publisher}`,
    )
  }
  return { header, entry }
}

/**
 * The canonical JSON text of an entry proof: `header` (fields in EIP-712 order),
 * `signature`, `index`, `entry` (fields in manifest order), `proof`; no whitespace.
 *
 * @throws InvalidFormatError
 * @example
 * response.end(encodeManifestEntryProof(prover.prove(path)))
 */
export function encodeManifestEntryProof(proof: ManifestEntryProof): string {
  const {
    header,
    signature,
    index,
    entry,
    proof: hashes,
  } = parseStrict(NAME, manifestEntryProofSchema, proof)
  return JSON.stringify({
    header: {
      publisher: header.publisher,
      site: header.site,
      sequence: header.sequence,
      origin: header.origin,
      timestamp: header.timestamp,
      entryCount: header.entryCount,
      entriesRoot: header.entriesRoot,
    },
    signature,
    index,
    entry: {
      path: entry.path,
      cid: entry.cid,
      size: entry.size,
      contentType: entry.contentType,
      cacheControl: entry.cacheControl,
    },
    proof: hashes,
  })
}

/**
 * Parses an entry proof from JSON text (or a parsed value) and validates it strictly: the
 * header's fields as a manifest's, `entryCount` at most 100 000, `index` below it, the
 * entry as a manifest entry, at most 17 proof hashes of lowercase hex, no unknown fields.
 * It checks neither the proof nor the signature: `verifyManifestEntryProof` does.
 *
 * @throws InvalidFormatError
 * @example
 * const proof = decodeManifestEntryProof(await response.text())
 */
export function decodeManifestEntryProof(input: unknown): ManifestEntryProof {
  let value = input
  if (typeof input === 'string') {
    try {
      value = JSON.parse(input)
    } catch (cause) {
      throw new InvalidFormatError(`invalid ${NAME}: not JSON`, { cause })
    }
  }
  return parseStrict(NAME, manifestEntryProofSchema, value)
}
