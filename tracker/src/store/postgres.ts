/**
 * The PostgreSQL storage adapter (`pg`): for several tracker replicas sharing one
 * database when one machine is outgrown. Same schema and rules as the SQLite adapter;
 * every check-then-write is one statement (`INSERT … ON CONFLICT … WHERE … RETURNING`)
 * or backed by a unique constraint, so replicas racing cannot both win. Migrations run
 * under an advisory lock, so replicas starting together migrate once.
 */
import {
  ConflictError,
  ForbiddenError,
  InvalidArgumentError,
  ReplayError,
  StaleError,
  UnavailableError,
} from '@shoal/protocol'
import pg from 'pg'
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
  IntegrityEventRow,
  NodeRegistrationStatus,
  NodeRow,
  ReceiptRow,
  SiteRow,
  TicketRow,
  TrackerStore,
} from './types.ts'

export interface PostgresStoreInit {
  /** `postgres://user:pass@host:port/db` (or `?host=/run/postgresql` for a socket). */
  connectionString: string
  /** Most connections in the pool. Default 10. */
  maxConnections?: number
  /** Statement timeout (ms) set on each connection. Default 30 000. */
  statementTimeoutMs?: number
}

export const DEFAULT_POSTGRES_MAX_CONNECTIONS = 10
export const DEFAULT_POSTGRES_STATEMENT_TIMEOUT_MS = 30_000
/** Rows per statement in bulk writes. */
const BATCH = 5_000
/** Key of the advisory lock migrations run under. */
const MIGRATION_LOCK = 0x5_40a1

