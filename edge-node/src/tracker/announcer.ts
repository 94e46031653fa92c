/**
 * The node's side of the tracker registry (docs/tracker.md): it registers a signed
 * `NodeRecord` with a heartbeat session, then sends a heartbeat (load, cache and traffic
 * figures, MAC'd with the session key) every `heartbeatIntervalMs`. When the tracker no
 * longer knows the session (it lost its state, or another replica answers) the node
 * registers again; when the tracker cannot be reached it retries with capped
 * exponential backoff, so a tracker outage never stops the node from serving.
 *
 * With the mesh on, each heartbeat also says how the node's mesh addresses are reached
 * (`reachability`: `public`, `relayed` through a circuit relay, `private`, `unknown`),
 * and when the node's addresses change (a relay reservation comes or goes) it signs and
 * registers a new record, so the tracker hands out only addresses the node signed.
 */
import {
  encodeNodeRecord,
  isShoalError,
  type NodeRecord,
  type RecordSigner,
  remoteError,
  signNodeRecord,
  UpstreamError,
} from '@shoal/protocol'
import {
  createSessionKeyPair,
  deriveSessionKey,
  HEARTBEAT_MAC_HEADER,
  macHeartbeat,
  signTrackerSession,
} from '@shoal/tracker/node-session'
import type { Logger } from 'pino'
import { request } from 'undici'
import type { Address } from 'viem'

/** The figures a heartbeat reports, read from the node at each beat. */
export interface NodeFigures {
  cacheBytes: number
  cacheObjects: number
  /** Cumulative since the node started. */
  servedBytes: number
  servedRequests: number
  connections: number
}

export interface AnnouncerInit {
  trackerUrl: string
  /** What the record says; `node` and `timestamp` are filled in. */
  record: Omit<NodeRecord, 'node' | 'timestamp'>
  /** Default 10 s. */
  heartbeatIntervalMs?: number
  /** Longest wait between retries when the tracker is unreachable. Default 60 s. */
  maxBackoffMs?: number
  /** Per request. Default 10 s. */
  timeoutMs?: number
  /**
   * Least time between two registrations for changed addresses (each costs the tracker a
   * signature recovery; addresses that flap must not turn heartbeats into registrations).
   * Default 30 s.
   */
  reregisterMinMs?: number
}

/** How the node's mesh addresses are reached, as its heartbeats report it to the tracker. */
export type MeshReachability = 'public' | 'relayed' | 'private' | 'unknown'

export interface AnnouncerComponents {
  account: RecordSigner & { address: Address }
  figures: () => NodeFigures
  logger: Logger
  /** The record's multiaddrs now; when they differ from the registered ones, the node registers again. */
  multiaddrs?: () => string[]
  /** The mesh's reachability, sent with each heartbeat. */
  reachability?: () => MeshReachability
}

export type AnnouncerState = 'idle' | 'registering' | 'registered' | 'retrying' | 'stopped'

export interface Announcer {
  readonly state: AnnouncerState
  /** The node's status in the tracker's index, from its last answer. */
  readonly trackerStatus: string | undefined
  /** Starts registering in the background; resolves at once. */
  start(): void
  /** Resolves once registered (or rejects when stopped first). */
  registered(): Promise<void>
  stop(): Promise<void>
}

interface Session {
  id: string
  key: Buffer
}

/**
 * @example
 * const announcer = createAnnouncer(
 *   { trackerUrl, record: { peerId, multiaddrs: [], httpUrl: node.url, region: 'eu-west', capacity: 12_500_000, payout } },
 *   { account, figures: () => node.figures(), logger },
 * )
 * announcer.start()
 */
