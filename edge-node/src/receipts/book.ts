/**
 * The receipt book: the node's durable record of what clients signed for. One SQLite
 * file (`node:sqlite`) in the node's data directory, WAL journal, `synchronous=FULL`,
 * so a write that returned is on disk: a receipt the node acknowledged survives a
 * crash (SIGKILL, power loss after the fsync).
 *
 * It keeps the latest cumulative receipt per session, the sessions the node opened
 * (so metering can resume after a restart) and the signed tickets they name. The
 * settlement side reads one epoch at a time (`epoch(n)`) and marks it submitted.
 */
import type { DatabaseSync, StatementSync } from 'node:sqlite'
import {
  type BandwidthReceipt,
  decodeBandwidthReceipt,
  decodeTicket,
  encodeBandwidthReceipt,
  encodeTicket,
  type Signed,
  type Ticket,
  UnavailableError,
} from '@shoal/protocol'
import type { Hex } from 'viem'

export interface ReceiptBookInit {
  /** Path of the SQLite file (created with its directory's permissions). */
  path: string
}

/** A session as the book keeps it. */
export interface BookSession {
  session: Hex
  ticket: Hex
  client: string
  epoch: number
  kind: number
  /** Unix ms when the node opened it. */
  openedAt: number
}

/** One epoch's receipts and the tickets they name: what the node submits for settlement. */
export interface EpochReceipts {
  receipts: Signed<BandwidthReceipt>[]
  tickets: Signed<Ticket>[]
}

