/**
 * Origin-pull sites: the edge node as a shared HTTP cache in front of an origin
 * (RFC 9111). See `docs/origin-cache.md`.
 */
export {
  DEFAULT_COLLAPSE_TIMEOUT_MS,
  DEFAULT_DETACHED_FILL_MAX_BYTES,
  DEFAULT_HEURISTIC_FRACTION,
  DEFAULT_HEURISTIC_MAX_SECONDS,
  DEFAULT_VIA_NAME,
} from './constants.ts'
export type {
  FastHit,
  HeaderLookup,
  OriginCache,
  OriginCacheComponents,
  OriginCacheInit,
  OriginLogger,
  OriginMetrics,
  OriginStore,
  OriginTarget,
  OriginUpstream,
  PurgeSpec,
} from './origin-cache.ts'
export { createOriginCache } from './origin-cache.ts'
