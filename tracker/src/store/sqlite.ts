/**
 * The embedded storage adapter on `node:sqlite` (`DatabaseSync`): one file, WAL
 * journal, prepared statements, one transaction per multi-statement write. Zero setup:
 * the default for a single tracker.
 *
 * `node:sqlite` is synchronous; the methods are async only to share the interface with
 * PostgreSQL. Each call is short (an indexed lookup or a small transaction), so it does
 * not hold the event loop for long; bulk writes (state flushes, manifests with many
 * entries) run in one transaction, which is what makes them fast.
 */
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import type { DatabaseSync, StatementSync } from 'node:sqlite'
import {
  ConflictError,
  ForbiddenError,
  InvalidArgumentError,
  ReplayError,
  StaleError,
  UnavailableError,
} from '@shoal/protocol'
import type { NodeStateRow } from '../selection/index.ts'
import {
  batchOf,
  checkLimit,
  checkSignal,
  decodeState,
  encodeState,
  epochOf,
  keyOf,
  receiptOf,
  toBytes,
} from './common.ts'
import type {
  ClientRow,
  ContentRef,
  IntegrityEventRow,
  NodeListPage,
  NodeRegistrationStatus,
  NodeRow,
  NodeSession,
  PutNodeResult,
  SelectionRow,
  SiteRow,
  TicketRow,
  TrackerStore,
} from './types.ts'

export interface SqliteStoreInit {
  /** Database file, or `:memory:` (tests). Its directory is created when missing. */
  path: string
  /** How long a write waits for another process's lock (ms). Default 5000. */
  busyTimeoutMs?: number
}

export const DEFAULT_SQLITE_BUSY_TIMEOUT_MS = 5_000

