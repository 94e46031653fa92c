/**
 * The mesh probe: the tracker checks a node's claim that peers reach its libp2p
 * addresses (`reachability` `public` or `relayed` in its heartbeats) before it hands
 * those addresses to mesh clients (docs/tracker.md, "Mesh probe").
 *
 * Each probe dials the addresses the node signed in its record, with a libp2p client of
 * its own (the mesh's stack: TCP, Noise, Yamux; it listens on nothing and hole-punches
 * nothing), always as a new connection:
 * - a direct address `/ip4|ip6/<ip>/tcp/<port>` is dialled as is;
 * - a circuit address `<relay>/p2p/<relay id>/p2p-circuit` is dialled through the named
 *   relay (circuit relay v2), which is what a client behind any network would do, so a
 *   `relayed` claim is checked end to end: the relay is up, holds the node's reservation
 *   and forwards to it;
 * - Noise authenticates the remote: a connection to any other peer id than the one the
 *   node registered fails the probe (`wrong peer`);
 * - then `/ipfs/ping/1.0.0` on that very connection (a relayed one is "limited": asking
 *   libp2p to ping the peer would dial it again elsewhere), and the connection is closed.
 *
 * Only addresses the node claimed are dialled, never ones a peer tells the tracker
 * (identify), and only TCP on IP literals: `dns*` names are skipped (a name could resolve
 * into the tracker's own network), as are loopback, private, link-local and reserved
 * addresses (direct or the relay's) unless `allowPrivateAddresses` (devnets, tests).
 * Scheduling is the shared probe loop's (bounded concurrency and timeouts), with a
 * back-off: after `n` failures in a row the next probe waits `interval × 2^(n-1)`, at most
 * `backoffMaxMs`; a changed record or a new claim probes at once.
 */
import { randomBytes } from 'node:crypto'
import type { Connection, Libp2p } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { PING_PROTOCOL } from '@libp2p/ping'
import { multiaddr } from '@multiformats/multiaddr'
import { InvalidFormatError, UnauthorizedError, UnavailableError } from '@shoal/protocol'
import type { Logger } from 'pino'
import { Uint8ArrayList } from 'uint8arraylist'
import type { TrackerMetrics } from '../metrics.ts'
import { createProbeLoop } from '../probe/loop.ts'
import { isPrivateAddress } from '../registry/url-policy.ts'

const PING_LENGTH = 32
const DIRECT = /^\/(ip4|ip6)\/([^/]+)\/tcp\/(\d{1,5})(?:\/p2p\/([^/]+))?$/
const CIRCUIT = /^\/(ip4|ip6)\/([^/]+)\/tcp\/(\d{1,5})\/p2p\/([^/]+)\/p2p-circuit(?:\/p2p\/([^/]+))?$/

export interface MeshProbeTarget {
  peerId: string
  /** Dialable addresses, each ending in `/p2p/<peerId>` (from `meshProbeTarget`). */
  addrs: string[]
}

export type MeshProbeOutcome =
  | { reachable: true; rttMs: number; relayed: boolean; addr: string }
  | { reachable: false; reason: string }

export interface MeshDialResult {
  rttMs: number
  relayed: boolean
  /** The address the connection was made to. */
  addr: string
}

/** What the probe needs of libp2p (tests may hand their own). */
export interface MeshDialer {
  /**
   * Dials `addrs` as a new connection, checks the remote is `peerId`, pings it over that
   * connection and closes it. Throws when none answers (`SHOAL_ERR_UNAUTHORIZED`: another
   * peer answered; `SHOAL_ERR_INVALID_FORMAT`: a wrong ping answer; else libp2p's error).
   */
  check(peerId: string, addrs: string[], options: { signal: AbortSignal }): Promise<MeshDialResult>
  stop(): Promise<void>
}

export interface MeshProberInit {
  intervalMs: number
  concurrency: number
  timeoutMs: number
  jitter: number
  /** Longest wait between probes of a node that keeps failing (ms). */
  backoffMaxMs: number
  maxLaunchPerTick?: number
}

