/**
 * The node registry: registrations (signed node records with an optional heartbeat
 * session), heartbeats (HMAC over the session key), the in-memory index kept in step
 * with the store, and the periodic flush of changed node state.
 *
 * Order of checks on a registration, cheapest first, so a flood of forged records
 * costs no signature recovery: strict format → URL policy → replay/staleness against
 * the stored record → URL and peer-id ownership → freshness → node signature → session
 * signature → atomic store write (which re-checks ownership and ordering).
 */

import { randomBytes } from 'node:crypto'
import {
  ConflictError,
  decodeNodeRecord,
  ExpiredError,
  encodeNodeRecord,
  InvalidSignatureError,
  type NodeRecord,
  NotFoundError,
  ReplayError,
  type Signed,
  StaleError,
  UnauthorizedError,
  verifyNodeRecord,
} from '@shoal/protocol'
import type { Logger } from 'pino'
import { getAddress, type Hex } from 'viem'
import type { HeartbeatBody, HeartbeatFigures, RegisterBody } from '../api/schemas.ts'
import { agreeSession, checkHeartbeatMac } from '../heartbeat/session.ts'
import type { TrackerMetrics } from '../metrics.ts'
import { relayUrlOf } from '../relays/relays.ts'
import type { NodeIndex, NodeStateRow } from '../selection/index.ts'
import { verifyTrackerSession } from '../signing/sign.ts'
import type { NodeRow, StoreCallOptions, TrackerStore } from '../store/types.ts'
import { checkNodeUrl, isPrivateAddress } from './url-policy.ts'

/** What the index keeps per node for selection answers. */
export interface NodeMeta {
  httpUrl: string
  /** The applied record's timestamp (a replica's sync skips records it already has). */
  timestamp: number
  /** `"httpUrl":…,"peerId":…,"multiaddrs":[…]` — pre-serialized for `/v1/select`. */
  json: string
  /** The relay the record announces (a `/…/tcp/<port>/http` multiaddr), if any. */
  relayUrl?: string
  /**
   * `"peerId":…,"multiaddrs":[…]` with the record's libp2p addresses only (not its relay's
   * `/http` one): what a mesh client is handed for a node reachable only through the mesh.
   */
  meshJson?: string
}

export interface RegistryInit {
  recordMaxAgeSeconds: number
  heartbeatSkewMs: number
  allowPrivateUrls: boolean
  /** How long restored nodes that were up stay selectable before a probe confirms them (ms). */
  restoreGraceMs?: number
}

export interface RegistryComponents {
  store: TrackerStore
  index: NodeIndex<NodeMeta>
  clock: () => number
  logger?: Logger
  metrics?: TrackerMetrics
  /** Told when a node's URL is known or changes (the probe loop). */
  onNode?: (address: string, httpUrl: string, region: string, restored: boolean) => void
  /** Told when a node leaves the index (retired through another replica). */
  onRemoved?: (address: string) => void
  /** Told each accepted heartbeat's mesh reachability claim (`undefined` when it has none). */
  onHeartbeat?: (address: string, reachability: HeartbeatBody['reachability']) => void
}

export interface RegisterResult {
  created: boolean
  node: string
  status: string
  registeredAt: number
  /** Present when the node asked for a heartbeat session. */
  session?: { id: string; publicKey: Hex }
}

interface SessionEntry {
  id: string
  key: Buffer
  /** Latest accepted heartbeat timestamp (node clock, ms). */
  last: number
  figures?: HeartbeatFigures & { receivedAt: number }
}

export interface Registry {
  register(body: RegisterBody, options?: StoreCallOptions): Promise<RegisterResult>
  /** Checks and applies a heartbeat; `raw` is the exact body the MAC covers. */
  heartbeat(body: HeartbeatBody, raw: Uint8Array, mac: string, options?: StoreCallOptions): Promise<string>
  /** The latest heartbeat figures of a node, if any arrived since start. */
  figures(address: string): (HeartbeatFigures & { receivedAt: number }) | undefined
  /** The stored registration. */
  get(address: string, options?: StoreCallOptions): Promise<NodeRow>
  /** Loads every registered node (and its saved state) into the index; returns how many. */
  restore(options?: StoreCallOptions): Promise<number>
  /**
   * Loads registrations changed in the store since the last sync (made through other
   * replicas sharing the store) into the index; returns how many rows it applied.
   */
  sync(options?: StoreCallOptions): Promise<number>
  /** Notes that a node's state changed (flushed on the next `flush`). */
  markDirty(address: string): void
  /** Writes changed state rows to the store; returns how many. */
  flush(options?: StoreCallOptions): Promise<number>
  /** Nodes with unsaved state. */
  readonly dirty: number
}

