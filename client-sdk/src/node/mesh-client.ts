/**
 * The SDK's mesh client for Node: joins the mesh as a dial-only libp2p peer and
 * fetches content over `/shoal/chunk/1.0.0`, so it reaches nodes that have no public
 * HTTP address. Every chunk is checked against the CID's leaves before it is yielded.
 */
import type { Connection, Libp2p, PrivateKey, Stream } from '@libp2p/interface'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import {
  AbortError,
  type Cid,
  InvalidArgumentError,
  InvalidCidError,
  isCidText,
  parseCid,
  UnavailableError,
} from '@shoal/protocol'
import type { SessionRequest } from '../receipts/payments.ts'
import {
  askHave,
  CHUNK_PROTOCOL,
  HAVE_PROTOCOL,
  MESH_LIMITS,
  MeshIntegrityError,
  MeshPeerError,
  requestChunks,
} from './mesh-protocol.ts'
import { openMeshSession, RECEIPT_PROTOCOL, sendMeshReceipt } from './mesh-receipts.ts'
import { createMeshTransport } from './mesh-transport.ts'

export const DEFAULT_MESH_CLIENT_TIMEOUT_MS = 10_000
/**
 * How long a chunk stream opened ahead for a node's next request waits for one before
 * it is dropped: well under a node's own wait for a request (10 s by default).
 */
export const MESH_SPARE_STREAM_MAX_AGE_MS = 1000

/** A node to fetch from: its peer id and where to dial it. */
export interface MeshNode {
  peerId: string
  multiaddrs: string[]
}

export interface MeshClientInit {
  /** Per-request timeout (dial, first answer) in milliseconds. */
  timeoutMs?: number
  /** The client's libp2p identity; a fresh one each start when absent. */
  privateKey?: PrivateKey
}

export interface MeshFetchOptions {
  signal?: AbortSignal
  /** The CID's verified leaves, when the caller has them (saves one frame). */
  leaves?: Uint8Array
  /** The payment session (opened with `openSession`) the node meters these bytes for. */
  session?: string
}

export interface MeshClient {
  start(): Promise<void>
  stop(): Promise<void>
  /** Whether `node` holds `cid` (`/shoal/have/1.0.0`). */
  has(node: MeshNode, cid: string | Cid, options?: { signal?: AbortSignal }): Promise<boolean>
  /** The CID's leaves (32 bytes per chunk), verified against the CID. */
  leaves(
    node: MeshNode,
    cid: string | Cid,
    options?: { signal?: AbortSignal; session?: string },
  ): Promise<Uint8Array>
  /**
   * Opens a payment session with the node (`/shoal/receipt/1.0.0`); resolves with the
   * node's address. A refusal throws the node's error code.
   */
  openSession(
    node: MeshNode,
    request: SessionRequest,
    options?: { signal?: AbortSignal },
  ): Promise<{ session: string; node: string }>
  /** Sends a signed receipt (`encodeBandwidthReceipt`); resolves once the node stored it. */
  sendReceipt(
    node: MeshNode,
    encoded: string,
    options?: { signal?: AbortSignal },
  ): Promise<{ session: string; bytes: number }>
  /**
   * Bytes `[start, end)` of the object, verified chunk by chunk (the chunks covering the
   * span are fetched and checked; only the span is yielded).
   */
  range(
    node: MeshNode,
    cid: string | Cid,
    start: number,
    end: number,
    options?: MeshFetchOptions,
  ): AsyncGenerator<Uint8Array, void, undefined>
  /** The object's verified bytes, streamed chunk by chunk (the chunks' parts, uncopied). */
  stream(
    node: MeshNode,
    cid: string | Cid,
    options?: MeshFetchOptions,
  ): AsyncGenerator<Uint8Array, void, undefined>
  /** The whole object, verified. */
  fetch(node: MeshNode, cid: string | Cid, options?: MeshFetchOptions): Promise<Uint8Array>
}

const toCid = (cid: string | Cid): Cid => {
  if (typeof cid !== 'string') return cid
  if (!isCidText(cid)) throw new InvalidCidError(`"${String(cid).slice(0, 80)}" is not a CID`)
  return parseCid(cid)
}

/**
 * @example
 * const mesh = createMeshClient()
 * await mesh.start()
 * const bytes = await mesh.fetch({ peerId, multiaddrs }, cid)
 * await mesh.stop()
 */
