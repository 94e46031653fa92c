/**
 * The node's place in the libp2p mesh: it listens, bootstraps from peers it is given
 * (configured, or the tracker's selection for a CID), keeps a bounded set of
 * neighbours, answers `/shoal/have/1.0.0` and `/shoal/chunk/1.0.0` from what it holds,
 * and offers a `ContentSource` that fetches misses from a neighbour holding the CID.
 * A neighbour that sends bytes not matching the CID is disconnected, refused for
 * `banMs`, and reported to the tracker with the evidence.
 */
import type { Libp2p, PeerId, PrivateKey } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import {
  askHave,
  CHUNK_PROTOCOL,
  createMeshTransport,
  HAVE_PROTOCOL,
  MESH_LIMITS,
  type MeshIntegrityEvidence,
  type MeshNatInit,
  RECEIPT_PROTOCOL,
  requestChunks,
} from '@shoal/client-sdk/node'
import {
  type Cid,
  chunkCount,
  DEFAULT_CHUNK_SIZE,
  formatCid,
  InvalidArgumentError,
  isShoalError,
  RECORD_LIMITS,
} from '@shoal/protocol'
import ipaddr from 'ipaddr.js'
import type { Logger } from 'pino'
import type { ContentSource } from '../content/sources.ts'
import type { TokenBucket } from '../limits/token-bucket.ts'
import type { Sessions } from '../receipts/sessions.ts'
import type { MeshHoldings } from './holdings.ts'
import { loadOrCreateMeshKey } from './identity.ts'
import { receiptHandler } from './receipts.ts'
import { chunkHandler, haveHandler } from './server.ts'

export const DEFAULT_MESH_MAX_NEIGHBOURS = 16
export const DEFAULT_MESH_HAVE_TIMEOUT_MS = 2_000
export const DEFAULT_MESH_REQUEST_TIMEOUT_MS = 10_000
export const DEFAULT_MESH_DIAL_TIMEOUT_MS = 5_000
export const DEFAULT_MESH_BAN_MS = 60 * 60_000
/** How long a new connection is spared when the node trims its neighbours. */
export const DEFAULT_MESH_NEIGHBOUR_GRACE_MS = 30_000
/** Relayed connections (a node behind NAT) carry the protocols too, within the relay's limits. */
const HANDLER_OPTIONS = { maxInboundStreams: 16, runOnLimitedConnection: true }
/** Peers remembered (for their node address, to report them). */
const MAX_KNOWN_PEERS = 4096
/** Neighbours asked at once whether they hold a CID. */
const HAVE_FAN_OUT = 8

/** A peer as the tracker or the configuration names it. */
export interface MeshPeerInfo {
  peerId: string
  multiaddrs: string[]
  /** The node's Ethereum address, when known (needed to report it). */
  node?: `0x${string}`
}

export interface MeshInit {
  /** Listen multiaddrs; tests use `/ip4/127.0.0.1/tcp/0`. */
  listen: string[]
  /** Addresses to announce instead of the listening ones. */
  announce?: string[]
  /** Peers dialled at start. */
  bootstrap?: MeshPeerInfo[]
  maxNeighbours?: number
  haveTimeoutMs?: number
  requestTimeoutMs?: number
  dialTimeoutMs?: number
  banMs?: number
  /**
   * Past `maxNeighbours` plus the fan-out, the node closes its least useful idle
   * neighbours down to `maxNeighbours` (low and high watermarks, as go-libp2p's
   * connection manager trims), sparing connections younger than this.
   */
  neighbourGraceMs?: number
  /** Where `peer-key.json` lives (the node's data dir), when no private key is given. */
  keyDir?: string
  /** Relays, AutoNAT, UPnP, hole punching (docs/mesh.md, "Nodes behind NAT"). */
  nat?: MeshNatInit
}