const RESTORE_PAGE = 5_000
/** Sync looks this far behind its last run, so replicas' clocks may disagree by up to a minute. */
const SYNC_LOOKBACK_MS = 60_000
/** Pages one sync call reads at most. */
const SYNC_PAGES = 100
/** Rows per store write; small enough that one batch holds the event loop for only a few ms. */
const FLUSH_BATCH = 500

/** A multiaddr whose host (the relay's, for a circuit address) is a private or loopback IP literal. */
const privateMultiaddr = (m: string): boolean => {
  const host = /^\/(?:ip4|ip6)\/([^/]+)/.exec(m)?.[1]
  return host !== undefined && isPrivateAddress(host)
}

/**
 * What the index keeps of a record. Without `allowPrivate` the multiaddrs handed to
 * clients and nodes leave out private and loopback IP literals: a record cannot point
 * everyone who selects it into their own network (the record itself stays as signed).
 */
export function metaOf(record: NodeRecord, allowPrivate = true): NodeMeta {
  const relayUrl = relayUrlOf(record.multiaddrs)
  const handed = allowPrivate ? record.multiaddrs : record.multiaddrs.filter((m) => !privateMultiaddr(m))
  const mesh = handed.filter((m) => !/\/(?:http|https)$/.test(m))
  return {
    ...(relayUrl !== undefined ? { relayUrl } : {}),
    ...(mesh.length > 0
      ? { meshJson: `"peerId":${JSON.stringify(record.peerId)},"multiaddrs":${JSON.stringify(mesh)}` }
      : {}),
    httpUrl: record.httpUrl,
    timestamp: record.timestamp,
    json: `"httpUrl":${JSON.stringify(record.httpUrl)},"peerId":${JSON.stringify(record.peerId)},"multiaddrs":${JSON.stringify(handed)}`,
  }
}

function metaOfRow(row: NodeRow, allowPrivate: boolean): NodeMeta {
  return metaOf(decodeNodeRecord(row.record).message, allowPrivate)
}

const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve))

/**
 * @example
 * const registry = createRegistry({ recordMaxAgeSeconds: 600, heartbeatSkewMs: 60_000, allowPrivateUrls: false },
 *   { store, index, clock: Date.now })
 * await registry.restore()
 */