export interface ReceiptBook {
  open(): Promise<void>
  /** Stores a session and its ticket (idempotent). */
  openSession(session: BookSession, ticket: Signed<Ticket>): void
  /** The latest receipt of a session, if any. */
  latest(session: Hex): Signed<BandwidthReceipt> | undefined
  /** Stores `signed` as its session's latest receipt, durably, before returning. */
  put(signed: Signed<BandwidthReceipt>): void
  /** Sessions of epochs `≥ fromEpoch`, with their latest receipted bytes (for restoring after a restart). */
  sessions(
    fromEpoch: number,
    limit: number,
  ): (BookSession & { bytes: number; signedTicket: Signed<Ticket> })[]
  /** The receipts and tickets of epoch `n`. */
  epoch(n: number): EpochReceipts
  /** Epochs holding receipts not yet submitted, oldest first. */
  pendingEpochs(): number[]
  /** Marks epoch `n`'s receipts as submitted to the tracker. */
  markSubmitted(n: number): void
  /** Bytes receipted in all, by epoch (for the dashboard and metrics). */
  totals(): { epoch: number; receipts: number; bytes: number; submitted: boolean }[]
  close(): void
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS tickets (
  id TEXT PRIMARY KEY,
  encoded TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
  session TEXT PRIMARY KEY,
  ticket TEXT NOT NULL,
  client TEXT NOT NULL,
  epoch INTEGER NOT NULL,
  kind INTEGER NOT NULL,
  opened_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_epoch ON sessions (epoch);
CREATE TABLE IF NOT EXISTS receipts (
  session TEXT PRIMARY KEY,
  epoch INTEGER NOT NULL,
  ticket TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  encoded TEXT NOT NULL,
  submitted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS receipts_epoch ON receipts (epoch, submitted);
`

/**
 * @example
 * const book = createReceiptBook({ path: join(dataDir, 'receipts.db') })
 * await book.open()
 * book.put(signedReceipt)              // durable when it returns
 * const { receipts, tickets } = book.epoch(491234)
 */
export function createReceiptBook(init: ReceiptBookInit): ReceiptBook {
  let db: DatabaseSync | undefined
  const statements = new Map<string, StatementSync>()
  const database = (): DatabaseSync => {
    if (db === undefined) throw new UnavailableError('the receipt book is not open')
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

  return {
    async open() {
      if (db !== undefined) return
      const { DatabaseSync } = await import('node:sqlite')
      db = new DatabaseSync(init.path)
      db.exec('PRAGMA journal_mode = WAL')
      db.exec('PRAGMA synchronous = FULL')
      db.exec('PRAGMA busy_timeout = 5000')
      db.exec(SCHEMA)
    },

    openSession(session, ticket) {
      const d = database()
      d.exec('BEGIN IMMEDIATE')
      try {
        stmt('INSERT OR IGNORE INTO tickets (id, encoded) VALUES (?, ?)').run(
          session.ticket,
          encodeTicket(ticket),
        )
        stmt(
          `INSERT OR IGNORE INTO sessions (session, ticket, client, epoch, kind, opened_at)
           VALUES (?, ?, ?, ?, ?, ?)`,
        ).run(session.session, session.ticket, session.client, session.epoch, session.kind, session.openedAt)
        d.exec('COMMIT')
      } catch (err) {
        d.exec('ROLLBACK')
        throw err
      }
    },

    latest(session) {
      const row = stmt('SELECT encoded FROM receipts WHERE session = ?').get(session) as
        | { encoded: string }
        | undefined
      return row === undefined ? undefined : decodeBandwidthReceipt(row.encoded)
    },

    put(signed) {
      const r = signed.message
      // one statement is one transaction: with synchronous=FULL it is on disk when run() returns
      stmt(
        `INSERT INTO receipts (session, epoch, ticket, bytes, encoded, submitted) VALUES (?, ?, ?, ?, ?, 0)
         ON CONFLICT (session) DO UPDATE SET bytes = excluded.bytes, encoded = excluded.encoded, submitted = 0
         WHERE excluded.bytes > receipts.bytes`,
      ).run(r.session, r.epoch, r.ticket, r.bytes, encodeBandwidthReceipt(signed))
    },

    sessions(fromEpoch, limit) {
      const rows = stmt(
        `SELECT s.session, s.ticket, s.client, s.epoch, s.kind, s.opened_at, coalesce(r.bytes, 0) AS bytes,
           t.encoded AS ticket_encoded
         FROM sessions s JOIN tickets t ON t.id = s.ticket LEFT JOIN receipts r ON r.session = s.session
         WHERE s.epoch >= ? ORDER BY s.opened_at DESC LIMIT ?`,
      ).all(fromEpoch, limit) as {
        session: Hex
        ticket: Hex
        client: string
        epoch: number
        kind: number
        opened_at: number
        bytes: number
        ticket_encoded: string
      }[]
      return rows.map((row) => ({
        session: row.session,
        ticket: row.ticket,
        client: row.client,
        epoch: row.epoch,
        kind: row.kind,
        openedAt: row.opened_at,
        bytes: row.bytes,
        signedTicket: decodeTicket(row.ticket_encoded),
      }))
    },

    epoch(n) {
      const receipts = (
        stmt('SELECT encoded FROM receipts WHERE epoch = ? ORDER BY session').all(n) as { encoded: string }[]
      ).map((row) => decodeBandwidthReceipt(row.encoded))
      const tickets = (
        stmt(
          `SELECT encoded FROM tickets WHERE id IN (SELECT DISTINCT ticket FROM receipts WHERE epoch = ?)
           ORDER BY id`,
        ).all(n) as { encoded: string }[]
      ).map((row) => decodeTicket(row.encoded))
      return { receipts, tickets }
    },

    pendingEpochs() {
      return (
        stmt('SELECT DISTINCT epoch FROM receipts WHERE submitted = 0 ORDER BY epoch').all() as {
          epoch: number
        }[]
      ).map((row) => row.epoch)
    },

    markSubmitted(n) {
      stmt('UPDATE receipts SET submitted = 1 WHERE epoch = ?').run(n)
    },

    totals() {
      return (
        stmt(
          `SELECT epoch, count(*) AS receipts, sum(bytes) AS bytes, min(submitted) AS submitted
           FROM receipts GROUP BY epoch ORDER BY epoch`,
        ).all() as { epoch: number; receipts: number; bytes: number; submitted: number }[]
      ).map((row) => ({ ...row, submitted: row.submitted === 1 }))
    },

    close() {
      statements.clear()
      db?.close()
      db = undefined
    },
  }
}