export interface MeshProberComponents {
  dialer: MeshDialer
  onResult: (node: string, outcome: MeshProbeOutcome) => void
  /**
   * Asked when a node's probe is due: `true` skips this round (nothing dialled, nothing
   * reported), e.g. while the node's HTTP URL answers and clients need no mesh address.
   */
  skip?: (node: string) => boolean
  clock?: () => number
  random?: () => number
  logger?: Logger
  metrics?: TrackerMetrics
}

export interface MeshProber {
  /** Adds or updates a node to probe; returns true when its target changed (it is probed at once). */
  upsert(node: string, target: MeshProbeTarget): boolean
  remove(node: string): void
  /** Probes one node now (outside the schedule) and reports the outcome. */
  probe(node: string, target: MeshProbeTarget, options?: { signal?: AbortSignal }): Promise<MeshProbeOutcome>
  start(): void
  /** Stops scheduling, aborts probes in flight and stops the dialer. */
  stop(): Promise<void>
  stats(): { targets: number; inFlight: number; lagMs: number }
}

/**
 * The addresses of a node's record the mesh probe may dial, each ending in the node's
 * `/p2p/<peerId>`: TCP on IP literals, direct or through a relay, public unless
 * `allowPrivate`; an address naming another peer id is dropped.
 *
 * @example
 * meshProbeTarget('12D3KooWNode', ['/ip4/203.0.113.9/tcp/7580', '/ip4/10.0.0.2/tcp/7580'], false)
 * // { peerId: '12D3KooWNode', addrs: ['/ip4/203.0.113.9/tcp/7580/p2p/12D3KooWNode'] }
 */
export function meshProbeTarget(
  peerId: string,
  multiaddrs: readonly string[],
  allowPrivate: boolean,
): MeshProbeTarget {
  const addrs: string[] = []
  const routable = (host: string) => allowPrivate || !isPrivateAddress(host)
  for (const ma of multiaddrs) {
    const circuit = CIRCUIT.exec(ma)
    const direct = circuit === null ? DIRECT.exec(ma) : null
    const m = circuit ?? direct
    if (m === null) continue
    const port = Number(m[3])
    const own = circuit !== null ? m[5] : m[4]
    if (port < 1 || port > 65_535 || (own !== undefined && own !== peerId)) continue
    if (circuit !== null && m[4] === peerId) continue
    if (!routable(m[2]!)) continue
    const full = own === undefined ? `${ma}/p2p/${peerId}` : ma
    try {
      multiaddr(full)
    } catch {
      continue
    }
    if (!addrs.includes(full)) addrs.push(full)
  }
  return { peerId, addrs }
}

const sameTarget = (a: MeshProbeTarget, b: MeshProbeTarget): boolean =>
  a.peerId === b.peerId && a.addrs.length === b.addrs.length && a.addrs.every((x, i) => x === b.addrs[i])

/** A short, stable reason for a failed dial (logs, `GET /v1/nodes/<address>`). */
function reasonOf(err: unknown, signal: AbortSignal): string {
  if (signal.aborted) return 'timeout'
  const e = err as { name?: string; code?: string; errors?: unknown[] }
  if (e.code === 'SHOAL_ERR_UNAUTHORIZED') return 'wrong peer'
  if (Array.isArray(e.errors) && e.errors.length > 0) {
    const reasons = new Set(e.errors.map((x) => reasonOf(x, signal)))
    if (reasons.has('wrong peer')) return 'wrong peer'
    return [...reasons][0]!
  }
  const cause = (err as { cause?: unknown }).cause
  if (cause !== undefined && cause !== err && e.code === undefined) return reasonOf(cause, signal)
  return e.code ?? e.name ?? 'error'
}

