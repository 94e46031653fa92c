/**
 * EIP-712 signed records: site manifests, node records, tickets, bandwidth
 * receipts, purge requests and health proofs. Format rules: `docs/protocol.md`.
 */
export * from './bandwidthReceipt.ts'
export {
  decodeRecord,
  encodeRecord,
  hashRecord,
  RECORD_KIND_NAMES,
  type RecordKind,
  type RecordMessages,
  type RecordSigner,
  type RecordTypedData,
  type RecordTypesByKind,
  type RecordVerifyOptions,
  recordTypedData,
  signerOf,
  signRecord,
  structHashRecord,
  type TimestampVerifyOptions,
  type VerifyHealthProofOptions,
  type VerifyOptions,
  type VerifySiteManifestOptions,
  validateRecord,
  verifyRecord,
} from './codec.ts'
export * from './domain.ts'
export { comparePaths, pathProblem } from './fields.ts'
export * from './healthProof.ts'
export * from './limits.ts'
export * from './manifestEntryProof.ts'
export * from './nodeRecord.ts'
export * from './purgeRequest.ts'
export * from './receiptBatch.ts'
export {
  type BandwidthReceipt,
  type HealthProof,
  type ManifestEntry,
  type ManifestEntryProof,
  type NodeRecord,
  type PurgeRequest,
  RECEIPT_KIND,
  type ReceiptBatch,
  type ReceiptKind,
  type Signed,
  type SiteManifest,
  type SiteManifestHeader,
  type Ticket,
} from './schemas.ts'
export * from './siteManifest.ts'
export * from './ticket.ts'