export function createRegistry(init: RegistryInit, components: RegistryComponents): Registry {
  const { store, index, clock, logger, metrics } = components
  const sessions = new Map<string, SessionEntry>()
  let dirty = new Set<string>()
  let syncedFrom = clock()
  /** Where an unfinished sync (its page budget spent) goes on from, next time. */
  let syncCursor: { since: number; after: string } | undefined

  /**
   * The session a heartbeat names: from memory, else from the store. A cached session
   * with another id is re-read once: the node may have registered again through another
   * replica sharing the store.
   */
  const sessionFor = async (
    key: string,
    id: string,
    options?: StoreCallOptions,
  ): Promise<SessionEntry | undefined> => {
    const cached = sessions.get(key)
    if (cached !== undefined && cached.id === id) return cached
    const stored = await store.getSession(key, options)
    if (stored === undefined) return cached
    const current = sessions.get(key)
    if (current !== undefined && current.id === stored.id) return current
    const entry = { id: stored.id, key: Buffer.from(stored.key), last: 0 }
    sessions.set(key, entry)
    return entry
  }

  const registry: Registry = {
    async register(body, options) {
      const signed = decodeNodeRecord(body.record) as Signed<NodeRecord>
      const record = signed.message
      checkNodeUrl(record.httpUrl, init.allowPrivateUrls)
      // Cheap refusals before any signature recovery.
      const existing = await store.getNode(record.node, options)
      if (existing !== undefined) {
        if (existing.recordTimestamp === record.timestamp) {
          throw new ReplayError(
            `a record with timestamp ${record.timestamp} was already accepted for ${record.node}`,
          )
        }
        if (existing.recordTimestamp > record.timestamp) {
          throw new StaleError(
            `the registered record of ${record.node} is newer (timestamp ${existing.recordTimestamp})`,
          )
        }
      }
      const urlOwner = await store.getNodeByUrl(record.httpUrl, options)
      if (urlOwner !== undefined && urlOwner.address.toLowerCase() !== record.node.toLowerCase()) {
        throw new ConflictError(`${record.httpUrl} is registered by another node`)
      }
      const nowMs = clock()
      await verifyNodeRecord(signed, {
        now: Math.floor(nowMs / 1000),
        maxAgeSeconds: init.recordMaxAgeSeconds,
        maxSkewSeconds: Math.min(300, init.recordMaxAgeSeconds),
      })
      let agreed: { id: string; publicKey: Hex | undefined; key: Buffer }
      if (body.session !== undefined) {
        const bound = { node: record.node, publicKey: body.session.publicKey, timestamp: record.timestamp }
        await verifyTrackerSession({ message: bound, signature: body.session.signature as Hex })
        agreed = agreeSession(body.session.publicKey, record.node)
      } else {
        // No heartbeats for this registration: a random key nobody knows.
        agreed = { id: randomBytes(16).toString('hex'), publicKey: undefined, key: randomBytes(32) }
      }
      const put = await store.putNode(
        {
          node: {
            address: record.node,
            peerId: record.peerId,
            httpUrl: record.httpUrl,
            region: record.region,
            capacity: record.capacity,
            recordTimestamp: record.timestamp,
            record: encodeNodeRecord(signed),
            updatedAt: nowMs,
          },
          session: { id: agreed.id, key: agreed.key, createdAt: nowMs },
        },
        options,
      )
      const key = record.node.toLowerCase()
      sessions.set(key, { id: agreed.id, key: agreed.key, last: 0 })
      const meta = metaOf(record, init.allowPrivateUrls)
      const status = index.upsert(record.node, { region: record.region, capacity: record.capacity, meta })
      dirty.add(key)
      components.onNode?.(record.node, record.httpUrl, record.region, false)
      metrics?.registrations.inc({ outcome: put.created ? 'created' : 'updated' })
      logger?.info(
        { node: record.node, region: record.region, created: put.created },
        put.created ? 'node registered' : 'node registration updated',
      )
      return {
        created: put.created,
        node: record.node,
        status,
        registeredAt: put.registeredAt,
        ...(agreed.publicKey !== undefined
          ? { session: { id: agreed.id, publicKey: agreed.publicKey } }
          : {}),
      }
    },

    async heartbeat(body, raw, mac, options) {
      const key = body.node.toLowerCase()
      const session = await sessionFor(key, body.session, options)
      if (session === undefined || session.id !== body.session) {
        throw new UnauthorizedError('no such heartbeat session: register the node again')
      }
      if (!checkHeartbeatMac(session.key, raw, mac)) {
        throw new InvalidSignatureError('the heartbeat MAC does not match the session key')
      }
      const now = clock()
      if (Math.abs(body.timestamp - now) > init.heartbeatSkewMs) {
        throw new ExpiredError(
          `the heartbeat timestamp is ${Math.round((body.timestamp - now) / 1000)} s off`,
        )
      }
      if (body.timestamp <= session.last) {
        throw new ReplayError('a heartbeat with this or a later timestamp was already accepted')
      }
      if (!index.has(body.node)) throw new NotFoundError(`no registered node ${body.node}`)
      session.last = body.timestamp
      const status = index.applyHeartbeat(body.node, { load: body.load })
      session.figures = {
        timestamp: body.timestamp,
        load: body.load,
        cacheBytes: body.cacheBytes,
        cacheObjects: body.cacheObjects,
        servedBytes: body.servedBytes,
        servedRequests: body.servedRequests,
        connections: body.connections,
        ...(body.reachability !== undefined ? { reachability: body.reachability } : {}),
        receivedAt: now,
      }
      components.onHeartbeat?.(body.node, body.reachability)
      dirty.add(key)
      return status
    },

    figures(address) {
      return sessions.get(address.toLowerCase())?.figures
    },

    async get(address, options) {
      const row = await store.getNode(address, options)
      if (row === undefined) throw new NotFoundError(`no registered node ${address}`)
      return row
    },

    async restore(options) {
      syncedFrom = clock()
      let after: string | undefined
      let total = 0
      for (;;) {
        const page = await store.listNodes({ after, limit: RESTORE_PAGE }, options)
        const rows: (NodeStateRow & { meta: NodeMeta })[] = []
        for (const { node, state } of page.nodes) {
          if (node.status !== 'registered') continue
          let meta: NodeMeta
          try {
            meta = metaOfRow(node, init.allowPrivateUrls)
          } catch (err) {
            logger?.warn(
              { node: node.address, err: (err as Error).message },
              'skipping a stored record that no longer decodes',
            )
            continue
          }
          if (state !== undefined) {
            // The registration is the authority on region and capacity (it may be newer than the state).
            rows.push({
              ...state,
              node: getAddress(state.node),
              region: node.region,
              capacity: node.capacity,
              meta,
            })
          } else {
            index.upsert(node.address, { region: node.region, capacity: node.capacity, meta })
          }
          components.onNode?.(node.address, node.httpUrl, node.region, true)
          total++
        }
        if (rows.length > 0) {
          index.restore(rows, {
            graceMs: Math.min(init.restoreGraceMs ?? 0, index.options.scoring.downAfterMs),
          })
        }
        if (page.next === undefined) break
        after = page.next
        await yieldToLoop()
      }
      return total
    },

    async sync(options) {
      const startedAt = clock()
      let since = syncCursor?.since ?? syncedFrom - SYNC_LOOKBACK_MS
      let after = syncCursor?.after
      let applied = 0
      for (let pages = 0; ; pages++) {
        if (pages === SYNC_PAGES) {
          // a bounded amount of work per call: the next call goes on from here
          syncCursor = { since, after: after! }
          return applied
        }
        const rows = await store.listNodesUpdated({ since, after, limit: RESTORE_PAGE }, options)
        for (const row of rows) {
          if (row.status !== 'registered') {
            if (index.remove(row.address)) {
              components.onRemoved?.(row.address)
              applied++
            }
            continue
          }
          // the same signed record is already applied
          if (index.get(row.address)?.meta?.timestamp === row.recordTimestamp) continue
          let meta: NodeMeta
          try {
            meta = metaOfRow(row, init.allowPrivateUrls)
          } catch {
            continue
          }
          index.upsert(row.address, { region: row.region, capacity: row.capacity, meta })
          components.onNode?.(row.address, row.httpUrl, row.region, false)
          applied++
        }
        if (rows.length < RESTORE_PAGE) break
        // the next page starts after this one's last row, even when many rows share its time
        since = rows[rows.length - 1]!.updatedAt
        after = rows[rows.length - 1]!.address
        await yieldToLoop()
      }
      // caught up: the next call looks back from now (when it started, the lookback covers
      // registrations written with a slower clock or committed late by another replica)
      syncCursor = undefined
      syncedFrom = startedAt
      return applied
    },

    markDirty(address) {
      dirty.add(address.toLowerCase())
    },

    async flush(options) {
      if (dirty.size === 0) return 0
      const batch = dirty
      dirty = new Set()
      let written = 0
      let rows: NodeStateRow[] = []
      try {
        for (const address of batch) {
          const row = index.row(address)
          if (row !== undefined) rows.push(row)
          if (rows.length >= FLUSH_BATCH) {
            written += await store.putNodeStates(rows, options)
            rows = []
            await yieldToLoop()
          }
        }
        if (rows.length > 0) written += await store.putNodeStates(rows, options)
      } catch (err) {
        // Nothing is lost: the nodes are dirty again and the next flush retries them.
        for (const address of batch) dirty.add(address)
        throw err
      }
      metrics?.stateRowsFlushed.inc(written)
      return written
    },

    get dirty() {
      return dirty.size
    },
  }
  return registry
}
