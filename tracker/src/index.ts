/**
 * @shoal/tracker — registers nodes, probes and audits them, scores them and tells
 * clients which nodes to use; holds publishers' site manifests and issues tickets.
 * The API is documented in docs/tracker.md.
 */
export type {
  HeartbeatBody,
  HeartbeatFigures,
  RegisterBody,
  ReportBody,
  TicketRequest,
} from './api/schemas.ts'
export { type AuditOutcome, type Auditor, createAuditor } from './audit/auditor.ts'
export { fetchPayoutProof, type PayoutProof, submitReceiptBatch } from './client/receipts.ts'
export {
  DASHBOARD_SCHEMA,
  type DashboardNode,
  dashboardData,
  type TrackerDashboardComponents,
  type TrackerDashboardData,
} from './dashboard/dashboard.ts'
export { type EpochInfo, epochAt, epochInfo } from './epochs/epochs.ts'
export {
  agreeSession,
  checkHeartbeatMac,
  createSessionKeyPair,
  deriveSessionKey,
  HEARTBEAT_MAC_HEADER,
  macHeartbeat,
  type SessionKeyPair,
} from './heartbeat/session.ts'
export { createMetrics, type TrackerMetrics } from './metrics.ts'
export * from './options.ts'
export { createProber, type ProbeOutcome, type Prober } from './probe/prober.ts'
export {
  createLibp2pMeshDialer,
  createMeshProber,
  type MeshDialer,
  type MeshProbeOutcome,
  type MeshProber,
  type MeshProbeTarget,
  meshProbeTarget,
} from './reachability/mesh-prober.ts'
export { createReceiptDigester, digestHex } from './receipts/digest.ts'
export {
  type BatchReport,
  type BatchResult,
  createReceiptIngest,
  type ReceiptIngest,
} from './receipts/ingest.ts'
export { recoverSigner, recoveryBackend } from './receipts/recover.ts'
export { createReceiptVerifier, type ReceiptVerifier } from './receipts/verifier.ts'
export { createRegistry, type NodeMeta, type RegisterResult, type Registry } from './registry/registry.ts'
export { createReportService, type ReportResult, type ReportService } from './reports/reports.ts'
export * from './reports/standing.ts'
export * from './scoring/index.ts'
export * from './selection/index.ts'
export {
  createViemSettlementChain,
  type PostRootArgs,
  type SettlementChain,
  type ViemSettlementChainInit,
} from './settlement/chain.ts'
export {
  type ComputeInput,
  type ComputeResult,
  computeSettlement,
  type SettleNode,
} from './settlement/compute.ts'
export { REJECT, type RejectReason } from './settlement/reasons.ts'
export { createSettler, type Settler, type SettlerInit } from './settlement/settler.ts'
export { signNodeReport, signTrackerSession, verifyNodeReport, verifyTrackerSession } from './signing/sign.ts'
export * from './signing/types.ts'
export { createSiteService, type PublishResult, type SiteService } from './sites/sites.ts'
export { createPostgresStore, type PostgresStoreInit } from './store/postgres.ts'
export { createSqliteStore, type SqliteStoreInit } from './store/sqlite.ts'
export type * from './store/types.ts'
export { createTicketIssuer, type IssuedTicket, type TicketIssuer } from './tickets/issuer.ts'
export { createSelectionLog, type SelectionLog } from './tickets/selections.ts'
export { createTracker, PLACEMENT_SEED_KEY, type Tracker, type TrackerComponents } from './tracker.ts'
