/**
 * @shoal/edge-node — the caching HTTP proxy node. See README.md.
 */
export {
  DEFAULT_DISK_CACHE_BYTES,
  DEFAULT_EPOCH_SECONDS,
  DEFAULT_MAX_SESSIONS,
  DEFAULT_MEMORY_CACHE_BYTES,
  DEFAULT_MEMORY_POLICY,
  DEFAULT_PORT,
  type EdgeNodeOptions,
  type OriginSite,
  resolveOptions,
} from './config.ts'
export type { ContentService, OpenResult } from './content/content-service.ts'
export { type ContentSource, originSource, peerSource } from './content/sources.ts'
export {
  createMesh,
  DEFAULT_MESH_NEIGHBOUR_GRACE_MS,
  type Mesh,
  type MeshComponents,
  type MeshInit,
  type MeshOptions,
  type MeshPeerInfo,
  storeHoldings,
  trackerDiscovery,
  trackerReporter,
} from './mesh/index.ts'
export { createMetrics, type EdgeMetrics } from './metrics.ts'
export { createEdgeNode, type EdgeNode, type EdgeNodeComponents } from './node.ts'
export {
  type BookSession,
  createReceiptBook,
  type EpochReceipts,
  type ReceiptBook,
  type ReceiptBookInit,
} from './receipts/book.ts'
export { createSessions, type Sessions } from './receipts/sessions.ts'
export {
  createEgressPolicy,
  createRelay,
  createRelayMeter,
  type EgressRules,
  RELAY_ERROR_HEADER,
  type Relay,
  type RelayClient,
  type RelayMeter,
  type RelayOptions,
  type RelayUsage,
  type Resolver,
  relayAuthorization,
  relayMultiaddr,
} from './relay/index.ts'
export type { ManifestRegistry, ManifestSource } from './sites/manifest-registry.ts'
export {
  type ByteCache,
  type ByteCacheInit,
  createByteCache,
  DEFAULT_EVICTION_POLICY,
  EVICTION_POLICIES,
  type EvictionPolicy,
  S3FifoCache,
} from './store/eviction/index.ts'
export { createMemoryTier, type MemoryTier, type MemoryTierInit } from './store/memory-tier.ts'
export { type Announcer, announceNode, type MeshReachability } from './tracker/index.ts'
export { createHttpUpstream, type HttpUpstream } from './upstream/http-upstream.ts'
