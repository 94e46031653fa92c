/**
 * The mesh's options as the node takes them (`EdgeNodeOptions.mesh`), with defaults.
 */
import { InvalidArgumentError } from '@shoal/protocol'
import type { MeshInit, MeshPeerInfo } from './mesh.ts'

/** The mesh port's distance from the HTTP port by default. */
export const MESH_PORT_OFFSET = 100

export interface MeshOptions {
  /**
   * TCP port for libp2p; default: 0 when the HTTP port is 0, else the HTTP port + 100
   * (7580 beside 7480: nodes on consecutive HTTP ports do not collide).
   */
  port?: number
  /** Listen multiaddrs instead of `/ip4/<host>/tcp/<port>`. */
  listen?: string[]
  /** Offer circuit relay v2 to nodes behind NAT (nodes with a public address). */
  relayServer?: boolean
  /** Relays to hold a reservation on, multiaddrs ending in `/p2p/<peer id>`. */
  relays?: string[]
  /** AutoNAT: learn from peers whether this node's addresses are reachable (default on). */
  autonat?: boolean
  /** UPnP port mapping on the home router (default off: it talks to the LAN's router). */
  upnp?: boolean
  /** Multiaddrs announced to peers instead of the listening ones. */
  announce?: string[]
  /** Peers dialled at start (`{peerId, multiaddrs}`). */
  bootstrap?: MeshPeerInfo[]
  maxNeighbours?: number
  /**
   * The node's region (as it registers with the tracker): discovery asks the tracker for
   * nodes in it, so neighbours and the holders dialled on a miss are regional.
   */
  region?: string
  haveTimeoutMs?: number
  requestTimeoutMs?: number
}

/** The mesh init for a node listening on `host:httpPort`. */
export function resolveMeshInit(options: MeshOptions, host: string, httpPort: number): MeshInit {
  if (typeof options !== 'object' || options === null)
    throw new InvalidArgumentError('mesh must be an object or false')
  const port = options.port ?? (httpPort === 0 ? 0 : httpPort + MESH_PORT_OFFSET)
  if (!Number.isSafeInteger(port) || port < 0 || port > 65535)
    throw new InvalidArgumentError(`mesh port must be 0..65535, got ${port}`)
  const family = host.includes(':') ? 'ip6' : 'ip4'
  const listenHost = host === 'localhost' ? '127.0.0.1' : host
  for (const peer of options.bootstrap ?? []) {
    if (typeof peer?.peerId !== 'string' || !Array.isArray(peer.multiaddrs))
      throw new InvalidArgumentError('each mesh bootstrap peer needs a peerId and multiaddrs')
  }
  if (options.region !== undefined && !/^[a-z0-9][a-z0-9-]{0,31}$/.test(String(options.region)))
    throw new InvalidArgumentError(
      `mesh region "${String(options.region)}" must be lowercase letters, digits and dashes`,
    )
  for (const relay of options.relays ?? []) {
    if (typeof relay !== 'string' || !/\/p2p\/[^/]+$/.test(relay))
      throw new InvalidArgumentError(`mesh relay "${String(relay)}" must end in /p2p/<peer id>`)
  }
  return {
    listen: options.listen ?? [`/${family}/${listenHost}/tcp/${port}`],
    nat: {
      ...(options.relayServer === true ? { relayServer: {} } : {}),
      ...(options.relays === undefined ? {} : { relays: options.relays }),
      autonat: options.autonat ?? true,
      upnp: options.upnp ?? false,
    },
    ...(options.announce === undefined ? {} : { announce: options.announce }),
    ...(options.bootstrap === undefined ? {} : { bootstrap: options.bootstrap }),
    ...(options.maxNeighbours === undefined ? {} : { maxNeighbours: options.maxNeighbours }),
    ...(options.haveTimeoutMs === undefined ? {} : { haveTimeoutMs: options.haveTimeoutMs }),
    ...(options.requestTimeoutMs === undefined ? {} : { requestTimeoutMs: options.requestTimeoutMs }),
  }
}
