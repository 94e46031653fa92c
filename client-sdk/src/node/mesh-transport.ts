/**
 * The one libp2p stack of the mesh, used by edge nodes and by the SDK's Node mesh
 * client: TCP, Noise, Yamux, identify and ping. Yamux is tuned for bulk chunk
 * transfer (see docs/mesh.md, "Throughput"): large frames and a large stream window,
 * so a 256 KiB chunk crosses in few Noise messages and the sender rarely waits for a
 * window update.
 */
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import type { ConnectionGater, PeerId, PrivateKey } from '@libp2p/interface'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { InvalidArgumentError } from '@shoal/protocol'
import { createLibp2p, type Libp2p } from 'libp2p'

/** Yamux stream window: the most bytes a sender may have in flight on one stream. */
export const MESH_STREAM_WINDOW_BYTES = 16 * 2 ** 20
/** Largest Yamux data frame. Noise splits it into ≤ 64 KiB messages anyway. */
export const MESH_YAMUX_MAX_MESSAGE_BYTES = 256 * 1024
export const DEFAULT_MESH_MAX_CONNECTIONS = 64

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
  return createLibp2p({
    ...(init.privateKey === undefined ? {} : { privateKey: init.privateKey }),
    addresses: {
      listen: init.listen ?? [],
      ...(init.announce === undefined ? {} : { announce: init.announce }),
    },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [
      yamux({
        maxMessageSize: MESH_YAMUX_MAX_MESSAGE_BYTES,
        streamOptions: {
          initialStreamWindowSize: MESH_STREAM_WINDOW_BYTES,
          maxStreamWindowSize: MESH_STREAM_WINDOW_BYTES,
        },
      }),
    ],
    connectionGater,
    connectionManager: { maxConnections },
    services: { identify: identify(), ping: ping() },
  })
}
