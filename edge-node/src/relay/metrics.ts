/** The relay's Prometheus metrics (units in the names). */
import { Counter, Gauge, type Registry } from 'prom-client'

/**
 * @example
 * const metrics = createRelayMetrics(registry)
 * metrics.bytes.inc({ direction: 'down' }, n)
 */
export function createRelayMetrics(registry: Registry) {
  return {
    bytes: new Counter({
      name: 'shoal_edge_relay_bytes_total',
      help: 'Bytes relayed, by direction (up: client to destination, down: destination to client)',
      labelNames: ['direction'] as const,
      registers: [registry],
    }),
    requests: new Counter({
      name: 'shoal_edge_relay_requests_total',
      help: 'Relayed exchanges started, by kind (forward: absolute-form http, connect: tunnel)',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
    refusals: new Counter({
      name: 'shoal_edge_relay_refusals_total',
      help: 'Requests the relay refused, by status and reason',
      labelNames: ['status', 'reason'] as const,
      registers: [registry],
    }),
    tunnels: new Gauge({
      name: 'shoal_edge_relay_tunnels',
      help: 'CONNECT tunnels open now',
      registers: [registry],
    }),
  }
}

export type RelayMetrics = ReturnType<typeof createRelayMetrics>
