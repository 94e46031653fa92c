import { Counter, Gauge, Histogram, type Registry } from 'prom-client'

/**
 * The edge node's Prometheus metrics. Optional everywhere: call sites use
 * `metrics?.requests.inc(...)`. Names carry their unit.
 *
 * @example
 * const register = new Registry()
 * const metrics = createMetrics(register)
 * metrics.cacheHits.inc({ tier: 'memory' })
 */
export function createMetrics(register: Registry) {
  const registers = [register]
  return {
    requests: new Counter({
      name: 'shoal_edge_requests_total',
      help: 'HTTP requests answered, by route and status',
      labelNames: ['route', 'status'] as const,
      registers,
    }),
    responseBytes: new Counter({
      name: 'shoal_edge_response_bytes_total',
      help: 'Body bytes sent to clients, by route',
      labelNames: ['route'] as const,
      registers,
    }),
    cacheHits: new Counter({
      name: 'shoal_edge_cache_hits_total',
      help: 'Cache hits, by tier',
      labelNames: ['tier'] as const,
      registers,
    }),
    cacheMisses: new Counter({
      name: 'shoal_edge_cache_misses_total',
      help: 'Cache misses, by kind of content',
      labelNames: ['kind'] as const,
      registers,
    }),
    upstreamSeconds: new Histogram({
      name: 'shoal_edge_upstream_seconds',
      help: 'Time to the first byte of an upstream response, by upstream kind',
      labelNames: ['upstream'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    upstreamBytes: new Counter({
      name: 'shoal_edge_upstream_bytes_total',
      help: 'Body bytes received from upstreams, by upstream kind',
      labelNames: ['upstream'] as const,
      registers,
    }),
    integrityFailures: new Counter({
      name: 'shoal_edge_integrity_failures_total',
      help: 'Bytes refused because they did not match their content id, by source',
      labelNames: ['source'] as const,
      registers,
    }),
    cacheBytes: new Gauge({
      name: 'shoal_edge_cache_bytes',
      help: 'Bytes held by the cache, by tier',
      labelNames: ['tier'] as const,
      registers,
    }),
    cacheObjects: new Gauge({
      name: 'shoal_edge_cache_objects',
      help: 'Objects held by the cache, by tier',
      labelNames: ['tier'] as const,
      registers,
    }),
    sessionsOpen: new Gauge({
      name: 'shoal_edge_sessions_open',
      help: 'Payment sessions open in memory',
      registers,
    }),
    sessionsOpened: new Counter({
      name: 'shoal_edge_sessions_opened_total',
      help: 'Payment sessions opened',
      registers,
    }),
    sessionBytes: new Counter({
      name: 'shoal_edge_session_bytes_total',
      help: 'Body bytes written for requests carrying an open session (metered for receipts)',
      registers,
    }),
    receiptsAccepted: new Counter({
      name: 'shoal_edge_receipts_accepted_total',
      help: 'Bandwidth receipts accepted and stored in the receipt book',
      registers,
    }),
    receiptsRefused: new Counter({
      name: 'shoal_edge_receipts_refused_total',
      help: 'Bandwidth receipts refused, by reason',
      labelNames: ['reason'] as const,
      registers,
    }),
    receiptBytes: new Counter({
      name: 'shoal_edge_receipt_bytes_total',
      help: 'Bytes newly covered by accepted receipts',
      registers,
    }),
    meshBytes: new Counter({
      name: 'shoal_edge_mesh_chunk_bytes_total',
      help: 'Chunk bytes over the mesh, received from (in) and served to (out) peers',
      labelNames: ['direction'] as const,
      registers,
    }),
    meshPeers: new Gauge({
      name: 'shoal_edge_mesh_peers',
      help: 'Mesh peers, connected or banned',
      labelNames: ['state'] as const,
      registers,
    }),
  }
}

export type EdgeMetrics = ReturnType<typeof createMetrics>
