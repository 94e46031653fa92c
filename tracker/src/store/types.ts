/**
 * The tracker's storage interface. Two adapters implement it: `createSqliteStore`
 * (embedded `node:sqlite`, the zero-setup default) and `createPostgresStore` (several
 * tracker replicas sharing one database). Both pass the same compliance suite
 * (`tracker/test/store/suite.ts`, `runStoreSuite`).
 *
 * Rules every adapter keeps:
 * - Addresses are stored in EIP-55 checksum form; lookups accept any case.
 * - Times are milliseconds since the epoch unless a field says seconds.
 * - Writes that check-then-write (node ownership, site ownership and sequence) are
 *   atomic, backed by unique constraints, so two replicas racing cannot both win.
 * - Failures of those checks are typed errors (`ConflictError`, `StaleError`,
 *   `ReplayError`, `ForbiddenError`), never adapter-specific ones.
 * - Every call takes `{ signal }`; an aborted signal throws `AbortError` before work starts.
 *
 * The schema is versioned (`schema_migrations`): settlement's tables (ticket
 * publishers, selections, receipt batches, epochs) came as further migrations.
 */
import type { NodeStateRow } from '../selection/index.ts'

export interface StoreCallOptions {
  signal?: AbortSignal
}

/** Operator status of a registration (liveness and score live in `NodeStateRow`). */
export type NodeRegistrationStatus = 'registered' | 'retired'

/** A registered node: its latest verified signed record and what the tracker derived from it. */
export interface NodeRow {
  /** The node's key, EIP-55 checksum form. */
  address: string
  peerId: string
  /** Canonical http(s) URL; one key owns a URL at a time. */
  httpUrl: string
  region: string
  /** Egress bytes/s the record offers. */
  capacity: number
  /** The record's `timestamp` (unix seconds): a newer registration must carry a larger one. */
  recordTimestamp: number
  /** The signed record as `encodeNodeRecord` writes it. */
  record: string
  status: NodeRegistrationStatus
  /** First registration (ms). */
  registeredAt: number
  /** Latest accepted registration (ms). */
  updatedAt: number
}

/** The heartbeat session agreed at registration (docs/tracker.md, Heartbeats). */
export interface NodeSession {
  /** Random id the node names in each heartbeat (hex, 16 bytes). */
  id: string
  /** HMAC-SHA-256 key (32 bytes). Secret: never logged, never served. */
  key: Uint8Array
  createdAt: number
}

/** What `putNode` writes. */
export interface PutNodeInput {
  node: Omit<NodeRow, 'registeredAt' | 'status'>
  session: NodeSession
}

export interface PutNodeResult {
  /** True when the address was not registered before. */
  created: boolean
  registeredAt: number
}

export interface NodeListPage {
  nodes: { node: NodeRow; state: NodeStateRow | undefined }[]
  /** Pass as `after` for the next page; `undefined` at the end. */
  next: string | undefined
}

/** One accepted client report (kept for audit trails and standing). */
export interface ReportRow {
  client: string
  node: string
  /** The report's own nonce (bytes32 hex): (client, nonce) is unique. */
  nonce: string
  /** The report's timestamp (unix seconds). */
  timestamp: number
  receivedAt: number
  /** Weight the report was applied with (the reporter's standing, capped). */
  weight: number
  /** The signed report as received (canonical JSON). */
  body: string
}

/** A client (reporter, ticket holder) as the tracker knows it. */
export interface ClientRow {
  address: string
  firstSeen: number
  lastSeen: number
  /** Reports accepted from this client. */
  reports: number
  /** Tickets issued to this client. */
  tickets: number
  /** Reports later contradicted (e.g. integrity evidence that the leaves refuted). */
  refuted: number
}

export interface SiteRow {
  site: string
  /** Owner: the first publisher of the site. */
  publisher: string
  sequence: number
  /** The manifest's timestamp (unix seconds). */
  timestamp: number
  entryCount: number
  /** The signed manifest as `encodeSiteManifest` writes it. */
  manifest: string
  updatedAt: number
}

