/** The libp2p mesh between nodes (docs/mesh.md). */

export { trackerDiscovery } from './discovery.ts'
export { type MeshHoldings, storeHoldings } from './holdings.ts'
export { loadOrCreateMeshKey, MESH_KEY_FILE } from './identity.ts'
export {
  createMesh,
  DEFAULT_MESH_MAX_NEIGHBOURS,
  type Mesh,
  type MeshComponents,
  type MeshInit,
  type MeshPeerInfo,
} from './mesh.ts'
export { type MeshOptions, resolveMeshInit } from './options.ts'
export { type MeshReceiptsComponents, type MeshReceiptsInit, receiptHandler } from './receipts.ts'
export { trackerReporter } from './report.ts'