export interface MeshComponents {
  /** The node's libp2p identity; else read from (or created in) `init.keyDir`, else a fresh one. */
  privateKey?: PrivateKey
  holdings: MeshHoldings
  logger?: Logger
  /** More peers for a CID (the tracker's selection); asked when no neighbour holds it. */
  discover?: (cid: Cid, options: { signal?: AbortSignal }) => Promise<MeshPeerInfo[]>
  /** Files a report about a peer that sent bad bytes. */
  report?: (
    peer: MeshPeerInfo,
    evidence: MeshIntegrityEvidence,
    options: { signal?: AbortSignal },
  ) => Promise<void>
  /** The node's egress cap, shared with HTTP: chunks served to peers take its tokens. */
  egress?: Pick<TokenBucket, 'take'>
  /** Told about bytes received from and served to peers (metrics). */
  onBytes?: (direction: 'in' | 'out', bytes: number) => void
  /**
   * The node's payment sessions: with them the node answers `/shoal/receipt/1.0.0` and
   * meters chunks sent for the session a chunk request names (src/mesh/receipts.ts).
   */
  sessions?: Pick<Sessions, 'open' | 'accept' | 'meter'>
}

export interface AddPeersOptions {
  signal?: AbortSignal
  /** How many peers may be dialled past `maxNeighbours` (never past twice it). */
  extra?: number
  /**
   * At the limit, close the least useful idle neighbour (see `leastUseful`) for each
   * peer still to dial, instead of leaving the peer undialled: for the holders of
   * content being fetched now, which are worth more than a neighbour that is not.
   */
  makeRoom?: boolean
  /** Told of each peer as soon as its connection is up. */
  onConnected?: (peer: PeerId) => void
}

export interface Mesh {
  /** This node's peer id (text form). */
  readonly peerId: string
  /** Where peers reach this node, each ending in `/p2p/<peer id>` (after `start`). */
  multiaddrs(): string[]
  /**
   * The addresses a node record should carry: `multiaddrs()` without the trailing
   * `/p2p/<own id>` (the record names the peer id), relay addresses first, within the
   * record's limits (16 addresses of at most 256 characters).
   */
  recordMultiaddrs(): string[]
  /**
   * How peers reach this node, as reported to the tracker: `relayed` when it holds a
   * circuit relay reservation (a `/p2p-circuit` address), `public` when the operator
   * announced addresses or one of its addresses is a public IP (listened on, mapped by
   * UPnP or confirmed by AutoNAT), `private` when all are loopback or private, `unknown`
   * before start.
   */
  reachability(): 'public' | 'relayed' | 'private' | 'unknown'
  /** Peer ids of the connected neighbours. */
  neighbours(): string[]
  /** Dials peers until the neighbour set is full; failures are logged, not thrown. */
  addPeers(peers: MeshPeerInfo[], options?: AddPeersOptions): Promise<void>
  /** A neighbour (or a discovered peer) that holds the CID, or undefined. */
  findHolder(cid: Cid, options?: { signal?: AbortSignal }): Promise<PeerId | undefined>
  /** Peers refused after sending bad bytes. */
  banned(): string[]
  /** The miss-path source: chunks from a neighbour, verified on arrival. */
  readonly source: ContentSource
  readonly libp2p: Libp2p | undefined
  start(): Promise<void>
  stop(): Promise<void>
}

/** A unicast address on the public internet (not loopback, private, CGNAT, link-local…). */
function isPublicIp(host: string): boolean {
  if (!ipaddr.isValid(host)) return false
  return ipaddr.process(host).range() === 'unicast'
}

function shuffled<T>(items: readonly T[]): T[] {
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    ;[out[i], out[j]] = [out[j]!, out[i]!]
  }
  return out
}

/** Errors that mean the peer broke the protocol (not a timeout or a missing object). */
const MISBEHAVIOUR = new Set([
  'SHOAL_ERR_INTEGRITY',
  'SHOAL_ERR_INVALID_LEAVES',
  'SHOAL_ERR_INVALID_FORMAT',
  'SHOAL_ERR_TOO_LARGE',
])
const isMisbehaviour = (err: unknown): boolean =>
  isShoalError(err) && MISBEHAVIOUR.has(err.code) && (err as { remote?: boolean }).remote !== true

function positive(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback
  if (!Number.isSafeInteger(v) || v < 1)
    throw new InvalidArgumentError(`mesh ${name} must be a positive integer`)
  return v
}

