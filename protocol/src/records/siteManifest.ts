/**
 * Site manifests: a publisher's signed map of paths to content ids. The signature covers
 * the header, whose `entryCount` and `entriesRoot` commit to the entries (a Merkle tree).
 */

import type { Hex } from 'viem'
import {
  decodeRecord,
  encodeRecord,
  hashRecord,
  parseStrict,
  type RecordSigner,
  type RecordTypedData,
  recordTypedData,
  signRecord,
  structDigest,
  type VerifySiteManifestOptions,
  validateRecord,
  verifyRecord,
} from './codec.ts'
import { headerOf } from './manifestEntries.ts'
import {
  type Signed,
  type SiteManifest,
  type SiteManifestHeader,
  siteManifestHeaderSchema,
} from './schemas.ts'

/**
 * Checks a site manifest (names, canonical sorted paths, URLs, limits) and returns it typed.
 *
 * @throws InvalidFormatError naming the first bad field
 * @example
 * const manifest = validateSiteManifest({ publisher, site: 'blog', sequence: 1, origin: '',
 *   timestamp: 1_700_000_000, entries: [{ path: '/index.html', cid, size: 512,
 *   contentType: 'text/html', cacheControl: 'max-age=60' }] })
 */
export function validateSiteManifest(message: unknown): SiteManifest {
  return validateRecord('SiteManifest', message)
}

/**
 * The EIP-712 digest a site manifest's signature signs: that of its header, whose
 * `entriesRoot` is computed here from the entries (about 5 µs per entry, validation
 * included).
 *
 * @example
 * const digest = hashSiteManifest(manifest)
 */
export function hashSiteManifest(message: SiteManifest): Hex {
  return hashRecord('SiteManifest', message)
}

/**
 * The header of a site manifest: what its signature signs (the EIP-712 struct), with
 * `entryCount` and `entriesRoot` computed from the entries. Validates the manifest first.
 *
 * @throws InvalidFormatError
 * @example
 * const { entryCount, entriesRoot } = siteManifestHeader(manifest)
 */
export function siteManifestHeader(message: SiteManifest): SiteManifestHeader {
  return headerOf(validateSiteManifest(message))
}

/**
 * The EIP-712 digest of a site manifest header: for a manifest, equal to
 * `hashSiteManifest(manifest)`, computed without the entries.
 *
 * @throws InvalidFormatError
 * @example
 * hashSiteManifestHeader(siteManifestHeader(manifest)) === hashSiteManifest(manifest) // true
 */
export function hashSiteManifestHeader(header: SiteManifestHeader): Hex {
  return structDigest('SiteManifest', parseStrict('SiteManifestHeader', siteManifestHeaderSchema, header))
}

/**
 * The manifest's EIP-712 typed data, for signing with a wallet instead of a local key.
 *
 * @example
 * const signature = await walletClient.signTypedData({ account, ...siteManifestTypedData(manifest) })
 * const signed = { message: manifest, signature }
 */
export function siteManifestTypedData(message: SiteManifest): RecordTypedData['SiteManifest'] {
  return recordTypedData('SiteManifest', message)
}

/**
 * Signs a site manifest with the publisher's key (`account.address` must be `publisher`).
 *
 * @example
 * const signed = await signSiteManifest(privateKeyToAccount(publisherKey), manifest)
 */
export function signSiteManifest(
  account: RecordSigner,
  message: SiteManifest,
): Promise<Signed<SiteManifest>> {
  return signRecord('SiteManifest', account, message)
}

/**
 * Verifies a signed manifest: format, timestamp not in the future (beyond skew),
 * optional maximum age, sequence above `knownSequence`, and the publisher's signature.
 *
 * @throws InvalidFormatError, ExpiredError, StaleError, InvalidSignatureError
 * @example
 * const manifest = await verifySiteManifest(decodeSiteManifest(text), { knownSequence: current.sequence })
 */
export function verifySiteManifest(
  signed: Signed<SiteManifest>,
  options?: VerifySiteManifestOptions,
): Promise<SiteManifest> {
  return verifyRecord('SiteManifest', signed, options)
}

/**
 * The canonical JSON text of a signed manifest.
 *
 * @example
 * await fetch(url, { method: 'PUT', body: encodeSiteManifest(signed) })
 */
export function encodeSiteManifest(signed: Signed<SiteManifest>): string {
  return encodeRecord('SiteManifest', signed)
}

/**
 * Parses and strictly validates a signed manifest (JSON text or a parsed value); does not verify it.
 *
 * @throws InvalidFormatError
 * @example
 * const signed = decodeSiteManifest(await response.text())
 */
export function decodeSiteManifest(input: unknown): Signed<SiteManifest> {
  return decodeRecord('SiteManifest', input)
}