/** A content id a published manifest names (audits sample these). */
export interface ContentRef {
  cid: string
  size: number
}

export interface TicketRow {
  /** `ticketId(ticket)`: bytes32 hex. */
  id: string
  client: string
  budget: number
  /** Unix seconds. */
  expiry: number
  issuedAt: number
  /** The signed ticket as `encodeTicket` writes it. */
  ticket: string
  /**
   * The publisher whose escrow pays for the bytes the ticket backs (EIP-55), resolved
   * at issue time from the request's site, cid or publisher. `undefined` only on
   * tickets issued before tickets named a publisher (they are never paid).
   */
  publisher?: string | undefined
}

/** The tracker handed `node` to the client of `ticket` (`GET /v1/select?…&ticket=`). */
export interface SelectionRow {
  /** `ticketId`, bytes32 lowercase hex. */
  ticket: string
  node: string
  /** First time (ms) the pair was handed out. */
  at: number
}

/** A receipt batch a node submitted (`POST /v1/receipts`), stored whole or not at all. */
export interface ReceiptBatchRow {
  /** The batch's EIP-712 digest (`hashReceiptBatch`), bytes32 lowercase hex: resubmission is idempotent on it. */
  id: string
  node: string
  epoch: number
  count: number
  /** Receipts refused at submission (their reasons are on the receipt rows). */
  rejected: number
  receivedAt: number
  /** The signed batch as `encodeReceiptBatch` writes it. */
  batch: string
}

/** One receipt of a batch, as submitted, with why it was refused at submission if it was. */
export interface ReceiptRow {
  batch: string
  /** Position in the batch. */
  index: number
  node: string
  client: string
  /** bytes32 lowercase hex. */
  session: string
  bytes: number
  epoch: number
  ticket: string
  kind: number
  signature: string
  /** The receipt's EIP-712 digest, lowercase hex. */
  digest: string
  /** `undefined` when accepted for settlement; else a reason code (docs/economics.md). */
  rejected?: string | undefined
}

/** Where an epoch's settlement is: built → posted(txHash) → confirmed, or `empty` (nothing to pay). */
export type EpochState = 'built' | 'posted' | 'confirmed' | 'empty'

/** One settled epoch (docs/economics.md, Settlement). */
export interface EpochRow {
  epoch: number
  state: EpochState
  /** Payout tree root (0x hex); `undefined` when `empty`. */
  root?: string | undefined
  /** New money this epoch: the sum of the escrow debits (decimal string, token base units). */
  total: string
  /** JSON: `{ publishers: [address], amounts: [decimal] }`, the debits `postRoot` makes. */
  debits: string
  /** JSON: the payout tree (OpenZeppelin dump) with every account's cumulative amount. */
  tree?: string | undefined
  /** JSON: figures of the settlement (counts by reason, bytes, per-node and per-publisher sums). */
  report: string
  txHash?: string | undefined
  builtAt: number
  updatedAt: number
}

/** A settlement verdict on one stored receipt (why it earns nothing). */
export interface ReceiptVerdict {
  batch: string
  index: number
  reason: string
}

/** A proven integrity failure (failed audit, or a report's evidence confirmed by an audit). */
export interface IntegrityEventRow {
  node: string
  cid: string
  chunk: number
  /** `audit` or `report`. */
  source: string
  at: number
  /** Short human-readable detail (no client addresses). */
  detail: string
}

export interface TrackerStore {
  /** `sqlite` or `postgres`. */
  readonly kind: string
  /** Creates or migrates the schema. Idempotent. */
  open(options?: StoreCallOptions): Promise<void>
  /** Releases connections and files. Idempotent. */
  close(): Promise<void>

