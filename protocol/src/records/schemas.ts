/**
 * The TypeScript shapes of the six signed records and their strict schemas.
 * Field order here is the EIP-712 field order and the canonical JSON key order.
 */
import type { Address, Hex } from 'viem'
import { z } from 'zod'
import {
  addressField,
  bytes32Field,
  cidField,
  headerValueField,
  multiaddrField,
  pathField,
  peerIdField,
  regionField,
  requireSortedUnique,
  requireUnique,
  siteField,
  uintField,
  unixSecondsField,
  urlField,
} from './fields.ts'
import { RECORD_LIMITS } from './limits.ts'
import { signatureField } from './signature.ts'

/** One file of a site: where it lives, what it is and how edges may cache it. */
export interface ManifestEntry {
  /** Canonical, percent-decoded path starting with `/`. */
  path: string
  /** Content id of the bytes. */
  cid: string
  /** Size in bytes. */
  size: number
  /** The `Content-Type` to serve. */
  contentType: string
  /** The `Cache-Control` to serve; `''` for the edge's default. */
  cacheControl: string
}

/** A publisher's signed map of a site's paths to content; a higher `sequence` replaces a lower one. */
export interface SiteManifest {
  publisher: Address
  site: string
  sequence: number
  /** `''` when the site has no origin; else an http(s) URL edges pull misses from. */
  origin: string
  /** Unix seconds. */
  timestamp: number
  /** Sorted by path (code point order), paths unique. */
  entries: ManifestEntry[]
}

/**
 * What a site manifest's signature signs (its EIP-712 struct): the manifest without its
 * entries, which `entryCount` and `entriesRoot` commit to. Derived from a manifest by
 * `siteManifestHeader`; carried on its own by a `ManifestEntryProof`.
 */
export interface SiteManifestHeader {
  publisher: Address
  site: string
  sequence: number
  origin: string
  /** Unix seconds. */
  timestamp: number
  /** Number of entries, at most 100 000. */
  entryCount: number
  /** Root of the SHA-256 Merkle tree over the entries' canonical JSON, lowercase 0x-hex. */
  entriesRoot: Hex
}

/**
 * One entry of a signed manifest with what proves it without the rest: the signed
 * header and the Merkle path from the entry's leaf at `index` to `header.entriesRoot`.
 */
export interface ManifestEntryProof {
  header: SiteManifestHeader
  /** The publisher's signature over the header (the manifest's own signature). */
  signature: Hex
  /** Position of the entry in the manifest, `0 ≤ index < header.entryCount`. */
  index: number
  entry: ManifestEntry
  /** Sibling hashes from the bottom up, lowercase 0x-hex. */
  proof: Hex[]
}

/** A node's signed self-description, binding its Ethereum key to its peer id and addresses. */
export interface NodeRecord {
  /** The node's key: the signer. */
  node: Address
  peerId: string
  multiaddrs: string[]
  httpUrl: string
  region: string
  /** Egress bytes per second the node offers. */
  capacity: number
  /** Where the node's earnings are paid. */
  payout: Address
  /** Unix seconds. */
  timestamp: number
}

/** A byte budget an issuer (a tracker, or a publisher's app) grants a client. */
export interface Ticket {
  issuer: Address
  client: Address
  /** Bytes. */
  budget: number
  /** Unix seconds; the ticket is valid through this second. */
  expiry: number
  nonce: Hex
}

/** What a receipt pays for. */
export const RECEIPT_KIND = { content: 0, relay: 1 } as const
export type ReceiptKind = (typeof RECEIPT_KIND)[keyof typeof RECEIPT_KIND]

/** A client's signed statement of the cumulative bytes a node delivered in one session. */
export interface BandwidthReceipt {
  node: Address
  /** The signer. */
  client: Address
  session: Hex
  /** Cumulative over the session. */
  bytes: number
  epoch: number
  /** `ticketId` of the ticket that pays for the session. */
  ticket: Hex
  /** 0: content delivery, 1: relay. */
  kind: ReceiptKind
}

/** A publisher's signed request to drop cached copies of some paths of a site. */
export interface PurgeRequest {
  publisher: Address
  site: string
  /** Exact paths; sorted by code point, unique. */
  paths: string[]
  /** Path prefixes (string prefixes; end with `/` for a folder); sorted, unique. */
  prefixes: string[]
  /** Unix seconds. */
  timestamp: number
  nonce: Hex
}

/** A node's signed answer to a tracker's liveness probe (`GET /health?challenge=0x…`). */
export interface HealthProof {
  /** The node's key: the signer. */
  node: Address
  /** The tracker's random challenge, echoed: lowercase 0x-hex. */
  challenge: Hex
  /** Unix seconds, when the node answered. */
  timestamp: number
}

/**
 * A node's signed cover of the receipts it submits for one epoch: the batch commits to
 * exactly `count` receipts whose digests hash to `receiptsHash` (`receiptsHash()`).
 */