const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE nodes (
    address_key TEXT COLLATE "C" PRIMARY KEY,
    address TEXT NOT NULL,
    peer_id TEXT NOT NULL UNIQUE,
    http_url TEXT NOT NULL UNIQUE,
    region TEXT NOT NULL,
    capacity BIGINT NOT NULL,
    record_timestamp BIGINT NOT NULL,
    record TEXT NOT NULL,
    status TEXT NOT NULL,
    registered_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    session_id TEXT NOT NULL,
    session_key BYTEA NOT NULL,
    session_created_at BIGINT NOT NULL
  );
  CREATE TABLE node_states (
    address_key TEXT COLLATE "C" PRIMARY KEY REFERENCES nodes (address_key) ON DELETE CASCADE,
    state TEXT NOT NULL
  );
  CREATE TABLE clients (
    address_key TEXT COLLATE "C" PRIMARY KEY,
    address TEXT NOT NULL,
    first_seen BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    reports BIGINT NOT NULL DEFAULT 0,
    tickets BIGINT NOT NULL DEFAULT 0,
    refuted BIGINT NOT NULL DEFAULT 0
  );
  CREATE TABLE reports (
    client_key TEXT COLLATE "C" NOT NULL,
    nonce TEXT COLLATE "C" NOT NULL,
    client TEXT NOT NULL,
    node_key TEXT COLLATE "C" NOT NULL,
    node TEXT NOT NULL,
    timestamp BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    weight DOUBLE PRECISION NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (client_key, nonce)
  );
  CREATE INDEX reports_node ON reports (node_key, received_at);
  CREATE INDEX reports_client ON reports (client_key, received_at);
  CREATE INDEX reports_received ON reports (received_at);
  CREATE TABLE sites (
    site TEXT COLLATE "C" PRIMARY KEY,
    publisher TEXT NOT NULL,
    sequence BIGINT NOT NULL,
    timestamp BIGINT NOT NULL,
    entry_count BIGINT NOT NULL,
    manifest TEXT NOT NULL,
    updated_at BIGINT NOT NULL
  );
  CREATE TABLE contents (
    site TEXT COLLATE "C" NOT NULL,
    cid TEXT COLLATE "C" NOT NULL,
    size BIGINT NOT NULL,
    PRIMARY KEY (site, cid)
  );
  CREATE INDEX contents_cid ON contents (cid);
  CREATE TABLE leaves (
    cid TEXT COLLATE "C" PRIMARY KEY,
    leaves BYTEA NOT NULL
  );
  CREATE TABLE tickets (
    id TEXT COLLATE "C" PRIMARY KEY,
    client_key TEXT COLLATE "C" NOT NULL,
    client TEXT NOT NULL,
    budget BIGINT NOT NULL,
    expiry BIGINT NOT NULL,
    issued_at BIGINT NOT NULL,
    ticket TEXT NOT NULL
  );
  CREATE INDEX tickets_client ON tickets (client_key, issued_at);
  CREATE INDEX tickets_issued ON tickets (issued_at);
  CREATE TABLE integrity_events (
    id BIGSERIAL PRIMARY KEY,
    node_key TEXT COLLATE "C" NOT NULL,
    node TEXT NOT NULL,
    cid TEXT NOT NULL,
    chunk BIGINT NOT NULL,
    source TEXT NOT NULL,
    at BIGINT NOT NULL,
    detail TEXT NOT NULL
  );
  CREATE INDEX integrity_events_node ON integrity_events (node_key, at);
  CREATE TABLE meta (
    key TEXT COLLATE "C" PRIMARY KEY,
    value TEXT NOT NULL
  );
  `,
  `
  CREATE INDEX nodes_updated ON nodes (updated_at);
  `,
  `
  ALTER TABLE tickets ADD COLUMN publisher TEXT;
  CREATE TABLE selections (
    ticket TEXT COLLATE "C" NOT NULL,
    node_key TEXT COLLATE "C" NOT NULL,
    node TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (ticket, node_key)
  );
  `,
  `
  CREATE TABLE receipt_batches (
    id TEXT COLLATE "C" PRIMARY KEY,
    node_key TEXT COLLATE "C" NOT NULL,
    node TEXT NOT NULL,
    epoch BIGINT NOT NULL,
    count BIGINT NOT NULL,
    rejected BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    batch TEXT NOT NULL
  );
  CREATE INDEX receipt_batches_epoch ON receipt_batches (epoch, node_key);
  CREATE TABLE receipts (
    batch TEXT COLLATE "C" NOT NULL REFERENCES receipt_batches (id),
    idx INTEGER NOT NULL,
    node TEXT COLLATE "C" NOT NULL,
    client TEXT NOT NULL,
    session TEXT NOT NULL,
    bytes BIGINT NOT NULL,
    epoch BIGINT NOT NULL,
    ticket TEXT NOT NULL,
    kind INTEGER NOT NULL,
    signature TEXT NOT NULL,
    digest TEXT NOT NULL,
    rejected TEXT,
    PRIMARY KEY (batch, idx)
  );
  CREATE INDEX receipts_epoch ON receipts (epoch, node, batch, idx);
  CREATE TABLE epochs (
    epoch BIGINT PRIMARY KEY,
    state TEXT NOT NULL,
    root TEXT,
    total TEXT NOT NULL,
    debits TEXT NOT NULL,
    tree TEXT,
    report TEXT NOT NULL,
    tx_hash TEXT,
    built_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
  );
  CREATE TABLE ticket_usage (
    ticket TEXT COLLATE "C" PRIMARY KEY,
    bytes BIGINT NOT NULL
  );
  `,
]

type Row = Record<string, unknown>

const INT8_OID = 20

/** BIGINT columns as JS numbers (every value stored fits in 2^53). */
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8_OID && format !== 'binary') return (value: string) => Number(value)
    return pg.types.getTypeParser(oid, format as 'text')
  },
}

function isUniqueViolation(err: unknown): boolean {
  return (err as { code?: unknown })?.code === '23505'
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

const TOUCH_CLIENT = `INSERT INTO clients (address_key, address, first_seen, last_seen, reports, tickets, refuted)
  VALUES ($1, $2, $3, $3, $4, $5, 0)
  ON CONFLICT (address_key) DO UPDATE SET
    last_seen = greatest(clients.last_seen, excluded.last_seen),
    reports = clients.reports + excluded.reports,
    tickets = clients.tickets + excluded.tickets`

/**
 * Creates the PostgreSQL store; call `open()` before use (it connects and migrates).
 *
 * @example
 * const store = createPostgresStore({ connectionString: 'postgres://shoal@db.internal/shoal' })
 * await store.open()
 */
export function createPostgresStore(init: PostgresStoreInit): TrackerStore {
  if (typeof init !== 'object' || init === null) {
    throw new InvalidArgumentError('postgres store options must be an object')
  }
  const { connectionString } = init
  if (typeof connectionString !== 'string' || !/^postgres(ql)?:\/\//.test(connectionString)) {
    throw new InvalidArgumentError('connectionString must be a postgres:// or postgresql:// URL')
  }
  const maxConnections = init.maxConnections ?? DEFAULT_POSTGRES_MAX_CONNECTIONS
  if (!Number.isSafeInteger(maxConnections) || maxConnections < 1 || maxConnections > 1000) {
    throw new InvalidArgumentError(
      `maxConnections must be an integer from 1 to 1000, got ${String(maxConnections)}`,
    )
  }
  const statementTimeoutMs = init.statementTimeoutMs ?? DEFAULT_POSTGRES_STATEMENT_TIMEOUT_MS
  if (!Number.isSafeInteger(statementTimeoutMs) || statementTimeoutMs < 0) {
    throw new InvalidArgumentError(
      `statementTimeoutMs must be an integer ≥ 0, got ${String(statementTimeoutMs)}`,
    )
  }

  let pool: pg.Pool | undefined

  const live = (): pg.Pool => {
    if (pool === undefined) throw new UnavailableError('the postgres store is not open')
    return pool
  }
  const query = async (sql: string, params: unknown[] = []): Promise<Row[]> =>
    (await live().query(sql, params)).rows as Row[]
  const one = async (sql: string, params: unknown[] = []): Promise<Row | undefined> =>
    (await query(sql, params))[0]
  const tx = async <T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> => {
    const client = await live().connect()
    try {
      await client.query('BEGIN')
      const result = await fn(client)
      await client.query('COMMIT')
      return result
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {})
      throw err
    } finally {
      client.release()
    }
  }

  const store: TrackerStore = {
    kind: 'postgres',

    async open(options) {
      checkSignal(options)
      if (pool !== undefined) return
      const p = new pg.Pool({
        connectionString,
        max: maxConnections,
        types,
        statement_timeout: statementTimeoutMs === 0 ? undefined : statementTimeoutMs,
        application_name: 'shoal-tracker',
      })
      // an idle client's error (server restart) must not crash the process; the pool replaces it
      p.on('error', () => {})
      try {
        const client = await p.connect()
        try {
          await client.query('BEGIN')
          await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK])
          await client.query(
            'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)',
          )
          const r = await client.query('SELECT coalesce(max(version), 0) AS v FROM schema_migrations')
          const current = Number((r.rows[0] as Row).v)
          for (let v = current; v < MIGRATIONS.length; v++) {
            await client.query(MIGRATIONS[v]!)
            await client.query('INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)', [
              v + 1,
              Date.now(),
            ])
          }
          await client.query('COMMIT')
        } catch (err) {
          await client.query('ROLLBACK').catch(() => {})
          throw err
        } finally {
          client.release()
        }
      } catch (err) {
        await p.end().catch(() => {})
        throw new UnavailableError(`cannot open the PostgreSQL store: ${(err as Error).message}`, {
          cause: err,
        })
      }
      pool = p
    },

    async close() {
      if (pool === undefined) return
      const p = pool
      pool = undefined
      await p.end()
    },

    async putNode(input, options) {
      checkSignal(options)
      const { node, session } = input
      const key = keyOf(node.address)
      const owners = await query(
        'SELECT address_key, http_url, peer_id FROM nodes WHERE (http_url = $1 OR peer_id = $2) AND address_key <> $3',
        [node.httpUrl, node.peerId, key],
      )
      for (const o of owners) {
        if (o.http_url === node.httpUrl)
          throw new ConflictError(`${node.httpUrl} is registered by another node`)
        throw new ConflictError(`peer id ${node.peerId} is registered by another node`)
      }
      let rows: Row[]
      try {
        rows = await query(
          `INSERT INTO nodes (address_key, address, peer_id, http_url, region, capacity, record_timestamp, record,
             status, registered_at, updated_at, session_id, session_key, session_created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'registered', $9, $9, $10, $11, $12)
           ON CONFLICT (address_key) DO UPDATE SET
             address = excluded.address, peer_id = excluded.peer_id, http_url = excluded.http_url,
             region = excluded.region, capacity = excluded.capacity,
             record_timestamp = excluded.record_timestamp, record = excluded.record,
             status = 'registered', updated_at = excluded.updated_at, session_id = excluded.session_id,
             session_key = excluded.session_key, session_created_at = excluded.session_created_at
           WHERE nodes.record_timestamp < excluded.record_timestamp
           RETURNING (xmax = 0) AS created, registered_at`,
          [
            key,
            node.address,
            node.peerId,
            node.httpUrl,
            node.region,
            node.capacity,
            node.recordTimestamp,
            node.record,
            node.updatedAt,
            session.id,
            Buffer.from(session.key),
            session.createdAt,
          ],
        )
      } catch (err) {
        if (isUniqueViolation(err))
          throw new ConflictError('the URL or peer id is registered by another node')
        throw err
      }
      const r = rows[0]
      if (r === undefined) {
        const existing = await one('SELECT record_timestamp FROM nodes WHERE address_key = $1', [key])
        const ts = (existing?.record_timestamp as number | undefined) ?? Number.NaN
        if (ts === node.recordTimestamp) {
          throw new ReplayError(`a record with timestamp ${ts} was already accepted for ${node.address}`)
        }
        throw new StaleError(`the registered record of ${node.address} is newer (timestamp ${ts})`)
      }
      return { created: r.created === true, registeredAt: r.registered_at as number }
    },

    async getNode(address, options) {
      checkSignal(options)
      const r = await one('SELECT * FROM nodes WHERE address_key = $1', [keyOf(address)])
      return r === undefined ? undefined : nodeOf(r)
    },

    async getNodeByUrl(httpUrl, options) {
      checkSignal(options)
      const r = await one('SELECT * FROM nodes WHERE http_url = $1', [httpUrl])
      return r === undefined ? undefined : nodeOf(r)
    },

    async getSession(address, options) {
      checkSignal(options)
      const r = await one(
        'SELECT session_id, session_key, session_created_at FROM nodes WHERE address_key = $1',
        [keyOf(address)],
      )
      if (r === undefined) return undefined
      return {
        id: r.session_id as string,
        key: toBytes(r.session_key),
        createdAt: r.session_created_at as number,
      }
    },

    async setNodeStatus(address, status, options) {
      checkSignal(options)
      if (status !== 'registered' && status !== 'retired') {
        throw new InvalidArgumentError(`status must be registered or retired, got ${JSON.stringify(status)}`)
      }
      const r = await live().query(
        'UPDATE nodes SET status = $1, updated_at = greatest(updated_at, $3) WHERE address_key = $2',
        [status, keyOf(address), Date.now()],
      )
      return (r.rowCount ?? 0) > 0
    },

    async removeNode(address, options) {
      checkSignal(options)
      const r = await live().query('DELETE FROM nodes WHERE address_key = $1', [keyOf(address)])
      return (r.rowCount ?? 0) > 0
    },

    async countNodes(options) {
      checkSignal(options)
      return Number((await one('SELECT count(*) AS n FROM nodes'))!.n)
    },

    async listNodesUpdated(q, options) {
      checkSignal(options)
      const limit = checkLimit(q.limit)
      const rows =
        q.after === undefined
          ? await query(
              'SELECT * FROM nodes WHERE updated_at >= $1 ORDER BY updated_at, address_key LIMIT $2',
              [q.since, limit],
            )
          : await query(
              `SELECT * FROM nodes WHERE updated_at >= $1 AND (updated_at > $1 OR address_key > $2)
               ORDER BY updated_at, address_key LIMIT $3`,
              [q.since, keyOf(q.after), limit],
            )
      return rows.map(nodeOf)
    },

    async listNodes(q, options) {
      checkSignal(options)
      const limit = checkLimit(q.limit)
      const after = q.after === undefined ? '' : keyOf(q.after)
      const rows = await query(
        `SELECT n.*, s.state FROM nodes n LEFT JOIN node_states s ON s.address_key = n.address_key
         WHERE n.address_key > $1 ORDER BY n.address_key LIMIT $2`,
        [after, limit],
      )
      return {
        nodes: rows.map((r) => ({ node: nodeOf(r), state: decodeState(r.state as string | null) })),
        next: rows.length === limit ? (rows[rows.length - 1]!.address_key as string) : undefined,
      }
    },

    async putNodeStates(rows, options) {
      checkSignal(options)
      if (rows.length === 0) return 0
      return tx(async (client) => {
        let n = 0
        for (let i = 0; i < rows.length; i += BATCH) {
          const batch = rows.slice(i, i + BATCH)
          const r = await client.query(
            `INSERT INTO node_states (address_key, state)
             SELECT t.k, t.s FROM unnest($1::text[], $2::text[]) AS t(k, s)
             WHERE EXISTS (SELECT 1 FROM nodes WHERE nodes.address_key = t.k)
             ON CONFLICT (address_key) DO UPDATE SET state = excluded.state`,
            [batch.map((row) => keyOf(row.node)), batch.map(encodeState)],
          )
          n += r.rowCount ?? 0
        }
        return n
      })
    },

    async getNodeState(address, options) {
      checkSignal(options)
      const r = await one('SELECT state FROM node_states WHERE address_key = $1', [keyOf(address)])
      return decodeState(r?.state as string | undefined)
    },

    async addReport(row, options) {
      checkSignal(options)
      await tx(async (client) => {
        try {
          await client.query(
            `INSERT INTO reports (client_key, nonce, client, node_key, node, timestamp, received_at, weight, body)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
            [
              keyOf(row.client),
              row.nonce.toLowerCase(),
              row.client,
              keyOf(row.node),
              row.node,
              row.timestamp,
              row.receivedAt,
              row.weight,
              row.body,
            ],
          )
        } catch (err) {
          if (isUniqueViolation(err)) throw new ReplayError(`report ${row.nonce} was already received`)
          throw err
        }
        await client.query(TOUCH_CLIENT, [keyOf(row.client), row.client, row.receivedAt, 1, 0])
      })
    },

    async countReports(q, options) {
      checkSignal(options)
      const where = ['received_at >= $1']
      const params: unknown[] = [q.since ?? 0]
      if (q.client !== undefined) {
        params.push(keyOf(q.client))
        where.push(`client_key = $${params.length}`)
      }
      if (q.node !== undefined) {
        params.push(keyOf(q.node))
        where.push(`node_key = $${params.length}`)
      }
      return Number((await one(`SELECT count(*) AS n FROM reports WHERE ${where.join(' AND ')}`, params))!.n)
    },

    async getClient(address, options) {
      checkSignal(options)
      const r = await one('SELECT * FROM clients WHERE address_key = $1', [keyOf(address)])
      return r === undefined ? undefined : clientOf(r)
    },

    async addRefutation(address, at, options) {
      checkSignal(options)
      await tx(async (client) => {
        await client.query(TOUCH_CLIENT, [keyOf(address), address, at, 0, 0])
        await client.query('UPDATE clients SET refuted = refuted + 1 WHERE address_key = $1', [
          keyOf(address),
        ])
      })
    },

    async pruneReports(before, options) {
      checkSignal(options)
      return (await live().query('DELETE FROM reports WHERE received_at < $1', [before])).rowCount ?? 0
    },

    async putSite(row, contents, options) {
      checkSignal(options)
      await tx(async (client) => {
        const r = await client.query(
          `INSERT INTO sites (site, publisher, sequence, timestamp, entry_count, manifest, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (site) DO UPDATE SET sequence = excluded.sequence, timestamp = excluded.timestamp,
             entry_count = excluded.entry_count, manifest = excluded.manifest, updated_at = excluded.updated_at
           WHERE lower(sites.publisher) = lower(excluded.publisher) AND sites.sequence < excluded.sequence
           RETURNING site`,
          [row.site, row.publisher, row.sequence, row.timestamp, row.entryCount, row.manifest, row.updatedAt],
        )
        if (r.rowCount === 0) {
          const existing = (
            await client.query('SELECT publisher, sequence FROM sites WHERE site = $1', [row.site])
          ).rows[0] as Row | undefined
          if (
            existing !== undefined &&
            (existing.publisher as string).toLowerCase() !== row.publisher.toLowerCase()
          ) {
            throw new ForbiddenError(`site ${row.site} belongs to another publisher`)
          }
          throw new StaleError(
            `site ${row.site} is at sequence ${String(existing?.sequence)}; sequence ${row.sequence} is not newer`,
          )
        }
        await client.query('DELETE FROM contents WHERE site = $1', [row.site])
        for (let i = 0; i < contents.length; i += BATCH) {
          const batch = contents.slice(i, i + BATCH)
          await client.query(
            `INSERT INTO contents (site, cid, size)
             SELECT $1, t.cid, t.size FROM unnest($2::text[], $3::bigint[]) AS t(cid, size)
             ON CONFLICT DO NOTHING`,
            [row.site, batch.map((c) => c.cid), batch.map((c) => c.size)],
          )
        }
      })
    },

    async getSite(site, options) {
      checkSignal(options)
      const r = await one('SELECT * FROM sites WHERE site = $1', [site])
      return r === undefined ? undefined : siteOf(r)
    },

    async countSites(options) {
      checkSignal(options)
      return Number((await one('SELECT count(*) AS n FROM sites'))!.n)
    },

    async sampleContent(from, options) {
      checkSignal(options)
      const r =
        (await one('SELECT cid, size FROM contents WHERE cid >= $1 ORDER BY cid LIMIT 1', [from])) ??
        (await one('SELECT cid, size FROM contents ORDER BY cid LIMIT 1'))
      return r === undefined ? undefined : { cid: r.cid as string, size: r.size as number }
    },

    async putLeaves(cid, leaves, options) {
      checkSignal(options)
      await query('INSERT INTO leaves (cid, leaves) VALUES ($1, $2) ON CONFLICT (cid) DO NOTHING', [
        cid,
        Buffer.from(leaves.buffer, leaves.byteOffset, leaves.byteLength),
      ])
    },

    async getLeaves(cid, options) {
      checkSignal(options)
      const r = await one('SELECT leaves FROM leaves WHERE cid = $1', [cid])
      return r === undefined ? undefined : toBytes(r.leaves)
    },

    async addTicket(row, options) {
      checkSignal(options)
      await tx(async (client) => {
        try {
          await client.query(
            `INSERT INTO tickets (id, client_key, client, budget, expiry, issued_at, ticket, publisher)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
            [
              row.id,
              keyOf(row.client),
              row.client,
              row.budget,
              row.expiry,
              row.issuedAt,
              row.ticket,
              row.publisher ?? null,
            ],
          )
        } catch (err) {
          if (isUniqueViolation(err)) throw new ConflictError(`ticket ${row.id} was already issued`)
          throw err
        }
        await client.query(TOUCH_CLIENT, [keyOf(row.client), row.client, row.issuedAt, 0, 1])
      })
    },

    async getTicket(id, options) {
      checkSignal(options)
      const r = await one('SELECT * FROM tickets WHERE id = $1', [id])
      return r === undefined ? undefined : ticketOf(r)
    },

    async countTickets(q, options) {
      checkSignal(options)
      if (q.client !== undefined) {
        return Number(
          (await one('SELECT count(*) AS n FROM tickets WHERE client_key = $1 AND issued_at >= $2', [
            keyOf(q.client),
            q.since ?? 0,
          ]))!.n,
        )
      }
      return Number((await one('SELECT count(*) AS n FROM tickets WHERE issued_at >= $1', [q.since ?? 0]))!.n)
    },

    async findCidPublisher(cid, options) {
      checkSignal(options)
      const r = await one(
        'SELECT s.publisher FROM contents c JOIN sites s ON s.site = c.site WHERE c.cid = $1 ORDER BY c.site LIMIT 1',
        [cid],
      )
      return r?.publisher as string | undefined
    },

    async addSelections(rows, options) {
      checkSignal(options)
      let n = 0
      for (let i = 0; i < rows.length; i += BATCH) {
        const batch = rows.slice(i, i + BATCH)
        const r = await live().query(
          `INSERT INTO selections (ticket, node_key, node, at)
           SELECT t.ticket, t.node_key, t.node, t.at
           FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) AS t(ticket, node_key, node, at)
           WHERE EXISTS (SELECT 1 FROM tickets WHERE id = t.ticket)
           ON CONFLICT (ticket, node_key) DO NOTHING`,
          [
            batch.map((s) => s.ticket),
            batch.map((s) => keyOf(s.node)),
            batch.map((s) => s.node),
            batch.map((s) => s.at),
          ],
        )
        n += r.rowCount ?? 0
      }
      return n
    },

    async listSelections(ticket, options) {
      checkSignal(options)
      const rows = await query('SELECT node FROM selections WHERE ticket = $1 ORDER BY node_key', [ticket])
      return rows.map((r) => r.node as string)
    },

    async addReceiptBatch(batch, receipts, options) {
      checkSignal(options)
      return tx(async (client) => {
        const inserted = await client.query(
          `INSERT INTO receipt_batches (id, node_key, node, epoch, count, rejected, received_at, batch)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING`,
          [
            batch.id,
            keyOf(batch.node),
            batch.node,
            batch.epoch,
            batch.count,
            batch.rejected,
            batch.receivedAt,
            batch.batch,
          ],
        )
        if ((inserted.rowCount ?? 0) === 0) return { created: false }
        for (let i = 0; i < receipts.length; i += BATCH) {
          const part = receipts.slice(i, i + BATCH)
          const col = <K extends keyof ReceiptRow>(k: K) => part.map((r) => r[k] ?? null)
          await client.query(
            `INSERT INTO receipts (batch, idx, node, client, session, bytes, epoch, ticket, kind, signature, digest, rejected)
             SELECT $1::text, * FROM unnest($2::int[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[],
               $8::text[], $9::int[], $10::text[], $11::text[], $12::text[])`,
            [
              batch.id,
              col('index'),
              col('node'),
              col('client'),
              col('session'),
              col('bytes'),
              col('epoch'),
              col('ticket'),
              col('kind'),
              col('signature'),
              col('digest'),
              col('rejected'),
            ],
          )
        }
        return { created: true }
      })
    },

    async getReceiptBatch(id, options) {
      checkSignal(options)
      const r = await one('SELECT * FROM receipt_batches WHERE id = $1', [id])
      return r === undefined ? undefined : batchOf(r)
    },

    async listBatchReceipts(id, q, options) {
      checkSignal(options)
      const sql =
        q.rejectedOnly === true
          ? 'SELECT * FROM receipts WHERE batch = $1 AND rejected IS NOT NULL ORDER BY idx'
          : 'SELECT * FROM receipts WHERE batch = $1 ORDER BY idx'
      return (await query(sql, [id])).map(receiptOf)
    },

    async listEpochReceipts(epoch, options) {
      checkSignal(options)
      const rows = await query(
        'SELECT * FROM receipts WHERE epoch = $1 AND rejected IS NULL ORDER BY node, batch, idx',
        [epoch],
      )
      return rows.map(receiptOf)
    },

    async getTickets(ids, options) {
      checkSignal(options)
      if (ids.length === 0) return []
      return (await query('SELECT * FROM tickets WHERE id = ANY($1::text[])', [ids])).map(ticketOf)
    },

    async listSelectionsOf(tickets, options) {
      checkSignal(options)
      if (tickets.length === 0) return []
      const rows = await query('SELECT ticket, node, at FROM selections WHERE ticket = ANY($1::text[])', [
        tickets,
      ])
      return rows.map((r) => ({ ticket: r.ticket as string, node: r.node as string, at: r.at as number }))
    },

    async getEpoch(epoch, options) {
      checkSignal(options)
      const r = await one('SELECT * FROM epochs WHERE epoch = $1', [epoch])
      return r === undefined ? undefined : epochOf(r)
    },

    async listUnsettledEpochs(through, options) {
      checkSignal(options)
      const rows = await query(
        `SELECT DISTINCT epoch FROM receipt_batches WHERE epoch <= $1
         AND epoch NOT IN (SELECT epoch FROM epochs) ORDER BY epoch`,
        [through],
      )
      return rows.map((r) => r.epoch as number)
    },

    async getLatestPaidEpoch(options) {
      checkSignal(options)
      const r = await one("SELECT * FROM epochs WHERE state <> 'empty' ORDER BY epoch DESC LIMIT 1")
      return r === undefined ? undefined : epochOf(r)
    },

    async putEpochSettlement(row, verdicts, ticketBytes, options) {
      checkSignal(options)
      await tx(async (client) => {
        const inserted = await client.query(
          `INSERT INTO epochs (epoch, state, root, total, debits, tree, report, tx_hash, built_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (epoch) DO NOTHING`,
          [
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
          ],
        )
        if ((inserted.rowCount ?? 0) === 0) throw new ConflictError(`epoch ${row.epoch} was settled before`)
        for (let i = 0; i < verdicts.length; i += BATCH) {
          const part = verdicts.slice(i, i + BATCH)
          await client.query(
            `UPDATE receipts r SET rejected = v.reason
             FROM unnest($1::text[], $2::int[], $3::text[]) AS v(batch, idx, reason)
             WHERE r.batch = v.batch AND r.idx = v.idx`,
            [part.map((v) => v.batch), part.map((v) => v.index), part.map((v) => v.reason)],
          )
        }
        if (ticketBytes.length > 0) {
          await client.query(
            `INSERT INTO ticket_usage (ticket, bytes)
             SELECT * FROM unnest($1::text[], $2::bigint[])
             ON CONFLICT (ticket) DO UPDATE SET bytes = ticket_usage.bytes + excluded.bytes`,
            [ticketBytes.map((t) => t.ticket), ticketBytes.map((t) => t.bytes)],
          )
        }
      })
    },

    async setEpochState(epoch, state, txHash, at, options) {
      checkSignal(options)
      await query(
        'UPDATE epochs SET state = $1, tx_hash = coalesce($2, tx_hash), updated_at = $3 WHERE epoch = $4',
        [state, txHash ?? null, at, epoch],
      )
    },

    async getTicketUsage(tickets, options) {
      checkSignal(options)
      const out = new Map<string, number>()
      if (tickets.length === 0) return out
      for (const r of await query('SELECT ticket, bytes FROM ticket_usage WHERE ticket = ANY($1::text[])', [
        tickets,
      ])) {
        out.set(r.ticket as string, r.bytes as number)
      }
      return out
    },

    async addIntegrityEvent(row, options) {
      checkSignal(options)
      await query(
        'INSERT INTO integrity_events (node_key, node, cid, chunk, source, at, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)',
        [keyOf(row.node), row.node, row.cid, row.chunk, row.source, row.at, row.detail],
      )
    },

    async listIntegrityEvents(node, limit, options) {
      checkSignal(options)
      const rows = await query(
        'SELECT * FROM integrity_events WHERE node_key = $1 ORDER BY at DESC, id DESC LIMIT $2',
        [keyOf(node), checkLimit(limit)],
      )
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
      return (await one('SELECT value FROM meta WHERE key = $1', [key]))?.value as string | undefined
    },

    async setMeta(key, value, options) {
      checkSignal(options)
      await query(
        'INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
        [key, value],
      )
    },
  }
  return store
}