  // ── nodes ──
  /**
   * Registers or updates a node with its session, atomically:
   * - `ReplayError` when the stored record has the same timestamp, `StaleError` when newer;
   * - `ConflictError` when another address owns the URL or the peer id.
   * Keeps `registeredAt` of an existing node; sets status `registered`.
   */
  putNode(input: PutNodeInput, options?: StoreCallOptions): Promise<PutNodeResult>
  getNode(address: string, options?: StoreCallOptions): Promise<NodeRow | undefined>
  getNodeByUrl(httpUrl: string, options?: StoreCallOptions): Promise<NodeRow | undefined>
  getSession(address: string, options?: StoreCallOptions): Promise<NodeSession | undefined>
  setNodeStatus(address: string, status: NodeRegistrationStatus, options?: StoreCallOptions): Promise<boolean>
  /** Removes the node, its session and its state. */
  removeNode(address: string, options?: StoreCallOptions): Promise<boolean>
  countNodes(options?: StoreCallOptions): Promise<number>
  /**
   * Nodes whose registration changed at or after `since` (ms), oldest change first (then
   * by address), `limit` at a time: how a replica learns of registrations made through
   * another one. The next page starts after the last row's `(updatedAt, address)`: pass
   * its `updatedAt` as `since` and its address as `after`, so a page of equal times never
   * repeats.
   */
  listNodesUpdated(
    query: { since: number; after?: string; limit: number },
    options?: StoreCallOptions,
  ): Promise<NodeRow[]>
  /** Registered nodes in address order (lowercase), with their saved state, `limit` at a time. */
  listNodes(query: { after?: string; limit: number }, options?: StoreCallOptions): Promise<NodeListPage>

  // ── probe and score state ──
  /** Saves state rows (one transaction); rows of unknown nodes are ignored. */
  putNodeStates(rows: readonly NodeStateRow[], options?: StoreCallOptions): Promise<number>
  getNodeState(address: string, options?: StoreCallOptions): Promise<NodeStateRow | undefined>

  // ── clients and reports ──
  /** Stores a report; `ReplayError` when (client, nonce) was stored before. Bumps the client's counters. */
  addReport(row: ReportRow, options?: StoreCallOptions): Promise<void>
  countReports(
    query: { client?: string; node?: string; since?: number },
    options?: StoreCallOptions,
  ): Promise<number>
  getClient(address: string, options?: StoreCallOptions): Promise<ClientRow | undefined>
  /** Counts a refuted report against the client. */
  addRefutation(address: string, at: number, options?: StoreCallOptions): Promise<void>
  /** Deletes reports received before `before`; returns how many. */
  pruneReports(before: number, options?: StoreCallOptions): Promise<number>

  // ── sites and content ──
  /**
   * Stores a verified manifest, atomically: `ForbiddenError` when another publisher owns
   * the site, `StaleError` when the stored sequence is equal or higher. The first
   * publisher of a site owns it. `contents` are the manifest's CIDs (for audits).
   */
  putSite(row: SiteRow, contents: readonly ContentRef[], options?: StoreCallOptions): Promise<void>
  getSite(site: string, options?: StoreCallOptions): Promise<SiteRow | undefined>
  countSites(options?: StoreCallOptions): Promise<number>
  /** A content id at or after `from` in CID order, wrapping around; `undefined` when none. */
  sampleContent(from: string, options?: StoreCallOptions): Promise<ContentRef | undefined>
  /** Leaves (concatenated chunk hashes) verified against their CID. */
  putLeaves(cid: string, leaves: Uint8Array, options?: StoreCallOptions): Promise<void>
  getLeaves(cid: string, options?: StoreCallOptions): Promise<Uint8Array | undefined>

