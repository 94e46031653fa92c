/**
 * Limits and defaults of the signed-record formats. Every string and list a
 * record carries is bounded, so one record costs bounded memory and time to
 * validate, hash and store.
 */

/** Size limits of record fields. Lengths of paths are UTF-8 bytes; others are ASCII characters. */
export const RECORD_LIMITS = {
  /** Longest site name (one DNS label). */
  siteName: 63,
  /** Most entries in one site manifest. */
  manifestEntries: 100_000,
  /**
   * Most hashes in the inclusion proof of one manifest entry: the depth of a tree of
   * `manifestEntries` leaves, ceil(log2(100 000)).
   */
  manifestEntryProof: 17,
  /** Longest manifest path, purge path or purge prefix, in UTF-8 bytes. */
  pathBytes: 1024,
  /** Longest content id text. */
  cid: 128,
  /** Longest `contentType`. */
  contentType: 255,
  /** Longest `cacheControl`. */
  cacheControl: 255,
  /** Longest URL (`origin`, `httpUrl`). */
  url: 2048,
  /** Longest libp2p peer id text. */
  peerId: 128,
  /** Most multiaddrs in one node record. */
  multiaddrs: 16,
  /** Longest multiaddr text. */
  multiaddr: 256,
  /** Longest region name. */
  region: 32,
  /** Most paths in one purge request, and separately most prefixes. */
  purgeItems: 1000,
  /** Most receipts one batch covers. */
  receiptBatch: 1_000_000,
} as const

/**
 * Default freshness windows, in seconds, used by the `verify*` functions when
 * the caller passes none. `maxAgeSeconds: Infinity` means "no age limit".
 */
export const RECORD_DEFAULTS = {
  /** How far a record's timestamp (or a ticket's expiry) may be off because clocks disagree. */
  maxSkewSeconds: 300,
  /** A manifest stays valid until a higher sequence replaces it. */
  siteManifestMaxAgeSeconds: Number.POSITIVE_INFINITY,
  /** Node records are re-signed on every registration and heartbeat. */
  nodeRecordMaxAgeSeconds: 3600,
  /** A purge request is a one-shot command: short window, nonce checked by the receiver. */
  purgeRequestMaxAgeSeconds: 300,
  /** A health proof answers one probe; the challenge, not the clock, is what makes it fresh. */
  healthProofMaxAgeSeconds: 60,
  /** A receipt batch is signed when it is submitted; a resubmission after a day is re-signed. */
  receiptBatchMaxAgeSeconds: 86_400,
} as const
