/**
 * The EIP-712 domain and struct types of every signed Shoal record.
 *
 * The domain has no `chainId` and no `verifyingContract`: trackers, nodes and
 * clients verify these records off-chain, and only the payout Merkle root goes
 * on-chain. A signature is therefore valid on every Shoal network that shares
 * this domain; what keeps one record kind from being replayed as another is the
 * type hash (type name and fields), which differs per kind. See
 * `docs/protocol.md` for the consequences.
 */

/** The one EIP-712 domain every Shoal record is signed under. */
export const SHOAL_DOMAIN = { name: 'Shoal', version: '1' } as const

/**
 * EIP-712 types of a signed site manifest. The struct is the manifest's header: the
 * entries are not in it but committed to by `entryCount` and `entriesRoot`, the root of
 * the SHA-256 Merkle tree over the entries (see `manifestEntriesRoot`). Both are derived
 * from the entries whenever a manifest is hashed, signed or verified, never read from
 * input; one entry can then be proved on its own (`ManifestEntryProof`).
 */
export const siteManifestTypes = {
  SiteManifest: [
    { name: 'publisher', type: 'address' },
    { name: 'site', type: 'string' },
    { name: 'sequence', type: 'uint64' },
    { name: 'origin', type: 'string' },
    { name: 'timestamp', type: 'uint64' },
    { name: 'entryCount', type: 'uint64' },
    { name: 'entriesRoot', type: 'bytes32' },
  ],
} as const

/** EIP-712 types of a node record, which binds a node's key to its peer id and addresses. */
export const nodeRecordTypes = {
  NodeRecord: [
    { name: 'node', type: 'address' },
    { name: 'peerId', type: 'string' },
    { name: 'multiaddrs', type: 'string[]' },
    { name: 'httpUrl', type: 'string' },
    { name: 'region', type: 'string' },
    { name: 'capacity', type: 'uint64' },
    { name: 'payout', type: 'address' },
    { name: 'timestamp', type: 'uint64' },
  ],
} as const

/** EIP-712 types of a client ticket (a byte budget granted by an issuer). */
export const ticketTypes = {
  Ticket: [
    { name: 'issuer', type: 'address' },
    { name: 'client', type: 'address' },
    { name: 'budget', type: 'uint64' },
    { name: 'expiry', type: 'uint64' },
    { name: 'nonce', type: 'bytes32' },
  ],
} as const

/** EIP-712 types of a cumulative bandwidth receipt, signed by the client. */
export const bandwidthReceiptTypes = {
  BandwidthReceipt: [
    { name: 'node', type: 'address' },
    { name: 'client', type: 'address' },
    { name: 'session', type: 'bytes32' },
    { name: 'bytes', type: 'uint64' },
    { name: 'epoch', type: 'uint64' },
    { name: 'ticket', type: 'bytes32' },
    { name: 'kind', type: 'uint8' },
  ],
} as const

/** EIP-712 types of a publisher's purge request. */
export const purgeRequestTypes = {
  PurgeRequest: [
    { name: 'publisher', type: 'address' },
    { name: 'site', type: 'string' },
    { name: 'paths', type: 'string[]' },
    { name: 'prefixes', type: 'string[]' },
    { name: 'timestamp', type: 'uint64' },
    { name: 'nonce', type: 'bytes32' },
  ],
} as const

/**
 * EIP-712 types of a health proof: a node's answer to a tracker's random liveness
 * challenge, signed by the node so that nobody else can answer for it.
 */
export const healthProofTypes = {
  HealthProof: [
    { name: 'node', type: 'address' },
    { name: 'challenge', type: 'bytes32' },
    { name: 'timestamp', type: 'uint64' },
  ],
} as const

/**
 * EIP-712 types of a receipt batch: a node's signed cover of the receipts it submits for
 * one epoch. `receiptsHash` is `receiptsHash(receipts)`: keccak-256 over the receipts'
 * EIP-712 digests in batch order, so the batch commits to exactly those receipts.
 */
export const receiptBatchTypes = {
  ReceiptBatch: [
    { name: 'node', type: 'address' },
    { name: 'epoch', type: 'uint64' },
    { name: 'count', type: 'uint64' },
    { name: 'receiptsHash', type: 'bytes32' },
    { name: 'timestamp', type: 'uint64' },
  ],
} as const

/** Every Shoal record type in one object, e.g. for a wallet that shows them all. */
export const recordTypes = {
  ...siteManifestTypes,
  ...nodeRecordTypes,
  ...ticketTypes,
  ...bandwidthReceiptTypes,
  ...purgeRequestTypes,
  ...healthProofTypes,
  ...receiptBatchTypes,
} as const