/**
 * @example
 * const prober = createMeshProber({ intervalMs: 30_000, concurrency: 32, timeoutMs: 10_000, jitter: 0.1, backoffMaxMs: 600_000 },
 *   { dialer: createLibp2pMeshDialer(), onResult: (node, o) => reachability.noteProbe(node, o) })
 * prober.upsert(address, meshProbeTarget(peerId, multiaddrs, false))
 * prober.start()
 */
export function createMeshProber(init: MeshProberInit, components: MeshProberComponents): MeshProber {
  const { dialer, onResult, logger, metrics } = components
  const random = components.random ?? Math.random
  const failures = new Map<string, number>()

  const probeOnce = async (target: MeshProbeTarget, signal: AbortSignal): Promise<MeshProbeOutcome> => {
    if (target.addrs.length === 0) return { reachable: false, reason: 'no dialable address' }
    try {
      const r = await dialer.check(target.peerId, target.addrs, { signal })
      return { reachable: true, rttMs: r.rttMs, relayed: r.relayed, addr: r.addr }
    } catch (err) {
      return { reachable: false, reason: reasonOf(err, signal) }
    }
  }

  const record = (node: string, outcome: MeshProbeOutcome): void => {
    const key = node.toLowerCase()
    if (outcome.reachable) {
      failures.delete(key)
      metrics?.meshProbes.inc({ outcome: outcome.relayed ? 'relayed' : 'direct' })
    } else {
      failures.set(key, (failures.get(key) ?? 0) + 1)
      metrics?.meshProbes.inc({ outcome: 'unreachable' })
      logger?.debug({ node, reason: outcome.reason }, 'mesh probe failed')
    }
    try {
      onResult(node, outcome)
    } catch (err) {
      logger?.debug({ node, err: (err as Error).message }, 'mesh probe result not applied')
    }
  }

  const loop = createProbeLoop<MeshProbeTarget, MeshProbeOutcome | undefined>(
    {
      intervalMs: init.intervalMs,
      concurrency: init.concurrency,
      timeoutMs: init.timeoutMs,
      jitter: init.jitter,
      ...(init.maxLaunchPerTick !== undefined ? { maxLaunchPerTick: init.maxLaunchPerTick } : {}),
    },
    {
      run: async (node, target, signal) =>
        components.skip?.(node) === true ? undefined : probeOnce(target, signal),
      onResult: (node, _target, outcome) => {
        if (outcome !== undefined) record(node, outcome)
      },
      nextDelayMs: (node) => {
        const n = failures.get(node.toLowerCase()) ?? 0
        const base = Math.min(
          init.intervalMs * 2 ** Math.max(0, n - 1),
          Math.max(init.backoffMaxMs, init.intervalMs),
        )
        return base * (1 + init.jitter * (2 * random() - 1))
      },
      same: sameTarget,
      ...(components.clock !== undefined ? { clock: components.clock } : {}),
      random,
    },
  )

  return {
    upsert(node, target) {
      const changed = loop.upsert(node, target)
      if (changed) failures.delete(node.toLowerCase())
      return changed
    },
    remove(node) {
      loop.remove(node)
      failures.delete(node.toLowerCase())
    },
    async probe(node, target, options = {}) {
      const outcome = await probeOnce(target, loop.signal(options.signal))
      record(node, outcome)
      return outcome
    },
    start: () => loop.start(),
    async stop() {
      await loop.stop()
      await dialer.stop()
    },
    stats: () => loop.stats(),
  }
}

export interface Libp2pMeshDialerInit {
  /** Connections open at once at most (probes in flight, plus relays). */
  maxConnections?: number
}

/**
 * The mesh probe's libp2p client, started on first use: the mesh's own stack
 * (`createMeshTransport` of `@shoal/client-sdk/node`) without listen addresses and
 * without hole punching, so it only ever dials what the probe hands it.
 *
 * @example
 * const dialer = createLibp2pMeshDialer({ maxConnections: 64 })
 * await dialer.check(peerId, ['/ip4/127.0.0.1/tcp/7580/p2p/' + peerId], { signal: AbortSignal.timeout(5_000) })
 */
