/**
 * The one libp2p stack of the mesh, used by edge nodes and by the SDK's Node mesh
 * client: TCP, Noise, Yamux, identify and ping, and circuit relay, AutoNAT, UPnP and
 * DCUtR for nodes behind NAT. Yamux is tuned for bulk chunk transfer (see docs/mesh.md,
 * "Throughput"): a 16 MiB stream window from the start, so a sender never waits for
 * the window to grow, and what one `send` hands over becomes one Yamux frame (up to the
 * window), which Noise cuts into full 64 KiB messages. The TCP sockets buffer up to
 * `MESH_SOCKET_HIGH_WATER_MARK_BYTES` before a write reports backpressure, so a sender
 * encrypts ahead while the kernel drains and the receiver never waits on the sender's
 * next wake-up (Node's default of 16 KiB stops it after every write).
 */
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { autoNAT } from '@libp2p/autonat'
import { circuitRelayServer, circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { dcutr } from '@libp2p/dcutr'
import { identify } from '@libp2p/identify'
import type { ConnectionGater, PeerId, PrivateKey } from '@libp2p/interface'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { uPnPNAT } from '@libp2p/upnp-nat'
import { InvalidArgumentError } from '@shoal/protocol'
import { createLibp2p, type Libp2p } from 'libp2p'

/** Yamux stream window: the most bytes a sender may have in flight on one stream. */
export const MESH_STREAM_WINDOW_BYTES = 16 * 2 ** 20
/**
 * Bytes a mesh TCP socket buffers in user space before `write` reports backpressure
 * (Node's default is 16 KiB): what a sender may have encrypted ahead of the kernel.
 */
export const MESH_SOCKET_HIGH_WATER_MARK_BYTES = 2 * 2 ** 20
export const DEFAULT_MESH_MAX_CONNECTIONS = 64
/** What a relay lets one relayed connection carry before closing it. */
export const DEFAULT_RELAY_DATA_LIMIT_BYTES = 256 * 2 ** 20
export const DEFAULT_RELAY_DURATION_LIMIT_MS = 10 * 60_000
export const DEFAULT_RELAY_MAX_RESERVATIONS = 32

/** Reachability for nodes behind NAT (docs/mesh.md, "Nodes behind NAT"). */
export interface MeshNatInit {
  /** Relay for unreachable nodes (circuit relay v2 hop); for nodes with a public address. */
  relayServer?: { maxReservations?: number; dataLimitBytes?: number; durationLimitMs?: number }
  /** Relays to hold a reservation on (multiaddrs ending in `/p2p/<id>`): the node is then reachable at `<relay>/p2p-circuit`. */
  relays?: string[]
  /** Ask peers to dial back (AutoNAT) to learn whether the node's addresses are public. */
  autonat?: boolean
  /** Map the listening port on the home router (UPnP IGD), where the router allows it. */
  upnp?: boolean
  /** Upgrade relayed connections to direct ones by hole punching (DCUtR); default on. */
  dcutr?: boolean
}

export interface MeshTransportInit {
  /** The peer's identity (Ed25519); a fresh one when absent (clients). */
  privateKey?: PrivateKey
  /** Addresses to listen on, e.g. `/ip4/127.0.0.1/tcp/0`; none for a dial-only client. */
  listen?: string[]
  /** Addresses announced to peers instead of the listening ones. */
  announce?: string[]
  maxConnections?: number
  /** Refuses peers (e.g. ones that sent bad bytes). */
  isDenied?: (peer: PeerId) => boolean
  nat?: MeshNatInit
}

/**
 * @example
 * const libp2p = await createMeshTransport({ listen: ['/ip4/127.0.0.1/tcp/0'] })
 */
export async function createMeshTransport(init: MeshTransportInit = {}): Promise<Libp2p> {
  const maxConnections = init.maxConnections ?? DEFAULT_MESH_MAX_CONNECTIONS
  if (!Number.isSafeInteger(maxConnections) || maxConnections < 1)
    throw new InvalidArgumentError('mesh maxConnections must be a positive integer')
  const denied = init.isDenied
  const connectionGater: ConnectionGater = {
    // loopback and private addresses are the test and LAN case: allowed
    denyDialMultiaddr: () => false,
    ...(denied === undefined
      ? {}
      : {
          denyDialPeer: (peer: PeerId) => denied(peer),
          denyInboundEncryptedConnection: (peer: PeerId) => denied(peer),
          denyOutboundEncryptedConnection: (peer: PeerId) => denied(peer),
        }),
  }
  // spread into net.connect / net.createServer options (TCPSocketOptions types only a subset)
  const socketOptions = { noDelay: true, highWaterMark: MESH_SOCKET_HIGH_WATER_MARK_BYTES }
  const nat = init.nat ?? {}
  const relay = nat.relayServer
  // biome-ignore lint/suspicious/noExplicitAny: libp2p types each service factory by its own components
  const services: Record<string, (components: any) => unknown> = {
    identify: identify(),
    ping: ping(),
    ...(nat.autonat === true ? { autonat: autoNAT() } : {}),
    ...(nat.upnp === true ? { upnp: uPnPNAT() } : {}),
    ...(nat.dcutr === false ? {} : { dcutr: dcutr() }),
    ...(relay === undefined
      ? {}
      : {
          relay: circuitRelayServer({
            reservations: {
              maxReservations: relay.maxReservations ?? DEFAULT_RELAY_MAX_RESERVATIONS,
              defaultDataLimit: BigInt(relay.dataLimitBytes ?? DEFAULT_RELAY_DATA_LIMIT_BYTES),
              defaultDurationLimit: relay.durationLimitMs ?? DEFAULT_RELAY_DURATION_LIMIT_MS,
            },
          }),
        }),
  }
  return createLibp2p({
    ...(init.privateKey === undefined ? {} : { privateKey: init.privateKey }),
    addresses: {
      listen: [...(init.listen ?? []), ...(nat.relays ?? []).map((r) => `${r}/p2p-circuit`)],
      ...(init.announce === undefined ? {} : { announce: init.announce }),
    },
    // every peer can dial through a relay; only nodes with `relays` listen on one
    transports: [tcp({ dialOpts: socketOptions, listenOpts: socketOptions }), circuitRelayTransport()],
    connectionEncrypters: [noise()],
    streamMuxers: [
      yamux({
        streamOptions: {
          initialStreamWindowSize: MESH_STREAM_WINDOW_BYTES,
          maxStreamWindowSize: MESH_STREAM_WINDOW_BYTES,
        },
      }),
    ],
    connectionGater,
    connectionManager: { maxConnections },
    services,
  })
}