export function createMeshClient(init: MeshClientInit = {}): MeshClient {
  const timeoutMs = init.timeoutMs ?? DEFAULT_MESH_CLIENT_TIMEOUT_MS
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1)
    throw new InvalidArgumentError('mesh client timeoutMs must be a positive integer')
  let libp2p: Libp2p | undefined

  const running = (): Libp2p => {
    if (libp2p === undefined) throw new InvalidArgumentError('start the mesh client first')
    return libp2p
  }
  const signalOf = (signal?: AbortSignal) =>
    AbortSignal.any([AbortSignal.timeout(timeoutMs), ...(signal ? [signal] : [])])

  /**
   * Per node, one `/shoal/chunk/1.0.0` stream opened (protocol negotiated) while the
   * previous request was running, so the next request skips that round trip.
   */
  const spares = new Map<
    string,
    { stream: Stream; p2p: Libp2p; connection: Connection; timer: ReturnType<typeof setTimeout> }
  >()
  const opening = new Set<string>()
  const dropSpares = () => {
    for (const { stream, timer } of spares.values()) {
      clearTimeout(timer)
      stream.abort(new AbortError('the mesh client stopped'))
    }
    spares.clear()
  }
  const takeSpare = (peerId: string): Stream | undefined => {
    const spare = spares.get(peerId)
    if (spare === undefined) return undefined
    spares.delete(peerId)
    clearTimeout(spare.timer)
    const { stream } = spare
    // the node may have given up on it
    if (
      stream.status !== 'open' ||
      stream.writeStatus !== 'writable' ||
      stream.remoteWriteStatus !== 'writable'
    ) {
      stream.abort(new AbortError('a stale spare stream'))
      return undefined
    }
    // and the request after this one gets its own
    openSpare(spare.p2p, spare.connection, peerId)
    return stream
  }
  const openSpare = (p2p: Libp2p, connection: Connection, peerId: string) => {
    if (spares.has(peerId) || opening.has(peerId)) return
    opening.add(peerId)
    connection
      .newStream(CHUNK_PROTOCOL, { signal: signalOf(), runOnLimitedConnection: true })
      .then(
        (stream) => {
          if (libp2p !== p2p || spares.has(peerId)) {
            stream.abort(new AbortError('no spare stream needed'))
            return
          }
          const timer = setTimeout(() => {
            if (spares.get(peerId)?.stream !== stream) return
            spares.delete(peerId)
            stream.abort(new AbortError('the spare stream was not used'))
          }, MESH_SPARE_STREAM_MAX_AGE_MS)
          timer.unref?.()
          spares.set(peerId, { stream, p2p, connection, timer })
        },
        () => {
          // no spare: the next request opens its own stream
        },
      )
      .finally(() => opening.delete(peerId))
  }

  /**
   * The connection to use: an open one to the peer (a direct one first, else a relayed
   * one), else a dial of its relay addresses first and then its own. Asking libp2p for
   * all at once tries the direct ones first, and behind NAT those hang until a timeout;
   * once relayed, DCUtR moves the connection to a direct one where it can.
   */
  const connect = async (p2p: Libp2p, peerId: string, addrs: Multiaddr[], signal?: AbortSignal) => {
    const open = p2p.getConnections().filter((c) => c.status === 'open' && c.remotePeer.toString() === peerId)
    const existing = open.find((c) => c.limits === undefined) ?? open[0]
    if (existing !== undefined) return existing
    const relayed = addrs.filter((m) => m.toString().includes('/p2p-circuit'))
    const direct = addrs.filter((m) => !m.toString().includes('/p2p-circuit'))
    if (relayed.length === 0 || direct.length === 0) return p2p.dial(addrs, { signal: signalOf(signal) })
    try {
      return await p2p.dial(relayed, { signal: signalOf(signal) })
    } catch (err) {
      if (signal?.aborted === true) throw err
      return p2p.dial(direct, { signal: signalOf(signal) })
    }
  }

  const dial = async (node: MeshNode, protocol: string, signal?: AbortSignal) => {
    const addrs = node.multiaddrs.map((a) => {
      try {
        const m = multiaddr(a)
        // a circuit address names the relay's /p2p/ first: only a trailing one is the node's
        return a.endsWith(`/p2p/${node.peerId}`) ? m : m.encapsulate(`/p2p/${node.peerId}`)
      } catch (cause) {
        throw new InvalidArgumentError(`"${a}" is not a multiaddr`, { cause })
      }
    })
    if (addrs.length === 0) throw new InvalidArgumentError('the node has no multiaddrs')
    const p2p = running()
    try {
      const connection = await connect(p2p, node.peerId, addrs, signal)
      return {
        p2p,
        connection,
        stream: await connection.newStream(protocol, {
          signal: signalOf(signal),
          runOnLimitedConnection: true,
        }),
      }
    } catch (err) {
      if (signal?.aborted === true) throw new AbortError('the operation was aborted', { cause: err })
      throw new UnavailableError(`mesh node ${node.peerId} cannot be reached`, { cause: err })
    }
  }

  async function* range(
    node: MeshNode,
    cidInput: string | Cid,
    start: number,
    end: number,
    options: MeshFetchOptions = {},
  ) {
    const cid = toCid(cidInput)
    if (
      !Number.isSafeInteger(start) ||
      !Number.isSafeInteger(end) ||
      start < 0 ||
      end > cid.size ||
      start > end
    )
      throw new InvalidArgumentError(`[${start}, ${end}) is not a span of ${cid.text}`)
    if (start === end) return
    let leaves = options.leaves
    const first = Math.floor(start / cid.chunkSize)
    const last = Math.ceil(end / cid.chunkSize)
    for (let from = first; from < last; from += MESH_LIMITS.maxChunksPerRequest) {
      const to = Math.min(last, from + MESH_LIMITS.maxChunksPerRequest)
      let spare = takeSpare(node.peerId)
      while (true) {
        let s = spare
        if (s === undefined) {
          const dialed = await dial(node, CHUNK_PROTOCOL, options.signal)
          s = dialed.stream
          // the next request's stream, negotiated while this one runs
          openSpare(dialed.p2p, dialed.connection, node.peerId)
        }
        let yielded = false
        try {
          for await (const chunk of requestChunks(s, cid, from, to, {
            ...(leaves === undefined ? {} : { leaves }),
            onLeaves: (l) => {
              leaves = l
            },
            ...(options.signal ? { signal: options.signal } : {}),
            ...(options.session === undefined ? {} : { session: options.session }),
            stallTimeoutMs: timeoutMs,
          })) {
            yielded = true
            // the chunk's offset in the object; only the parts inside [start, end) are yielded
            let at = chunk.index * cid.chunkSize
            for (const part of chunk.bytes) {
              const lo = Math.max(start - at, 0)
              const hi = Math.min(end - at, part.length)
              if (hi > lo) yield lo === 0 && hi === part.length ? part : part.subarray(lo, hi)
              at += part.length
            }
          }
          break
        } catch (err) {
          // a spare the node dropped before our request reached it: once more on a fresh
          // stream; bad bytes and a node's refusal are never retried
          if (
            spare === undefined ||
            yielded ||
            options.signal?.aborted === true ||
            err instanceof MeshIntegrityError ||
            // a node that timed out waiting for the request on the spare answers so
            (err instanceof MeshPeerError && err.code !== 'SHOAL_ERR_TIMEOUT')
          )
            throw err
          spare = undefined
        }
      }
    }
  }

  const stream = (node: MeshNode, cidInput: string | Cid, options: MeshFetchOptions = {}) => {
    const cid = toCid(cidInput)
    return range(node, cid, 0, cid.size, options)
  }

  return {
    async start() {
      if (libp2p !== undefined) return
      libp2p = await createMeshTransport({
        ...(init.privateKey === undefined ? {} : { privateKey: init.privateKey }),
        listen: [],
      })
    },
    async stop() {
      const p2p = libp2p
      libp2p = undefined
      dropSpares()
      await p2p?.stop()
    },
    async has(node, cidInput, options = {}) {
      const cid = toCid(cidInput)
      const { stream: s } = await dial(node, HAVE_PROTOCOL, options.signal)
      const [has] = await askHave(s, [cid], { signal: signalOf(options.signal) })
      return has === true
    },
    async leaves(node, cidInput, options = {}) {
      const cid = toCid(cidInput)
      let leaves: Uint8Array | undefined
      const { stream: s } = await dial(node, CHUNK_PROTOCOL, options.signal)
      for await (const _ of requestChunks(s, cid, 0, 0, {
        onLeaves: (l) => {
          leaves = l
        },
        ...(options.signal ? { signal: options.signal } : {}),
        ...(options.session === undefined ? {} : { session: options.session }),
        stallTimeoutMs: timeoutMs,
      })) {
        // no chunk is asked for
      }
      if (leaves === undefined) throw new UnavailableError(`mesh node ${node.peerId} sent no leaves`)
      return leaves
    },
    async openSession(node, request, options = {}) {
      const { stream: s } = await dial(node, RECEIPT_PROTOCOL, options.signal)
      return openMeshSession(s, request, { signal: signalOf(options.signal) })
    },
    async sendReceipt(node, encoded, options = {}) {
      const { stream: s } = await dial(node, RECEIPT_PROTOCOL, options.signal)
      return sendMeshReceipt(s, encoded, { signal: signalOf(options.signal) })
    },
    range,
    stream,
    async fetch(node, cid, options = {}) {
      const parsed = toCid(cid)
      const out = new Uint8Array(parsed.size)
      let at = 0
      for await (const part of stream(node, parsed, options)) {
        out.set(part, at)
        at += part.length
      }
      return out
    },
  }
}