/** Schema migrations, applied in order; a version is never edited once released. */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE nodes (
    address_key TEXT PRIMARY KEY,
    address TEXT NOT NULL,
    peer_id TEXT NOT NULL UNIQUE,
    http_url TEXT NOT NULL UNIQUE,
    region TEXT NOT NULL,
    capacity INTEGER NOT NULL,
    record_timestamp INTEGER NOT NULL,
    record TEXT NOT NULL,
    status TEXT NOT NULL,
    registered_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    session_id TEXT NOT NULL,
    session_key BLOB NOT NULL,
    session_created_at INTEGER NOT NULL
  );
  CREATE TABLE node_states (
    address_key TEXT PRIMARY KEY REFERENCES nodes(address_key) ON DELETE CASCADE,
    state TEXT NOT NULL
  );
  CREATE TABLE clients (
    address_key TEXT PRIMARY KEY,
    address TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    reports INTEGER NOT NULL DEFAULT 0,
    tickets INTEGER NOT NULL DEFAULT 0,
    refuted INTEGER NOT NULL DEFAULT 0
  );
  CREATE TABLE reports (
    client_key TEXT NOT NULL,
    nonce TEXT NOT NULL,
    client TEXT NOT NULL,
    node_key TEXT NOT NULL,
    node TEXT NOT NULL,
    timestamp INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    weight REAL NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (client_key, nonce)
  );
  CREATE INDEX reports_node ON reports (node_key, received_at);
  CREATE INDEX reports_client ON reports (client_key, received_at);
  CREATE INDEX reports_received ON reports (received_at);
  CREATE TABLE sites (
    site TEXT PRIMARY KEY,
    publisher TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    entry_count INTEGER NOT NULL,
    manifest TEXT NOT NULL,
    updated_at INTEGER NOT NULL
  );
  CREATE TABLE contents (
    site TEXT NOT NULL,
    cid TEXT NOT NULL,
    size INTEGER NOT NULL,
    PRIMARY KEY (site, cid)
  );
  CREATE INDEX contents_cid ON contents (cid);
  CREATE TABLE leaves (
    cid TEXT PRIMARY KEY,
    leaves BLOB NOT NULL
  );
  CREATE TABLE tickets (
    id TEXT PRIMARY KEY,
    client_key TEXT NOT NULL,
    client TEXT NOT NULL,
    budget INTEGER NOT NULL,
    expiry INTEGER NOT NULL,
    issued_at INTEGER NOT NULL,
    ticket TEXT NOT NULL
  );
  CREATE INDEX tickets_client ON tickets (client_key, issued_at);
  CREATE INDEX tickets_issued ON tickets (issued_at);
  CREATE TABLE integrity_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    node_key TEXT NOT NULL,
    node TEXT NOT NULL,
    cid TEXT NOT NULL,
    chunk INTEGER NOT NULL,
    source TEXT NOT NULL,
    at INTEGER NOT NULL,
    detail TEXT NOT NULL
  );
  CREATE INDEX integrity_events_node ON integrity_events (node_key, at);
  CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
  );
  `,
  `
  CREATE INDEX nodes_updated ON nodes (updated_at);
  `,
  `
  ALTER TABLE tickets ADD COLUMN publisher TEXT;
  CREATE TABLE selections (
    ticket TEXT NOT NULL,
    node_key TEXT NOT NULL,
    node TEXT NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (ticket, node_key)
  ) WITHOUT ROWID;
  `,
  `
  CREATE TABLE receipt_batches (
    id TEXT PRIMARY KEY,
    node_key TEXT NOT NULL,
    node TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    count INTEGER NOT NULL,
    rejected INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    batch TEXT NOT NULL
  );
  CREATE INDEX receipt_batches_epoch ON receipt_batches (epoch, node_key);
  CREATE TABLE receipts (
    batch TEXT NOT NULL REFERENCES receipt_batches (id),
    idx INTEGER NOT NULL,
    node TEXT NOT NULL,
    client TEXT NOT NULL,
    session TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    ticket TEXT NOT NULL,
    kind INTEGER NOT NULL,
    signature TEXT NOT NULL,
    digest TEXT NOT NULL,
    rejected TEXT,
    PRIMARY KEY (batch, idx)
  ) WITHOUT ROWID;
  CREATE INDEX receipts_epoch ON receipts (epoch, node, batch, idx);
  CREATE TABLE epochs (
    epoch INTEGER PRIMARY KEY,
    state TEXT NOT NULL,
    root TEXT,
    total TEXT NOT NULL,
    debits TEXT NOT NULL,
    tree TEXT,
    report TEXT NOT NULL,
    tx_hash TEXT,
    built_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  );
  CREATE TABLE ticket_usage (
    ticket TEXT PRIMARY KEY,
    bytes INTEGER NOT NULL
  );
  `,
]

type Row = Record<string, unknown>

/** SQLITE_CONSTRAINT_UNIQUE and SQLITE_CONSTRAINT_PRIMARYKEY. */
function isUniqueViolation(err: unknown): boolean {
  const code = (err as { errcode?: unknown })?.errcode
  return code === 2067 || code === 1555
}

/**
 * Loads `node:sqlite` without its one-time ExperimentalWarning (only that warning is
 * dropped; every other warning still reaches the process).
 */
async function loadSqlite(): Promise<typeof import('node:sqlite')> {
  const original = process.emitWarning
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    const text = typeof warning === 'string' ? warning : warning.message
    const type = typeof rest[0] === 'string' ? rest[0] : (rest[0] as { type?: string } | undefined)?.type
    if (
      (type === 'ExperimentalWarning' || (warning as Error).name === 'ExperimentalWarning') &&
      /SQLite/i.test(text)
    ) {
      return
    }
    return (original as (...args: unknown[]) => void).call(process, warning, ...rest)
  }) as typeof process.emitWarning
  try {
    return await import('node:sqlite')
  } finally {
    process.emitWarning = original
  }
}

function nodeOf(r: Row): NodeRow {
  return {
    address: r.address as string,
    peerId: r.peer_id as string,
    httpUrl: r.http_url as string,
    region: r.region as string,
    capacity: r.capacity as number,
    recordTimestamp: r.record_timestamp as number,
    record: r.record as string,
    status: r.status as NodeRegistrationStatus,
    registeredAt: r.registered_at as number,
    updatedAt: r.updated_at as number,
  }
}

function siteOf(r: Row): SiteRow {
  return {
    site: r.site as string,
    publisher: r.publisher as string,
    sequence: r.sequence as number,
    timestamp: r.timestamp as number,
    entryCount: r.entry_count as number,
    manifest: r.manifest as string,
    updatedAt: r.updated_at as number,
  }
}

function clientOf(r: Row): ClientRow {
  return {
    address: r.address as string,
    firstSeen: r.first_seen as number,
    lastSeen: r.last_seen as number,
    reports: r.reports as number,
    tickets: r.tickets as number,
    refuted: r.refuted as number,
  }
}

function ticketOf(r: Row): TicketRow {
  return {
    id: r.id as string,
    client: r.client as string,
    budget: r.budget as number,
    expiry: r.expiry as number,
    issuedAt: r.issued_at as number,
    ticket: r.ticket as string,
    publisher: (r.publisher as string | null) ?? undefined,
  }
}

/**
 * Creates the SQLite store; call `open()` before use.
 *
 * @example
 * const store = createSqliteStore({ path: '/var/lib/shoal-tracker/tracker.db' })
 * await store.open()
 */
export function createSqliteStore(init: SqliteStoreInit): TrackerStore {
  if (typeof init !== 'object' || init === null)
    throw new InvalidArgumentError('sqlite store options must be an object')
  const path = init.path
  if (typeof path !== 'string' || path === '')
    throw new InvalidArgumentError('path must be a non-empty string')
  const busyTimeoutMs = init.busyTimeoutMs ?? DEFAULT_SQLITE_BUSY_TIMEOUT_MS
  if (!Number.isSafeInteger(busyTimeoutMs) || busyTimeoutMs < 0) {
    throw new InvalidArgumentError(`busyTimeoutMs must be an integer ≥ 0, got ${String(busyTimeoutMs)}`)
  }

  let db: DatabaseSync | undefined
  const statements = new Map<string, StatementSync>()

  const database = (): DatabaseSync => {
    if (db === undefined) throw new UnavailableError('the sqlite store is not open')
    return db
  }
  const stmt = (sql: string): StatementSync => {
    let s = statements.get(sql)
    if (s === undefined) {
      s = database().prepare(sql)
      statements.set(sql, s)
    }
    return s
  }
  const tx = <T>(fn: () => T): T => {
    const d = database()
    d.exec('BEGIN IMMEDIATE')
    try {
      const result = fn()
      d.exec('COMMIT')
      return result
    } catch (err) {
      d.exec('ROLLBACK')
      throw err
    }
  }

  const touchClient = (address: string, at: number, reports: number, tickets: number): void => {
    stmt(
      `INSERT INTO clients (address_key, address, first_seen, last_seen, reports, tickets, refuted)
       VALUES (?, ?, ?, ?, ?, ?, 0)
       ON CONFLICT (address_key) DO UPDATE SET
         last_seen = max(clients.last_seen, excluded.last_seen),
         reports = clients.reports + excluded.reports,
         tickets = clients.tickets + excluded.tickets`,
    ).run(keyOf(address), address, at, at, reports, tickets)
  }

  const store: TrackerStore = {
    kind: 'sqlite',

    async open(options) {
      checkSignal(options)
      if (db !== undefined) return
      const { DatabaseSync } = await loadSqlite()
      if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
      const d = new DatabaseSync(path)
      try {
        d.exec(`PRAGMA busy_timeout = ${busyTimeoutMs}`)
        d.exec('PRAGMA journal_mode = WAL')
        d.exec('PRAGMA synchronous = NORMAL')
        d.exec('PRAGMA foreign_keys = ON')
        d.exec(
          'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)',
        )
        const row = d.prepare('SELECT max(version) AS v FROM schema_migrations').get() as Row | undefined
        const current = (row?.v as number | null) ?? 0
        for (let v = current; v < MIGRATIONS.length; v++) {
          d.exec('BEGIN IMMEDIATE')
          try {
            d.exec(MIGRATIONS[v]!)
            d.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(
              v + 1,
              Date.now(),
            )
            d.exec('COMMIT')
          } catch (err) {
            d.exec('ROLLBACK')
            throw err
          }
        }
      } catch (err) {
        d.close()
        throw err
      }
      db = d
    },

    async close() {
      if (db === undefined) return
      statements.clear()
      const d = db
      db = undefined
      d.close()
    },

    async putNode(input, options) {
      checkSignal(options)
      const { node, session } = input
      const key = keyOf(node.address)
      return tx(() => {
        const existing = stmt(
          'SELECT record_timestamp, record, registered_at FROM nodes WHERE address_key = ?',
        ).get(key) as Row | undefined
        if (existing !== undefined) {
          const ts = existing.record_timestamp as number
          if (node.recordTimestamp === ts) {
            throw new ReplayError(`a record with timestamp ${ts} was already accepted for ${node.address}`)
          }
          if (node.recordTimestamp < ts) {
            throw new StaleError(`the registered record of ${node.address} is newer (timestamp ${ts})`)
          }
        }
        const urlOwner = stmt('SELECT address FROM nodes WHERE http_url = ? AND address_key <> ?').get(
          node.httpUrl,
          key,
        ) as Row | undefined
        if (urlOwner !== undefined) throw new ConflictError(`${node.httpUrl} is registered by another node`)
        const peerOwner = stmt('SELECT address FROM nodes WHERE peer_id = ? AND address_key <> ?').get(
          node.peerId,
          key,
        ) as Row | undefined
        if (peerOwner !== undefined)
          throw new ConflictError(`peer id ${node.peerId} is registered by another node`)
        const registeredAt = existing === undefined ? node.updatedAt : (existing.registered_at as number)
        try {
          stmt(
            `INSERT INTO nodes (address_key, address, peer_id, http_url, region, capacity, record_timestamp, record,
               status, registered_at, updated_at, session_id, session_key, session_created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'registered', ?, ?, ?, ?, ?)
             ON CONFLICT (address_key) DO UPDATE SET
               address = excluded.address, peer_id = excluded.peer_id, http_url = excluded.http_url,
               region = excluded.region, capacity = excluded.capacity,
               record_timestamp = excluded.record_timestamp, record = excluded.record,
               status = 'registered', updated_at = excluded.updated_at, session_id = excluded.session_id,
               session_key = excluded.session_key, session_created_at = excluded.session_created_at`,
          ).run(
            key,
            node.address,
            node.peerId,
            node.httpUrl,
            node.region,
            node.capacity,
            node.recordTimestamp,
            node.record,
            registeredAt,
            node.updatedAt,
            session.id,
            session.key,
            session.createdAt,
          )
        } catch (err) {
          if (isUniqueViolation(err))
            throw new ConflictError('the URL or peer id is registered by another node')
          throw err
        }
        return { created: existing === undefined, registeredAt }
      }) satisfies PutNodeResult
    },

    async getNode(address, options) {
      checkSignal(options)
      const r = stmt('SELECT * FROM nodes WHERE address_key = ?').get(keyOf(address)) as Row | undefined
      return r === undefined ? undefined : nodeOf(r)
    },

    async getNodeByUrl(httpUrl, options) {
      checkSignal(options)
      const r = stmt('SELECT * FROM nodes WHERE http_url = ?').get(httpUrl) as Row | undefined
      return r === undefined ? undefined : nodeOf(r)
    },

    async getSession(address, options) {
      checkSignal(options)
      const r = stmt(
        'SELECT session_id, session_key, session_created_at FROM nodes WHERE address_key = ?',
      ).get(keyOf(address)) as Row | undefined
      if (r === undefined) return undefined
      return {
        id: r.session_id as string,
        key: toBytes(r.session_key),
        createdAt: r.session_created_at as number,
      } satisfies NodeSession
    },

    async setNodeStatus(address, status, options) {
      checkSignal(options)
      if (status !== 'registered' && status !== 'retired') {
        throw new InvalidArgumentError(`status must be registered or retired, got ${JSON.stringify(status)}`)
      }
      return (
        stmt('UPDATE nodes SET status = ?, updated_at = max(updated_at, ?) WHERE address_key = ?').run(
          status,
          Date.now(),
          keyOf(address),
        ).changes > 0
      )
    },

    async removeNode(address, options) {
      checkSignal(options)
      const key = keyOf(address)
      return tx(() => {
        stmt('DELETE FROM node_states WHERE address_key = ?').run(key)
        return stmt('DELETE FROM nodes WHERE address_key = ?').run(key).changes > 0
      })
    },

    async countNodes(options) {
      checkSignal(options)
      return (stmt('SELECT count(*) AS n FROM nodes').get() as Row).n as number
    },

    async listNodesUpdated(query, options) {
      checkSignal(options)
      const limit = checkLimit(query.limit)
      const rows = (
        query.after === undefined
          ? stmt('SELECT * FROM nodes WHERE updated_at >= ? ORDER BY updated_at, address_key LIMIT ?').all(
              query.since,
              limit,
            )
          : stmt(
              `SELECT * FROM nodes WHERE updated_at >= ? AND (updated_at > ? OR address_key > ?)
               ORDER BY updated_at, address_key LIMIT ?`,
            ).all(query.since, query.since, keyOf(query.after), limit)
      ) as Row[]
      return rows.map(nodeOf)
    },

    async listNodes(query, options) {
      checkSignal(options)
      const limit = checkLimit(query.limit)
      const after = query.after === undefined ? '' : keyOf(query.after)
      const rows = stmt(
        `SELECT n.*, s.state FROM nodes n LEFT JOIN node_states s ON s.address_key = n.address_key
         WHERE n.address_key > ? ORDER BY n.address_key LIMIT ?`,
      ).all(after, limit) as Row[]
      const page: NodeListPage = {
        nodes: rows.map((r) => ({ node: nodeOf(r), state: decodeState(r.state as string | null) })),
        next: rows.length === limit ? (rows[rows.length - 1]!.address_key as string) : undefined,
      }
      return page
    },

    async putNodeStates(rows, options) {
      checkSignal(options)
      if (rows.length === 0) return 0
      return tx(() => {
        let n = 0
        const upsert = stmt(
          `INSERT INTO node_states (address_key, state)
           SELECT address_key, ? FROM nodes WHERE address_key = ?
           ON CONFLICT (address_key) DO UPDATE SET state = excluded.state`,
        )
        for (const row of rows) n += Number(upsert.run(encodeState(row), keyOf(row.node)).changes)
        return n
      })
    },

    async getNodeState(address, options) {
      checkSignal(options)
      const r = stmt('SELECT state FROM node_states WHERE address_key = ?').get(keyOf(address)) as
        | Row
        | undefined
      return decodeState(r?.state as string | undefined) satisfies NodeStateRow | undefined
    },

    async addReport(row, options) {
      checkSignal(options)
      tx(() => {
        try {
          stmt(
            `INSERT INTO reports (client_key, nonce, client, node_key, node, timestamp, received_at, weight, body)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          ).run(
            keyOf(row.client),
            row.nonce.toLowerCase(),
            row.client,
            keyOf(row.node),
            row.node,
            row.timestamp,
            row.receivedAt,
            row.weight,
            row.body,
          )
        } catch (err) {
          if (isUniqueViolation(err)) throw new ReplayError(`report ${row.nonce} was already received`)
          throw err
        }
        touchClient(row.client, row.receivedAt, 1, 0)
      })
    },

    async countReports(query, options) {
      checkSignal(options)
      const since = query.since ?? 0
      if (query.client !== undefined && query.node !== undefined) {
        return (
          stmt(
            'SELECT count(*) AS n FROM reports WHERE client_key = ? AND node_key = ? AND received_at >= ?',
          ).get(keyOf(query.client), keyOf(query.node), since) as Row
        ).n as number
      }
      if (query.client !== undefined) {
        return (
          stmt('SELECT count(*) AS n FROM reports WHERE client_key = ? AND received_at >= ?').get(
            keyOf(query.client),
            since,
          ) as Row
        ).n as number
      }
      if (query.node !== undefined) {
        return (
          stmt('SELECT count(*) AS n FROM reports WHERE node_key = ? AND received_at >= ?').get(
            keyOf(query.node),
            since,
          ) as Row
        ).n as number
      }
      return (stmt('SELECT count(*) AS n FROM reports WHERE received_at >= ?').get(since) as Row).n as number
    },

    async getClient(address, options) {
      checkSignal(options)
      const r = stmt('SELECT * FROM clients WHERE address_key = ?').get(keyOf(address)) as Row | undefined
      return r === undefined ? undefined : clientOf(r)
    },

    async addRefutation(address, at, options) {
      checkSignal(options)
      tx(() => {
        touchClient(address, at, 0, 0)
        stmt('UPDATE clients SET refuted = refuted + 1 WHERE address_key = ?').run(keyOf(address))
      })
    },

    async pruneReports(before, options) {
      checkSignal(options)
      return Number(stmt('DELETE FROM reports WHERE received_at < ?').run(before).changes)
    },

    async putSite(row, contents, options) {
      checkSignal(options)
      tx(() => {
        const existing = stmt('SELECT publisher, sequence FROM sites WHERE site = ?').get(row.site) as
          | Row
          | undefined
        if (existing !== undefined) {
          if ((existing.publisher as string).toLowerCase() !== row.publisher.toLowerCase()) {
            throw new ForbiddenError(`site ${row.site} belongs to another publisher`)
          }
          if ((existing.sequence as number) >= row.sequence) {
            throw new StaleError(
              `site ${row.site} is at sequence ${existing.sequence as number}; sequence ${row.sequence} is not newer`,
            )
          }
        }
        stmt(
          `INSERT INTO sites (site, publisher, sequence, timestamp, entry_count, manifest, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (site) DO UPDATE SET sequence = excluded.sequence, timestamp = excluded.timestamp,
             entry_count = excluded.entry_count, manifest = excluded.manifest, updated_at = excluded.updated_at`,
        ).run(
          row.site,
          row.publisher,
          row.sequence,
          row.timestamp,
          row.entryCount,
          row.manifest,
          row.updatedAt,
        )
        stmt('DELETE FROM contents WHERE site = ?').run(row.site)
        const insert = stmt('INSERT OR IGNORE INTO contents (site, cid, size) VALUES (?, ?, ?)')
        for (const c of contents) insert.run(row.site, c.cid, c.size)
      })
    },

    async getSite(site, options) {
      checkSignal(options)
      const r = stmt('SELECT * FROM sites WHERE site = ?').get(site) as Row | undefined
      return r === undefined ? undefined : siteOf(r)
    },

    async countSites(options) {
      checkSignal(options)
      return (stmt('SELECT count(*) AS n FROM sites').get() as Row).n as number
    },

    async sampleContent(from, options) {
      checkSignal(options)
      const r = (stmt('SELECT cid, size FROM contents WHERE cid >= ? ORDER BY cid LIMIT 1').get(from) ??
        stmt('SELECT cid, size FROM contents ORDER BY cid LIMIT 1').get()) as Row | undefined
      return r === undefined
        ? undefined
        : ({ cid: r.cid as string, size: r.size as number } satisfies ContentRef)
    },

    async putLeaves(cid, leaves, options) {
      checkSignal(options)
      stmt('INSERT INTO leaves (cid, leaves) VALUES (?, ?) ON CONFLICT (cid) DO NOTHING').run(cid, leaves)
    },

    async getLeaves(cid, options) {
      checkSignal(options)
      const r = stmt('SELECT leaves FROM leaves WHERE cid = ?').get(cid) as Row | undefined
      return r === undefined ? undefined : toBytes(r.leaves)
    },

    async addTicket(row, options) {
      checkSignal(options)
      tx(() => {
        try {
          stmt(
            `INSERT INTO tickets (id, client_key, client, budget, expiry, issued_at, ticket, publisher)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
          ).run(
            row.id,
            keyOf(row.client),
            row.client,
            row.budget,
            row.expiry,
            row.issuedAt,
            row.ticket,
            row.publisher ?? null,
          )
        } catch (err) {
          if (isUniqueViolation(err)) throw new ConflictError(`ticket ${row.id} was already issued`)
          throw err
        }
        touchClient(row.client, row.issuedAt, 0, 1)
      })
    },

    async getTicket(id, options) {
      checkSignal(options)
      const r = stmt('SELECT * FROM tickets WHERE id = ?').get(id) as Row | undefined
      return r === undefined ? undefined : ticketOf(r)
    },

    async countTickets(query, options) {
      checkSignal(options)
      const since = query.since ?? 0
      if (query.client !== undefined) {
        return (
          stmt('SELECT count(*) AS n FROM tickets WHERE client_key = ? AND issued_at >= ?').get(
            keyOf(query.client),
            since,
          ) as Row
        ).n as number
      }
      return (stmt('SELECT count(*) AS n FROM tickets WHERE issued_at >= ?').get(since) as Row).n as number
    },

    async findCidPublisher(cid, options) {
      checkSignal(options)
      const r = stmt(
        'SELECT s.publisher FROM contents c JOIN sites s ON s.site = c.site WHERE c.cid = ? ORDER BY c.site LIMIT 1',
      ).get(cid) as Row | undefined
      return r?.publisher as string | undefined
    },

    async addSelections(rows, options) {
      checkSignal(options)
      if (rows.length === 0) return 0
      return tx(() => {
        const insert = stmt(
          `INSERT INTO selections (ticket, node_key, node, at)
           SELECT id, ?, ?, ? FROM tickets WHERE id = ?
           ON CONFLICT (ticket, node_key) DO NOTHING`,
        )
        let n = 0
        for (const r of rows) n += Number(insert.run(keyOf(r.node), r.node, r.at, r.ticket).changes)
        return n
      })
    },

    async listSelections(ticket, options) {
      checkSignal(options)
      const rows = stmt('SELECT node FROM selections WHERE ticket = ? ORDER BY node_key').all(ticket) as Row[]
      return rows.map((r) => r.node as string)
    },

    async addReceiptBatch(batch, receipts, options) {
      checkSignal(options)
      return tx(() => {
        const inserted = stmt(
          `INSERT INTO receipt_batches (id, node_key, node, epoch, count, rejected, received_at, batch)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
        ).run(
          batch.id,
          keyOf(batch.node),
          batch.node,
          batch.epoch,
          batch.count,
          batch.rejected,
          batch.receivedAt,
          batch.batch,
        )
        if (Number(inserted.changes) === 0) return { created: false }
        const insert = stmt(
          `INSERT INTO receipts (batch, idx, node, client, session, bytes, epoch, ticket, kind, signature, digest, rejected)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        for (const r of receipts) {
          insert.run(
            batch.id,
            r.index,
            r.node,
            r.client,
            r.session,
            r.bytes,
            r.epoch,
            r.ticket,
            r.kind,
            r.signature,
            r.digest,
            r.rejected ?? null,
          )
        }
        return { created: true }
      })
    },

    async getReceiptBatch(id, options) {
      checkSignal(options)
      const r = stmt('SELECT * FROM receipt_batches WHERE id = ?').get(id) as Row | undefined
      return r === undefined ? undefined : batchOf(r)
    },

    async listBatchReceipts(id, query, options) {
      checkSignal(options)
      const sql =
        query.rejectedOnly === true
          ? 'SELECT * FROM receipts WHERE batch = ? AND rejected IS NOT NULL ORDER BY idx'
          : 'SELECT * FROM receipts WHERE batch = ? ORDER BY idx'
      return (stmt(sql).all(id) as Row[]).map(receiptOf)
    },

    async listEpochReceipts(epoch, options) {
      checkSignal(options)
      const rows = stmt(
        'SELECT * FROM receipts WHERE epoch = ? AND rejected IS NULL ORDER BY node, batch, idx',
      ).all(epoch) as Row[]
      return rows.map(receiptOf)
    },

    async getTickets(ids, options) {
      checkSignal(options)
      const get = stmt('SELECT * FROM tickets WHERE id = ?')
      const out: TicketRow[] = []
      for (const id of ids) {
        const r = get.get(id) as Row | undefined
        if (r !== undefined) out.push(ticketOf(r))
      }
      return out
    },

    async listSelectionsOf(tickets, options) {
      checkSignal(options)
      const list = stmt('SELECT ticket, node, at FROM selections WHERE ticket = ?')
      const out: SelectionRow[] = []
      for (const t of tickets) {
        for (const r of list.all(t) as Row[]) {
          out.push({ ticket: r.ticket as string, node: r.node as string, at: r.at as number })
        }
      }
      return out
    },

    async getEpoch(epoch, options) {
      checkSignal(options)
      const r = stmt('SELECT * FROM epochs WHERE epoch = ?').get(epoch) as Row | undefined
      return r === undefined ? undefined : epochOf(r)
    },

    async listUnsettledEpochs(through, options) {
      checkSignal(options)
      const rows = stmt(
        `SELECT DISTINCT epoch FROM receipt_batches WHERE epoch <= ?
         AND epoch NOT IN (SELECT epoch FROM epochs) ORDER BY epoch`,
      ).all(through) as Row[]
      return rows.map((r) => r.epoch as number)
    },

    async getLatestPaidEpoch(options) {
      checkSignal(options)
      const r = stmt("SELECT * FROM epochs WHERE state <> 'empty' ORDER BY epoch DESC LIMIT 1").get() as
        | Row
        | undefined
      return r === undefined ? undefined : epochOf(r)
    },

    async putEpochSettlement(row, verdicts, ticketBytes, options) {
      checkSignal(options)
      tx(() => {
        const inserted = stmt(
          `INSERT INTO epochs (epoch, state, root, total, debits, tree, report, tx_hash, built_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (epoch) DO NOTHING`,
        ).run(
          row.epoch,
          row.state,
          row.root ?? null,
          row.total,
          row.debits,
          row.tree ?? null,
          row.report,
          row.txHash ?? null,
          row.builtAt,
          row.updatedAt,
        )
        if (Number(inserted.changes) === 0) throw new ConflictError(`epoch ${row.epoch} was settled before`)
        const mark = stmt('UPDATE receipts SET rejected = ? WHERE batch = ? AND idx = ?')
        for (const v of verdicts) mark.run(v.reason, v.batch, v.index)
        const use = stmt(
          'INSERT INTO ticket_usage (ticket, bytes) VALUES (?, ?) ON CONFLICT (ticket) DO UPDATE SET bytes = bytes + excluded.bytes',
        )
        for (const t of ticketBytes) use.run(t.ticket, t.bytes)
      })
    },

    async setEpochState(epoch, state, txHash, at, options) {
      checkSignal(options)
      stmt('UPDATE epochs SET state = ?, tx_hash = coalesce(?, tx_hash), updated_at = ? WHERE epoch = ?').run(
        state,
        txHash ?? null,
        at,
        epoch,
      )
    },

    async getTicketUsage(tickets, options) {
      checkSignal(options)
      const get = stmt('SELECT bytes FROM ticket_usage WHERE ticket = ?')
      const out = new Map<string, number>()
      for (const t of tickets) {
        const r = get.get(t) as Row | undefined
        if (r !== undefined) out.set(t, r.bytes as number)
      }
      return out
    },

    async addIntegrityEvent(row, options) {
      checkSignal(options)
      stmt(
        'INSERT INTO integrity_events (node_key, node, cid, chunk, source, at, detail) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ).run(keyOf(row.node), row.node, row.cid, row.chunk, row.source, row.at, row.detail)
    },

    async listIntegrityEvents(node, limit, options) {
      checkSignal(options)
      const rows = stmt(
        'SELECT * FROM integrity_events WHERE node_key = ? ORDER BY at DESC, id DESC LIMIT ?',
      ).all(keyOf(node), checkLimit(limit)) as Row[]
      return rows.map(
        (r): IntegrityEventRow => ({
          node: r.node as string,
          cid: r.cid as string,
          chunk: r.chunk as number,
          source: r.source as string,
          at: r.at as number,
          detail: r.detail as string,
        }),
      )
    },

    async getMeta(key, options) {
      checkSignal(options)
      const r = stmt('SELECT value FROM meta WHERE key = ?').get(key) as Row | undefined
      return r?.value as string | undefined
    },

    async setMeta(key, value, options) {
      checkSignal(options)
      stmt(
        'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
      ).run(key, value)
    },
  }
  return store
}
