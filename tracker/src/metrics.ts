import { Counter, Gauge, Histogram, type Registry } from 'prom-client'

/**
 * The tracker's Prometheus metrics. Optional everywhere: call sites use
 * `metrics?.x.inc(...)`. Names carry their unit.
 *
 * @example
 * const register = new Registry()
 * const metrics = createMetrics(register)
 * metrics.probes.inc({ outcome: 'answered' })
 */
export function createMetrics(register: Registry) {
  const registers = [register]
  return {
    requests: new Counter({
      name: 'shoal_tracker_http_requests_total',
      help: 'HTTP requests answered, by route and status',
      labelNames: ['route', 'status'] as const,
      registers,
    }),
    requestSeconds: new Histogram({
      name: 'shoal_tracker_http_request_seconds',
      help: 'Time to answer an HTTP request, by route',
      labelNames: ['route'] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
      registers,
    }),
    rateLimited: new Counter({
      name: 'shoal_tracker_rate_limited_total',
      help: 'Requests refused by a rate limit, by limit',
      labelNames: ['limit'] as const,
      registers,
    }),
    registrations: new Counter({
      name: 'shoal_tracker_registrations_total',
      help: 'Node registrations, by outcome (created, updated, or the error code)',
      labelNames: ['outcome'] as const,
      registers,
    }),
    heartbeats: new Counter({
      name: 'shoal_tracker_heartbeats_total',
      help: 'Heartbeats, by outcome (accepted, or the error code)',
      labelNames: ['outcome'] as const,
      registers,
    }),
    probes: new Counter({
      name: 'shoal_tracker_probes_total',
      help: 'Challenge probes, by outcome (answered, missed, invalid)',
      labelNames: ['outcome'] as const,
      registers,
    }),
    probeSignaturesChecked: new Counter({
      name: 'shoal_tracker_probe_signatures_checked_total',
      help: 'Health-proof signatures checked (the rest were sampled out under the verify budget)',
      registers,
    }),
    probeRttSeconds: new Histogram({
      name: 'shoal_tracker_probe_rtt_seconds',
      help: 'Round-trip time of answered probes',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    probesInFlight: new Gauge({
      name: 'shoal_tracker_probes_in_flight',
      help: 'Probes sent and not yet answered',
      registers,
    }),
    probeLagSeconds: new Gauge({
      name: 'shoal_tracker_probe_lag_seconds',
      help: 'How far the oldest due probe is behind its schedule',
      registers,
    }),
    meshProbes: new Counter({
      name: 'shoal_tracker_mesh_probes_total',
      help: 'Mesh probes of nodes claiming mesh reachability, by outcome (direct, relayed, unreachable)',
      labelNames: ['outcome'] as const,
      registers,
    }),
    audits: new Counter({
      name: 'shoal_tracker_audits_total',
      help: 'Content audits, by outcome (passed, failed, inconclusive)',
      labelNames: ['outcome'] as const,
      registers,
    }),
    reports: new Counter({
      name: 'shoal_tracker_reports_total',
      help: 'Client reports, by outcome (accepted, or the error code)',
      labelNames: ['outcome'] as const,
      registers,
    }),
    sitesPublished: new Counter({
      name: 'shoal_tracker_sites_published_total',
      help: 'Site manifests accepted',
      registers,
    }),
    ticketsIssued: new Counter({
      name: 'shoal_tracker_tickets_issued_total',
      help: 'Tickets issued',
      registers,
    }),
    ticketBytes: new Counter({
      name: 'shoal_tracker_ticket_budget_bytes_total',
      help: 'Byte budget granted by issued tickets',
      registers,
    }),
    receiptBatches: new Counter({
      name: 'shoal_tracker_receipt_batches_total',
      help: 'Receipt batches submitted, by outcome (stored, duplicate)',
      labelNames: ['outcome'] as const,
      registers,
    }),
    receipts: new Counter({
      name: 'shoal_tracker_receipts_total',
      help: 'Receipts submitted, by outcome at submission (accepted, rejected)',
      labelNames: ['outcome'] as const,
      registers,
    }),
    selectionsDropped: new Counter({
      name: 'shoal_tracker_selections_dropped_total',
      help: '(ticket, node) selections not recorded because the pending set was full',
      registers,
    }),
    integrityFailures: new Counter({
      name: 'shoal_tracker_integrity_failures_total',
      help: 'Proven integrity failures, by source',
      labelNames: ['source'] as const,
      registers,
    }),
    stateFlushSeconds: new Histogram({
      name: 'shoal_tracker_state_flush_seconds',
      help: 'Time to write dirty node state to the store',
      buckets: [0.001, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
      registers,
    }),
    stateRowsFlushed: new Counter({
      name: 'shoal_tracker_state_rows_flushed_total',
      help: 'Node state rows written to the store',
      registers,
    }),
    nodes: new Gauge({
      name: 'shoal_tracker_nodes',
      help: 'Registered nodes, by status (refreshed on scrape)',
      labelNames: ['status'] as const,
      registers,
    }),
  }
}

export type TrackerMetrics = ReturnType<typeof createMetrics>