export function createLibp2pMeshDialer(init: Libp2pMeshDialerInit = {}): MeshDialer {
  let starting: Promise<Libp2p> | undefined
  let stopped = false

  const node = (): Promise<Libp2p> => {
    starting ??= import('@shoal/client-sdk/node').then(({ createMeshTransport }) =>
      createMeshTransport({ maxConnections: init.maxConnections ?? 64, nat: { dcutr: false } }),
    )
    return starting
  }

  const ping = async (conn: Connection, signal: AbortSignal): Promise<number> => {
    const stream = await conn.newStream(PING_PROTOCOL, { signal, runOnLimitedConnection: true })
    const onAbort = () => stream.abort(new Error('ping timed out'))
    signal.addEventListener('abort', onAbort, { once: true })
    try {
      const data = randomBytes(PING_LENGTH)
      const started = performance.now()
      stream.send(data)
      const received = new Uint8ArrayList()
      for await (const chunk of stream) {
        received.append(chunk)
        if (received.byteLength >= PING_LENGTH) break
      }
      if (received.byteLength < PING_LENGTH || !data.equals(received.subarray(0, PING_LENGTH))) {
        throw new InvalidFormatError('the ping answer does not echo the ping')
      }
      return performance.now() - started
    } finally {
      signal.removeEventListener('abort', onAbort)
      await stream.close().catch(() => stream.abort(new Error('closed')))
    }
  }

  /** One address: a new connection, the remote's peer id checked, a ping on it, closed. */
  const checkOne = async (libp2p: Libp2p, peerId: string, addr: string, signal: AbortSignal) => {
    // a direct address is dialled without the expected peer id, so Noise reports whoever
    // answers there and the check below names a wrong peer as such; a circuit address
    // keeps it (the relay needs it to pick the reservation)
    const own = `/p2p/${peerId}`
    const target = !addr.includes('/p2p-circuit') && addr.endsWith(own) ? addr.slice(0, -own.length) : addr
    const conn = await libp2p.dial(multiaddr(target), { signal, force: true })
    try {
      if (conn.remotePeer.toString() !== peerId) {
        throw new UnauthorizedError(`${target} is ${conn.remotePeer.toString()}, not ${peerId}`)
      }
      const rttMs = await ping(conn, signal).catch((err: unknown) => {
        // the peer was reached and authenticated, but the connection went away under the
        // ping: libp2p's connection monitor pings every connection every 10 s on the same
        // protocol, which allows one outbound stream, and aborts the connection when the
        // two meet. Worth one more dial (`check` retries once).
        if (conn.status !== 'open' && !signal.aborted) Object.assign(err as object, { retry: true })
        throw err
      })
      return { rttMs, relayed: conn.limits !== undefined, addr: conn.remoteAddr.toString() }
    } finally {
      await conn.close().catch(() => conn.abort(new Error('closed')))
    }
  }

  return {
    async check(peerId, addrs, { signal }) {
      if (stopped) throw new UnavailableError('the mesh dialer is stopped')
      const libp2p = await node()
      const losers = new AbortController()
      const any = AbortSignal.any([signal, losers.signal])
      try {
        // every claimed address at once: the first that answers wins, the others are aborted
        return await Promise.any(
          addrs.map((addr) =>
            checkOne(libp2p, peerId, addr, any).catch((err: unknown) => {
              if ((err as { retry?: boolean }).retry !== true) throw err
              return checkOne(libp2p, peerId, addr, any)
            }),
          ),
        )
      } finally {
        losers.abort()
        // nothing of the peer is kept: the next probe dials the record's addresses again
        await libp2p.peerStore.delete(peerIdFromString(peerId)).catch(() => {})
      }
    },
    async stop() {
      stopped = true
      const p = starting
      starting = undefined
      if (p !== undefined) await (await p.catch(() => undefined))?.stop()
    },
  }
}
