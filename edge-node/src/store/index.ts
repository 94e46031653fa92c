/**
 * The edge node's cache tiers: a memory tier (whole small objects, synchronous hits)
 * over a disk tier (content-addressed files, crash-safe, rebuilt at start), composed
 * by a tiered store, plus single-flight coalescing of concurrent misses.
 *
 * Integrity: every body is stored with its SHA-256. Whole-body reads from disk are
 * checked as they stream (and promotions into memory before they are kept); a
 * mismatch is an `IntegrityError` and the entry is deleted. A partial range of a
 * large object cannot be checked against a whole-body hash: for content addressed by
 * a CID the caller reads the chunk-aligned span (`alignRange`) with `entry.open()`
 * and passes it through `verifyStream(cid, stream, { leaves, start, end })` from
 * `@shoal/protocol`, which checks each chunk against the CID's leaves.
 */
export type {
  DiskEntriesOptions,
  DiskEntry,
  DiskEntryInfo,
  DiskStartResult,
  DiskTier,
  DiskTierComponents,
  DiskTierInit,
  DiskTierStats,
  DiskUpdateOptions,
} from './disk-tier.ts'
export { createDiskTier } from './disk-tier.ts'
export * from './eviction/index.ts'
export type {
  MemoryEntry,
  MemorySetOptions,
  MemoryTier,
  MemoryTierComponents,
  MemoryTierInit,
} from './memory-tier.ts'
export { createMemoryTier } from './memory-tier.ts'
export type { SingleFlight, SingleFlightOptions } from './single-flight.ts'
export { createSingleFlight } from './single-flight.ts'
export type {
  ObjectStore,
  ObjectStoreComponents,
  ObjectStoreInit,
  StoreEntry,
  StoreStats,
  TieredStoreComponents,
  TieredStoreParts,
} from './tiered-store.ts'
export { createObjectStore, createTieredStore } from './tiered-store.ts'
export type {
  AbortOptions,
  BodyRange,
  BodySource,
  CommitOptions,
  EntryInfo,
  ObjectWriter,
  PutOptions,
  PutResult,
  StoreLogger,
  StoreMeta,
  StoreMetaInput,
  StoreMetrics,
  TierStats,
} from './types.ts'
