/**
 * @shoal/edge-node — the caching HTTP proxy node. See README.md.
 */
export {
  DEFAULT_DISK_CACHE_BYTES,
  DEFAULT_MEMORY_CACHE_BYTES,
  DEFAULT_PORT,
  type EdgeNodeOptions,
  type OriginSite,
  resolveOptions,
} from './config.ts'
export type { ContentService, OpenResult } from './content/content-service.ts'
export { type ContentSource, originSource, peerSource } from './content/sources.ts'
export {
  createMesh,
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
export type { ManifestRegistry, ManifestSource } from './sites/manifest-registry.ts'
export { createHttpUpstream, type HttpUpstream } from './upstream/http-upstream.ts'
