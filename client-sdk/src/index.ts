/**
 * @shoal/client-sdk — how apps and publishers reach Shoal. Browser-safe: no `node:`
 * imports here (Node-only parts are in `@shoal/client-sdk/node`).
 *
 * - `createClient(init).fetch(input, init)`: verified, hedged, fail-over fetch
 * - `createTrackerClient`: the tracker's HTTP API (also used by edge nodes)
 * - the pieces the client is composed of, for other compositions and tests
 */
export {
  type ClientComponents,
  createClient,
  IMMUTABLE,
  originUrl,
  type ShoalClient,
  type ShoalRequestInit,
} from './client.ts'
export {
  type BodyRequest,
  type ContentFetcher,
  createContentFetcher,
  type IntegrityFailure,
} from './content.ts'
export { type SourceFailure, type UnavailableWithFailures, unavailable } from './errors.ts'
export type { ClientEvent, FailureInfo } from './events.ts'
export { parseTarget, type Target } from './input.ts'
export { createLeavesCache, type LeavesCache, rootLeaves } from './leaves.ts'
export { createNodeStats, type NodeStats } from './node-stats.ts'
export { createNodeDirectory, type NodeDirectory } from './nodes.ts'
export * from './options.ts'
export {
  compose,
  type Dispatch,
  type Interceptor,
  type Source,
  type SourceRequest,
  type SourceResponse,
} from './pipeline/dispatch.ts'
export { httpDispatch } from './pipeline/http.ts'
export { observe } from './pipeline/observe.ts'
export { type TimeoutsInit, timeouts } from './pipeline/timeouts.ts'
export { type RaceInit, type RaceWin, race } from './race.ts'
export { parseRange } from './range.ts'
export {
  createPayments,
  type FetchPayment,
  httpPaymentChannel,
  type PaymentChannel,
  type Payments,
  type PaymentsInit,
  type ReceiptAnswer,
  type SessionRequest,
} from './receipts/payments.ts'
export { createTicketBook, type PayTarget, type TicketBook } from './receipts/tickets.ts'
export {
  type RelayCandidate,
  requestRelayTicket,
  selectRelays,
} from './relay-select.ts'
export { RELAY_ERROR_HEADER, RELAY_TICKET_SCHEME, relayAuthorization } from './relay-ticket.ts'
export {
  type NodeReport,
  nodeReportTypedData,
  nodeReportTypes,
  randomNonce,
  signNodeReport,
  ZERO_HASH,
} from './reports.ts'
export { createSiteResolver, type ResolvedEntry, type SiteResolver } from './sites.ts'
export {
  createTrackerClient,
  DEFAULT_TRACKER_TIMEOUT_MS,
  type EpochAnswer,
  type PublishedSite,
  type ReportReceipt,
  type SelectedNode,
  type SelectOptions,
  type TicketGrant,
  type TicketRequest,
  type TrackerClient,
  type TrackerClientInit,
} from './tracker-client.ts'
