/**
 * @shoal/protocol — Shoal's wire formats. No I/O; runs in Node and in browsers.
 *
 * - content ids, chunk Merkle trees, inclusion proofs and streaming verification
 * - EIP-712 signed records: site manifests, node records, tickets, receipts, purges, health proofs
 * - typed errors with stable codes and the shared JSON error body
 */
export * from './content/index.ts'
export * from './errors.ts'
export * from './records/index.ts'
