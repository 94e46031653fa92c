/**
 * The node index: live node state, placement by region and bucket, and content-aware
 * selection. Specified in docs/scoring.md.
 */
export { fmix32, hashString, pairHash, rendezvousKey } from './hash.ts'
export {
  type ClientReport,
  createNodeIndex,
  type Heartbeat,
  type IndexStats,
  type NodeExplanation,
  type NodeFields,
  type NodeIndex,
  type NodeIndexComponents,
  type NodeView,
  type ProbeResult,
  type RegionStats,
  type RestoreOptions,
  type SelectedNode,
  type SelectQuery,
} from './nodeIndex.ts'
export {
  DEFAULT_BUCKETS_PER_REGION,
  DEFAULT_INITIAL_CAPACITY,
  DEFAULT_MAX_COUNT,
  DEFAULT_MAX_EXCLUDE,
  DEFAULT_MAX_REGIONS,
  DEFAULT_WEIGHT_HYSTERESIS,
  DEFAULT_WEIGHT_UNIT,
  type NodeIndexInit,
  neighborsFromLatency,
  type ResolvedNodeIndexOptions,
  resolveNodeIndexOptions,
} from './options.ts'
export { checkRow, type NodeStateRow } from './rows.ts'