/**
 * @example
 * const mesh = createMesh({ listen: ['/ip4/127.0.0.1/tcp/0'] }, { privateKey, holdings: storeHoldings(store) })
 * await mesh.start()
 */
export function createMesh(init: MeshInit, components: MeshComponents): Mesh {
  if (!Array.isArray(init.listen)) throw new InvalidArgumentError('mesh listen must be a list of multiaddrs')
  for (const addr of [...init.listen, ...(init.announce ?? [])]) {
    try {
      multiaddr(addr)
    } catch (cause) {
      throw new InvalidArgumentError(`"${addr}" is not a multiaddr`, { cause })
    }
  }
  const maxNeighbours = positive('maxNeighbours', init.maxNeighbours, DEFAULT_MESH_MAX_NEIGHBOURS)
  const haveTimeoutMs = positive('haveTimeoutMs', init.haveTimeoutMs, DEFAULT_MESH_HAVE_TIMEOUT_MS)
  const requestTimeoutMs = positive(
    'requestTimeoutMs',
    init.requestTimeoutMs,
    DEFAULT_MESH_REQUEST_TIMEOUT_MS,
  )
  const dialTimeoutMs = positive('dialTimeoutMs', init.dialTimeoutMs, DEFAULT_MESH_DIAL_TIMEOUT_MS)
  const banMs = positive('banMs', init.banMs, DEFAULT_MESH_BAN_MS)
  const neighbourGraceMs = positive(
    'neighbourGraceMs',
    init.neighbourGraceMs,
    DEFAULT_MESH_NEIGHBOUR_GRACE_MS,
  )
  const { logger, holdings, sessions } = components
  const known = new Map<string, MeshPeerInfo>()
  const bans = new Map<string, number>()
  /** Holders found for a CID and the leaves they sent, between `leaves()` and `body()`. */
  const recent = new Map<string, { peer: PeerId; leaves?: Uint8Array; at: number }>()
  /** When each peer last answered that it held a CID this node asked for (bounded). */
  const useful = new Map<string, number>()
  const markUseful = (peer: string) => {
    useful.delete(peer)
    useful.set(peer, Date.now())
    if (useful.size > MAX_KNOWN_PEERS) useful.delete(useful.keys().next().value!)
  }
  let libp2p: Libp2p | undefined
  let selfId = ''

  const isBanned = (peer: string): boolean => {
    const until = bans.get(peer)
    if (until === undefined) return false
    if (until > Date.now()) return true
    bans.delete(peer)
    return false
  }

  const running = (): Libp2p => {
    if (libp2p === undefined) throw new InvalidArgumentError('the mesh is not started')
    return libp2p
  }

  const neighbours = (): PeerId[] =>
    libp2p === undefined ? [] : libp2p.getPeers().filter((p) => !isBanned(p.toString()))

  /**
   * The neighbour to close to make room: idle (no stream open), not in `keep`, and the
   * least useful, as libp2p's connection pruner ranks by peer value: the one that held
   * what this node asked for least recently (never, first), and of those the oldest
   * connection (it had the longest chance to be useful).
   */
  const leastUseful = (
    node: Libp2p,
    keep: ReadonlySet<string>,
    openedBefore = Number.POSITIVE_INFINITY,
  ): PeerId | undefined => {
    let victim: PeerId | undefined
    let victimUseful = Number.POSITIVE_INFINITY
    let victimOpened = Number.POSITIVE_INFINITY
    for (const peer of node.getPeers()) {
      const id = peer.toString()
      if (keep.has(id)) continue
      const connections = node.getConnections(peer)
      if (connections.some((c) => c.streams.length > 0)) continue
      const usefulAt = useful.get(id) ?? -1
      const opened = Math.min(...connections.map((c) => c.timeline.open))
      if (opened >= openedBefore) continue
      if (usefulAt < victimUseful || (usefulAt === victimUseful && opened < victimOpened)) {
        victim = peer
        victimUseful = usefulAt
        victimOpened = opened
      }
    }
    return victim
  }

  /**
   * Keeps room for the peers that dial this node for what it holds: past the high
   * watermark (`maxNeighbours` + the fan-out, below libp2p's `maxConnections` of twice
   * `maxNeighbours`), closes the least useful idle neighbours older than the grace period
   * down to `maxNeighbours`, so inbound dials are not refused at `maxConnections`.
   */
  const highWatermark = Math.min(maxNeighbours + HAVE_FAN_OUT, maxNeighbours * 2 - 1)
  let trimming = false
  let retryTrim: ReturnType<typeof setTimeout> | undefined
  const trim = async (node: Libp2p) => {
    if (trimming || libp2p !== node || node.getPeers().length <= highWatermark) return
    trimming = true
    try {
      const closed = new Set<string>()
      const openedBefore = Date.now() - neighbourGraceMs
      // a neighbour that has held what this node asked for is not closed while younger
      // ones, not yet judged, may turn out less useful
      const young = node.getConnections().some((c) => c.timeline.open >= openedBefore)
      const closing: Promise<void>[] = []
      while (node.getPeers().length - closed.size > maxNeighbours) {
        const victim = leastUseful(node, closed, openedBefore)
        if (victim === undefined || (young && useful.has(victim.toString()))) break
        closed.add(victim.toString())
        closing.push(node.hangUp(victim).catch(() => {}))
      }
      if (closed.size > 0) logger?.debug({ closed: closed.size }, 'mesh neighbours trimmed')
      await Promise.all(closing)
    } finally {
      trimming = false
    }
    // still over the high watermark (neighbours busy or young): try again later
    if (retryTrim === undefined && node.getPeers().length > highWatermark) {
      retryTrim = setTimeout(
        () => {
          retryTrim = undefined
          void trim(node)
        },
        Math.max(100, Math.min(neighbourGraceMs, 5_000)),
      )
      retryTrim.unref()
    }
  }

  /**
   * Dials `peers` while the node has room for neighbours; `extra` more for peers named as
   * holders of content being fetched now (never past twice the neighbour limit, the
   * connection manager's ceiling); with `makeRoom`, an idle neighbour is closed for each
   * peer that finds no room, so the count stays within the limit.
   */
  const addPeers = async (peers: MeshPeerInfo[], options: AddPeersOptions = {}) => {
    const node = running()
    const connected = new Set(node.getPeers().map(String))
    const limit = Math.min(maxNeighbours + (options.extra ?? 0), maxNeighbours * 2)
    const keep = new Set(peers.map((p) => p.peerId))
    const dials: Promise<void>[] = []
    for (const peer of peers) {
      if (peer.peerId === selfId || isBanned(peer.peerId)) continue
      const previous = known.get(peer.peerId)
      known.delete(peer.peerId)
      known.set(peer.peerId, { ...previous, ...peer })
      // bounded: the oldest entries go first (Map keeps insertion order)
      if (known.size > MAX_KNOWN_PEERS) known.delete(known.keys().next().value!)
      if (connected.has(peer.peerId)) continue
      let room: Promise<void> = Promise.resolve()
      if (connected.size + dials.length >= limit) {
        const victim = options.makeRoom === true ? leastUseful(node, keep) : undefined
        if (victim === undefined) break
        keep.add(victim.toString())
        connected.delete(victim.toString())
        logger?.debug({ peer: victim.toString(), for: peer.peerId }, 'mesh neighbour closed to make room')
        room = node.hangUp(victim).catch(() => {})
      }
      const addrs = peer.multiaddrs.flatMap((a) => {
        try {
          const m = multiaddr(a)
          // a circuit address names the relay's /p2p/ first: only a trailing one is the peer's
          return [a.endsWith(`/p2p/${peer.peerId}`) ? m : m.encapsulate(`/p2p/${peer.peerId}`)]
        } catch {
          return []
        }
      })
      if (addrs.length === 0) continue
      const signal = AbortSignal.any([
        AbortSignal.timeout(dialTimeoutMs),
        ...(options.signal ? [options.signal] : []),
      ])
      dials.push(
        room
          .then(() => node.dial(addrs, { signal }))
          .then(
            (connection) => options.onConnected?.(connection.remotePeer),
            (err: unknown) =>
              logger?.debug({ peer: peer.peerId, err: (err as Error).message }, 'mesh dial failed'),
          ),
      )
    }
    await Promise.all(dials)
  }

  /**
   * A stream to a neighbour on the connection it already has, a direct one when there
   * is one, else the relayed one: `dialProtocol` would first try to dial a direct
   * connection to a peer reached through a relay, which behind NAT waits for a timeout.
   */
  const openStream = async (peer: PeerId, protocol: string, signal: AbortSignal) => {
    const node = running()
    const connections = node.getConnections(peer).filter((c) => c.status === 'open')
    const connection = connections.find((c) => c.limits === undefined) ?? connections[0]
    if (connection !== undefined)
      return connection.newStream(protocol, { signal, runOnLimitedConnection: true })
    return node.dialProtocol(peer, protocol, { signal, runOnLimitedConnection: true })
  }

  /** Asks neighbours (then discovered peers) whether they hold `cid`; the first yes wins. */
  const findHolder = async (
    cid: Cid,
    options: { signal?: AbortSignal } = {},
  ): Promise<PeerId | undefined> => {
    running()
    /** Peers asked for this CID. */
    const asked = new Set<string>()
    const askOne = async (peer: PeerId, signal: AbortSignal): Promise<PeerId> => {
      asked.add(peer.toString())
      const stream = await openStream(peer, HAVE_PROTOCOL, signal)
      const [has] = await askHave(stream, [cid], { signal })
      if (has !== true) throw new Error('does not have it')
      markUseful(peer.toString())
      return peer
    }
    const deadline = (ms: number) => {
      const controller = new AbortController()
      const signal = AbortSignal.any([
        controller.signal,
        AbortSignal.timeout(ms),
        ...(options.signal ? [options.signal] : []),
      ])
      return { signal, done: () => controller.abort() }
    }
    const ask = async (candidates: PeerId[]): Promise<PeerId | undefined> => {
      if (candidates.length === 0) return undefined
      const { signal, done } = deadline(haveTimeoutMs)
      try {
        // a random few each time, so every neighbour gets asked over time
        return await Promise.any(
          shuffled(candidates)
            .slice(0, HAVE_FAN_OUT)
            .map((peer) => askOne(peer, signal)),
        )
      } catch {
        return undefined
      } finally {
        done()
      }
    }
    const first = await ask(neighbours())
    if (first !== undefined || components.discover === undefined) return first
    let discovered: MeshPeerInfo[]
    try {
      discovered = await components.discover(cid, options)
    } catch (err) {
      logger?.debug({ cid: cid.text, err: (err as Error).message }, 'mesh discovery failed')
      return undefined
    }
    // the tracker's holders of this CID are dialled even when the node's neighbours are
    // full (up to the fan-out past the limit, then in place of idle neighbours that held
    // nothing asked of them lately): otherwise a well-connected node would go to the
    // origin for what a peer holds. Each is asked as soon as its connection is up (one
    // already connected but not asked above, at once): the nearest holder answers first,
    // and the node does not wait for the slowest dial.
    const { signal, done } = deadline(dialTimeoutMs + haveTimeoutMs)
    try {
      return await new Promise<PeerId | undefined>((resolve) => {
        let pending = 0
        let dialling = true
        const settle = () => {
          if (!dialling && pending === 0) resolve(undefined)
        }
        const start = (peer: PeerId) => {
          if (asked.has(peer.toString()) || isBanned(peer.toString())) return
          pending++
          askOne(peer, signal).then(resolve, () => {
            pending--
            settle()
          })
        }
        const connected = new Map(neighbours().map((p) => [p.toString(), p]))
        for (const peer of discovered) {
          const id = connected.get(peer.peerId)
          if (id !== undefined) start(id)
        }
        addPeers(discovered, { ...options, extra: HAVE_FAN_OUT, makeRoom: true, onConnected: start })
          .catch(() => {})
          .finally(() => {
            dialling = false
            settle()
          })
      })
    } finally {
      done()
    }
  }

  /** Disconnects and bans a peer that sent bad bytes (with evidence) or malformed messages. */
  const punish = (peer: PeerId, cid: Cid, evidence?: MeshIntegrityEvidence): void => {
    const id = peer.toString()
    bans.set(id, Date.now() + banMs)
    logger?.warn(
      { peer: id, cid: cid.text, chunk: evidence?.chunk },
      evidence === undefined
        ? 'mesh peer sent malformed messages: disconnected'
        : 'mesh peer sent bad bytes: disconnected',
    )
    void libp2p?.hangUp(peer).catch(() => {})
    const info = known.get(id) ?? { peerId: id, multiaddrs: [] }
    if (components.report === undefined || evidence === undefined) return
    if (info.node === undefined) {
      logger?.info({ peer: id }, 'cannot report a mesh peer whose node address is unknown')
      return
    }
    components
      .report(info, evidence, { signal: AbortSignal.timeout(requestTimeoutMs) })
      .catch((err: unknown) => logger?.info({ peer: id, err: (err as Error).message }, 'mesh report failed'))
  }

  /** Streams the object's verified chunks from `peer`, in requests of at most `maxChunksPerRequest`. */
  async function* pull(cid: Cid, peer: PeerId, leaves: Uint8Array | undefined, signal?: AbortSignal) {
    running()
    const count = chunkCount(cid)
    let verified = leaves
    try {
      for (let from = 0; from < count; from += MESH_LIMITS.maxChunksPerRequest) {
        const to = Math.min(count, from + MESH_LIMITS.maxChunksPerRequest)
        const stream = await openStream(
          peer,
          CHUNK_PROTOCOL,
          AbortSignal.any([AbortSignal.timeout(requestTimeoutMs), ...(signal ? [signal] : [])]),
        )
        for await (const chunk of requestChunks(stream, cid, from, to, {
          ...(verified === undefined ? {} : { leaves: verified }),
          onLeaves: (l) => {
            verified = l
          },
          ...(signal ? { signal } : {}),
          stallTimeoutMs: requestTimeoutMs,
        })) {
          components.onBytes?.('in', chunk.bytes.byteLength)
          for (const part of chunk.bytes) yield part
        }
      }
    } catch (err) {
      if (isMisbehaviour(err)) punish(peer, cid, (err as { evidence?: MeshIntegrityEvidence }).evidence)
      throw err
    }
  }

  const remember = (cid: Cid, peer: PeerId, leaves?: Uint8Array) => {
    const now = Date.now()
    for (const [key, value] of recent) if (now - value.at > requestTimeoutMs) recent.delete(key)
    recent.set(cid.text, { peer, ...(leaves ? { leaves } : {}), at: now })
  }

  const source: ContentSource = {
    kind: 'mesh',
    name: 'mesh',
    async leaves(cid, { signal }) {
      if (libp2p === undefined) return undefined
      const peer = await findHolder(cid, signal ? { signal } : {})
      if (peer === undefined) return undefined
      let leaves: Uint8Array | undefined
      try {
        const stream = await openStream(
          peer,
          CHUNK_PROTOCOL,
          AbortSignal.any([AbortSignal.timeout(requestTimeoutMs), ...(signal ? [signal] : [])]),
        )
        for await (const _ of requestChunks(stream, cid, 0, 0, {
          onLeaves: (l) => {
            leaves = l
          },
          ...(signal ? { signal } : {}),
          stallTimeoutMs: requestTimeoutMs,
        }));
      } catch (err) {
        if (isMisbehaviour(err)) punish(peer, cid)
        logger?.debug({ cid: cid.text, err: (err as Error).message }, 'mesh leaves request failed')
        return undefined
      }
      remember(cid, peer, leaves)
      return leaves
    },
    async body(cid, { signal }) {
      if (libp2p === undefined) return undefined
      const hint = recent.get(cid.text)
      recent.delete(cid.text)
      const peer =
        hint !== undefined && !isBanned(hint.peer.toString())
          ? hint.peer
          : await findHolder(cid, signal ? { signal } : {})
      if (peer === undefined) return undefined
      return pull(cid, peer, hint?.leaves, signal)
    },
  }

  return {
    get peerId() {
      return selfId
    },
    get libp2p() {
      return libp2p
    },
    multiaddrs: () => (libp2p === undefined ? [] : libp2p.getMultiaddrs().map(String)),
    recordMultiaddrs: () => {
      if (libp2p === undefined) return []
      const own = `/p2p/${selfId}`
      const addrs = libp2p
        .getMultiaddrs()
        .map(String)
        .map((m) => (m.endsWith(own) ? m.slice(0, -own.length) : m))
        .filter((m) => m.length <= RECORD_LIMITS.multiaddr)
      const relayed = addrs.filter((m) => m.includes('/p2p-circuit'))
      return [...relayed, ...addrs.filter((m) => !m.includes('/p2p-circuit'))].slice(
        0,
        RECORD_LIMITS.multiaddrs,
      )
    },
    reachability: () => {
      if (libp2p === undefined) return 'unknown'
      const addrs = libp2p.getMultiaddrs()
      if (addrs.some((m) => String(m).includes('/p2p-circuit'))) return 'relayed'
      if ((init.announce ?? []).length > 0) return 'public'
      const hosts = addrs.flatMap((m) =>
        m
          .getComponents()
          .filter((c) => c.name === 'ip4' || c.name === 'ip6')
          .map((c) => c.value ?? ''),
      )
      return hosts.some((h) => isPublicIp(h)) ? 'public' : 'private'
    },
    neighbours: () => neighbours().map(String),
    banned: () => [...bans.keys()].filter(isBanned),
    addPeers,
    findHolder,
    source,

    async start() {
      if (libp2p !== undefined) return
      const privateKey =
        components.privateKey ??
        (init.keyDir === undefined ? undefined : await loadOrCreateMeshKey(init.keyDir))
      const node = await createMeshTransport({
        ...(privateKey === undefined ? {} : { privateKey }),
        listen: init.listen,
        ...(init.announce === undefined ? {} : { announce: init.announce }),
        maxConnections: maxNeighbours * 2,
        isDenied: (peer) => isBanned(peer.toString()),
        ...(init.nat === undefined ? {} : { nat: init.nat }),
      })
      libp2p = node
      selfId = node.peerId.toString()
      node.addEventListener('connection:open', () => void trim(node))
      const served = {
        holdings,
        ...(components.egress ? { egress: components.egress } : {}),
        ...(logger ? { logger } : {}),
        onServed: (_kind: 'have' | 'chunk', bytes: number) => components.onBytes?.('out', bytes),
        ...(sessions === undefined
          ? {}
          : { meter: (session: string, n: number) => sessions.meter(session, n) }),
      }
      await node.handle(HAVE_PROTOCOL, haveHandler({ requestTimeoutMs }, served), HANDLER_OPTIONS)
      await node.handle(CHUNK_PROTOCOL, chunkHandler({ requestTimeoutMs }, served), HANDLER_OPTIONS)
      if (sessions !== undefined) {
        const handler = receiptHandler({ requestTimeoutMs }, { sessions, ...(logger ? { logger } : {}) })
        await node.handle(RECEIPT_PROTOCOL, handler, HANDLER_OPTIONS)
      }
      logger?.info({ peerId: selfId, multiaddrs: node.getMultiaddrs().map(String) }, 'mesh listening')
      if (init.bootstrap !== undefined && init.bootstrap.length > 0) await addPeers(init.bootstrap)
      // and from the tracker: its selection for a random CID is a random sample of live
      // nodes (placement hashes the CID), so the node has neighbours before its first miss
      if (components.discover !== undefined) {
        const discover = components.discover
        const random = formatCid({
          chunkSize: DEFAULT_CHUNK_SIZE,
          size: 1,
          root: crypto.getRandomValues(new Uint8Array(32)),
        })
        void discover(random, { signal: AbortSignal.timeout(requestTimeoutMs) })
          .then((peers) => (libp2p === node ? addPeers(peers) : undefined))
          .catch((err: unknown) =>
            logger?.debug({ err: (err as Error).message }, 'mesh bootstrap from the tracker failed'),
          )
      }
    },

    async stop() {
      const node = libp2p
      libp2p = undefined
      clearTimeout(retryTrim)
      retryTrim = undefined
      await node?.stop()
    },
  }
}

/** Parses a peer id, for callers that hold one as text. */
export const parsePeerId = (text: string): PeerId => peerIdFromString(text)