  // ── tickets ──
  /** Stores an issued ticket and bumps the client's ticket count; `ConflictError` on a repeated id. */
  addTicket(row: TicketRow, options?: StoreCallOptions): Promise<void>
  getTicket(id: string, options?: StoreCallOptions): Promise<TicketRow | undefined>
  countTickets(query: { client?: string; since?: number }, options?: StoreCallOptions): Promise<number>
  /**
   * The publisher of a site whose current manifest lists `cid` (the site first in name
   * order when several do); `undefined` when none does.
   */
  findCidPublisher(cid: string, options?: StoreCallOptions): Promise<string | undefined>
  /**
   * Records (ticket, node) selections, one transaction; pairs stored before and pairs
   * of tickets this tracker never issued are ignored. Returns how many were new.
   */
  addSelections(rows: readonly SelectionRow[], options?: StoreCallOptions): Promise<number>
  /** The nodes selected for a ticket (EIP-55), in address order. */
  listSelections(ticket: string, options?: StoreCallOptions): Promise<string[]>

  // ── receipts ──
  /**
   * Stores a batch and its receipts in one transaction. Returns `created: false` (and
   * writes nothing) when a batch with the same id was stored before.
   */
  addReceiptBatch(
    batch: ReceiptBatchRow,
    receipts: readonly ReceiptRow[],
    options?: StoreCallOptions,
  ): Promise<{ created: boolean }>
  getReceiptBatch(id: string, options?: StoreCallOptions): Promise<ReceiptBatchRow | undefined>
  /** The receipts of a batch in batch order; `rejectedOnly` keeps those refused. */
  listBatchReceipts(
    id: string,
    query: { rejectedOnly?: boolean },
    options?: StoreCallOptions,
  ): Promise<ReceiptRow[]>
  /** Every receipt of an epoch accepted at submission, in (node, batch, index) order. */
  listEpochReceipts(epoch: number, options?: StoreCallOptions): Promise<ReceiptRow[]>
  /** The tickets with these ids (unknown ids are left out). */
  getTickets(ids: readonly string[], options?: StoreCallOptions): Promise<TicketRow[]>
  /** Every selection of these tickets. */
  listSelectionsOf(tickets: readonly string[], options?: StoreCallOptions): Promise<SelectionRow[]>

  // ── settlement ──
  getEpoch(epoch: number, options?: StoreCallOptions): Promise<EpochRow | undefined>
  /** Epochs up to `through` that have receipt batches and no settlement yet, oldest first. */
  listUnsettledEpochs(through: number, options?: StoreCallOptions): Promise<number[]>
  /** The most recent epoch whose state is not `empty` (its tree holds the cumulative amounts). */
  getLatestPaidEpoch(options?: StoreCallOptions): Promise<EpochRow | undefined>
  /**
   * Writes a built settlement in one transaction: the epoch row, the verdicts on its
   * receipts, and the bytes now paid per ticket (added to what earlier epochs paid).
   * `ConflictError` when the epoch was settled before (nothing is written).
   */
  putEpochSettlement(
    row: EpochRow,
    verdicts: readonly ReceiptVerdict[],
    ticketBytes: readonly { ticket: string; bytes: number }[],
    options?: StoreCallOptions,
  ): Promise<void>
  /** Moves an epoch to `posted` (with its transaction) or `confirmed`. */
  setEpochState(
    epoch: number,
    state: EpochState,
    txHash: string | undefined,
    at: number,
    options?: StoreCallOptions,
  ): Promise<void>
  /** Bytes earlier epochs paid per ticket (tickets never paid are left out). */
  getTicketUsage(tickets: readonly string[], options?: StoreCallOptions): Promise<Map<string, number>>

  // ── integrity events ──
  addIntegrityEvent(row: IntegrityEventRow, options?: StoreCallOptions): Promise<void>
  listIntegrityEvents(node: string, limit: number, options?: StoreCallOptions): Promise<IntegrityEventRow[]>

  // ── small settings (key → text), e.g. the schema's seed for placement ──
  getMeta(key: string, options?: StoreCallOptions): Promise<string | undefined>
  setMeta(key: string, value: string, options?: StoreCallOptions): Promise<void>
}
