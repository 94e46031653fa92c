export {
  canonicalHost,
  createEgressPolicy,
  DEFAULT_DENIED_PORTS,
  type EgressDecision,
  type EgressPolicy,
  type EgressPolicyComponents,
  type EgressRefusal,
  type EgressRules,
  type LocalNetwork,
  type ResolvedAddress,
  type Resolver,
  refusalOf,
  systemLocalNetworks,
} from './egress-policy.ts'
export { type ClientLimits, createClientLimits } from './limits.ts'
export { createRelayMeter, type RelayBytesListener, type RelayMeter, type RelayUsage } from './meter.ts'
export { createRelayMetrics, type RelayMetrics } from './metrics.ts'
export * from './options.ts'
export { createRelay, RELAY_ERROR_HEADER, type Relay, type RelayComponents } from './relay-server.ts'
export {
  createTicketAuth,
  type RelayClient,
  relayAuthorization,
  TICKET_SCHEME,
  type TicketAuth,
} from './ticket-auth.ts'