export function createAnnouncer(init: AnnouncerInit, components: AnnouncerComponents): Announcer {
  const { account, logger } = components
  const base = init.trackerUrl.replace(/\/+$/, '')
  const interval = init.heartbeatIntervalMs ?? 10_000
  const maxBackoff = init.maxBackoffMs ?? 60_000
  const timeoutMs = init.timeoutMs ?? 10_000
  const stopController = new AbortController()
  let state: AnnouncerState = 'idle'
  let trackerStatus: string | undefined
  let session: Session | undefined
  let timer: NodeJS.Timeout | undefined
  let running: Promise<void> | undefined
  let failures = 0
  let lastRecordTimestamp = 0
  let registeredAddrs = [...init.record.multiaddrs].sort().join(' ')
  let registeredAt = 0
  const reregisterMinMs = init.reregisterMinMs ?? 30_000
  let lastBeat = 0
  let lastServed = { at: Date.now(), bytes: 0 }
  const waiters: { resolve: () => void; reject: (err: Error) => void }[] = []

  const post = async (path: string, body: string, headers: Record<string, string> = {}) => {
    const res = await request(`${base}${path}`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json', ...headers },
      signal: AbortSignal.any([stopController.signal, AbortSignal.timeout(timeoutMs)]),
    })
    const answer: unknown = await res.body.json().catch(() => undefined)
    if (res.statusCode >= 300) throw remoteError(res.statusCode, answer, 'tracker')
    if (typeof answer !== 'object' || answer === null)
      throw new UpstreamError('tracker answered without a JSON object')
    return answer as Record<string, unknown>
  }

  const register = async () => {
    // a record timestamp must grow: the tracker refuses an equal one as a replay
    const timestamp = Math.max(Math.floor(Date.now() / 1000), lastRecordTimestamp + 1)
    const multiaddrs = components.multiaddrs?.() ?? init.record.multiaddrs
    const signed = await signNodeRecord(account, {
      ...init.record,
      multiaddrs,
      node: account.address,
      timestamp,
    })
    const pair = createSessionKeyPair()
    const binding = await signTrackerSession(account, {
      node: account.address,
      publicKey: pair.publicKey,
      timestamp,
    })
    const body = `{"record":${encodeNodeRecord(signed)},"session":{"publicKey":"${pair.publicKey}","signature":"${binding.signature}"}}`
    const answer = await post('/v1/nodes', body)
    lastRecordTimestamp = timestamp
    registeredAddrs = [...multiaddrs].sort().join(' ')
    registeredAt = Date.now()
    const s = answer.session as { id: string; publicKey: string } | undefined
    if (s === undefined) throw new Error('the tracker did not agree a heartbeat session')
    session = { id: s.id, key: deriveSessionKey(pair.privateKey, s.publicKey, s.id, account.address) }
    trackerStatus = typeof answer.status === 'string' ? answer.status : undefined
    logger.info(
      { tracker: base, status: trackerStatus, httpUrl: init.record.httpUrl },
      'registered with the tracker',
    )
  }

  const beat = async (current: Session) => {
    const f = components.figures()
    const now = Date.now()
    const seconds = Math.max(0.001, (now - lastServed.at) / 1000)
    const load = Math.max(0, Math.round((f.servedBytes - lastServed.bytes) / seconds))
    lastServed = { at: now, bytes: f.servedBytes }
    const timestamp = Math.max(now, lastBeat + 1)
    lastBeat = timestamp
    const body = JSON.stringify({
      node: account.address.toLowerCase(),
      session: current.id,
      timestamp,
      load,
      cacheBytes: f.cacheBytes,
      cacheObjects: f.cacheObjects,
      servedBytes: f.servedBytes,
      servedRequests: f.servedRequests,
      connections: f.connections,
      ...(components.reachability !== undefined ? { reachability: components.reachability() } : {}),
    })
    const answer = await post('/v1/nodes/heartbeat', body, {
      [HEARTBEAT_MAC_HEADER]: macHeartbeat(current.key, body),
    })
    trackerStatus = typeof answer.status === 'string' ? answer.status : trackerStatus
  }

  const schedule = (ms: number) => {
    if (stopController.signal.aborted) return
    timer = setTimeout(() => {
      timer = undefined
      running = step().finally(() => {
        running = undefined
      })
    }, ms)
    timer.unref()
  }

  const step = async (): Promise<void> => {
    try {
      if (session === undefined) {
        state = state === 'retrying' ? 'retrying' : 'registering'
        await register()
        state = 'registered'
        failures = 0
        for (const w of waiters.splice(0)) w.resolve()
        // the first heartbeat right away: it carries the figures the tracker lacks
        schedule(0)
        return
      }
      const addrs = components.multiaddrs?.()
      if (
        addrs !== undefined &&
        [...addrs].sort().join(' ') !== registeredAddrs &&
        Date.now() - registeredAt >= reregisterMinMs
      ) {
        logger.info({ multiaddrs: addrs }, 'mesh addresses changed: registering the new record')
        await register()
      }
      await beat(session!)
      failures = 0
      schedule(interval)
    } catch (err) {
      if (stopController.signal.aborted) return
      // an unknown session (tracker restarted without it, another replica): register again
      if (
        isShoalError(err) &&
        (err.code === 'SHOAL_ERR_UNAUTHORIZED' || err.code === 'SHOAL_ERR_INVALID_SIGNATURE')
      ) {
        logger.warn({ err: err.message }, 'the tracker refused the heartbeat session; registering again')
        session = undefined
      }
      failures++
      const wait = Math.min(maxBackoff, 1000 * 2 ** Math.min(failures - 1, 10))
      // refusals that retrying cannot fix are errors an operator must see
      const refused = isShoalError(err) && ['SHOAL_ERR_FORBIDDEN', 'SHOAL_ERR_CONFLICT'].includes(err.code)
      logger[refused ? 'error' : 'warn'](
        { err: (err as Error).message, retryInMs: wait, tracker: base },
        session === undefined ? 'could not register with the tracker' : 'heartbeat failed',
      )
      if (session === undefined) state = 'retrying'
      schedule(wait)
    }
  }

  return {
    get state() {
      return state
    },
    get trackerStatus() {
      return trackerStatus
    },
    start() {
      if (state !== 'idle') return
      state = 'registering'
      schedule(0)
    },
    registered() {
      if (state === 'registered') return Promise.resolve()
      if (state === 'stopped') return Promise.reject(new Error('the announcer is stopped'))
      return new Promise((resolve, reject) => waiters.push({ resolve, reject }))
    },
    async stop() {
      if (state === 'stopped') return
      state = 'stopped'
      stopController.abort()
      if (timer !== undefined) clearTimeout(timer)
      timer = undefined
      for (const w of waiters.splice(0)) w.reject(new Error('the announcer is stopped'))
      await running?.catch(() => {})
    },
  }
}