export interface ReceiptBatch {
  /** The node's key: the signer, and the `node` of every receipt in the batch. */
  node: Address
  epoch: number
  count: number
  /** keccak-256 over the receipts' EIP-712 digests, in batch order. */
  receiptsHash: Hex
  /** Unix seconds, when the node signed the batch. */
  timestamp: number
}

/** A record and the 65-byte signature (r ‖ s ‖ v, lowercase hex, low-s, v 27 or 28) over it. */
export interface Signed<T> {
  message: T
  signature: Hex
}

export const manifestEntrySchema: z.ZodType<ManifestEntry> = z.strictObject({
  path: pathField(),
  cid: cidField,
  size: uintField,
  contentType: headerValueField(RECORD_LIMITS.contentType, false),
  cacheControl: headerValueField(RECORD_LIMITS.cacheControl, true),
})

export const siteManifestSchema: z.ZodType<SiteManifest> = z.strictObject({
  publisher: addressField,
  site: siteField,
  sequence: uintField,
  origin: urlField(true),
  timestamp: unixSecondsField,
  entries: z
    .array(manifestEntrySchema)
    .max(RECORD_LIMITS.manifestEntries)
    .superRefine((entries, ctx) => requireSortedUnique(entries, ctx, (entry) => entry.path, ['path'])),
})

export const siteManifestHeaderSchema: z.ZodType<SiteManifestHeader> = z.strictObject({
  publisher: addressField,
  site: siteField,
  sequence: uintField,
  origin: urlField(true),
  timestamp: unixSecondsField,
  entryCount: uintField.max(
    RECORD_LIMITS.manifestEntries,
    `must be at most ${RECORD_LIMITS.manifestEntries} (the most entries a manifest has)`,
  ),
  entriesRoot: bytes32Field,
})

export const manifestEntryProofSchema: z.ZodType<ManifestEntryProof> = z
  .strictObject({
    header: siteManifestHeaderSchema,
    signature: signatureField,
    index: uintField,
    entry: manifestEntrySchema,
    proof: z.array(bytes32Field).max(RECORD_LIMITS.manifestEntryProof),
  })
  .superRefine((value, ctx) => {
    const count = value.header.entryCount
    if (typeof value.index === 'number' && typeof count === 'number' && value.index >= count) {
      ctx.addIssue({
        code: 'custom',
        message: `must be below header.entryCount (${count})`,
        path: ['index'],
      })
    }
  })

export const nodeRecordSchema: z.ZodType<NodeRecord> = z.strictObject({
  node: addressField,
  peerId: peerIdField,
  multiaddrs: z
    .array(multiaddrField)
    .max(RECORD_LIMITS.multiaddrs)
    .superRefine((items, ctx) => requireUnique(items, ctx)),
  httpUrl: urlField(false),
  region: regionField,
  capacity: uintField,
  payout: addressField,
  timestamp: unixSecondsField,
})

export const ticketSchema: z.ZodType<Ticket> = z.strictObject({
  issuer: addressField,
  client: addressField,
  budget: uintField,
  expiry: unixSecondsField,
  nonce: bytes32Field,
})

export const bandwidthReceiptSchema: z.ZodType<BandwidthReceipt> = z.strictObject({
  node: addressField,
  client: addressField,
  session: bytes32Field,
  bytes: uintField,
  epoch: uintField,
  ticket: bytes32Field,
  kind: z.literal([RECEIPT_KIND.content, RECEIPT_KIND.relay], {
    error: (issue) => (issue.input === undefined ? 'is missing' : 'must be 0 (content) or 1 (relay)'),
  }),
})

function purgeList(prefix: boolean) {
  return z
    .array(pathField(prefix))
    .max(RECORD_LIMITS.purgeItems)
    .superRefine((items, ctx) => requireSortedUnique(items, ctx, (item) => item))
}

export const purgeRequestSchema: z.ZodType<PurgeRequest> = z
  .strictObject({
    publisher: addressField,
    site: siteField,
    paths: purgeList(false),
    prefixes: purgeList(true),
    timestamp: unixSecondsField,
    nonce: bytes32Field,
  })
  .superRefine((request, ctx) => {
    if (request.paths.length === 0 && request.prefixes.length === 0) {
      ctx.addIssue({ code: 'custom', message: 'must name at least one path or prefix', path: ['paths'] })
    }
  })

export const receiptBatchSchema: z.ZodType<ReceiptBatch> = z.strictObject({
  node: addressField,
  epoch: uintField,
  count: uintField.max(RECORD_LIMITS.receiptBatch, `must be at most ${RECORD_LIMITS.receiptBatch}`),
  receiptsHash: bytes32Field,
  timestamp: unixSecondsField,
})

export const healthProofSchema: z.ZodType<HealthProof> = z.strictObject({
  node: addressField,
  challenge: bytes32Field,
  timestamp: unixSecondsField,
})
