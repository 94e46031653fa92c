/**
 * How a started node presents itself to its tracker: its peer identity, the record it
 * signs, and the announcer that keeps it registered.
 */
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { Logger } from 'pino'
import type { LocalAccount } from 'viem/accounts'
import type { AnnounceOptions } from '../cli/args.ts'
import { loadOrCreateMeshKey } from '../mesh/identity.ts'
import type { EdgeNode } from '../node.ts'
import { type Announcer, createAnnouncer } from './announcer.ts'

export {
  type Announcer,
  type AnnouncerInit,
  createAnnouncer,
  type MeshReachability,
  type NodeFigures,
} from './announcer.ts'

/**
 * Registers a started node with `node.options.trackerUrl` and keeps it registered.
 *
 * @example
 * await node.start()
 * const announcer = await announceNode(node, account, { region: 'eu-west', capacity: 12_500_000 }, { logger })
 * // … on shutdown: await announcer.stop()
 */
export async function announceNode(
  node: EdgeNode,
  account: LocalAccount,
  announce: AnnounceOptions,
  components: { logger: Logger; heartbeatIntervalMs?: number; multiaddrs?: string[] },
): Promise<Announcer> {
  const trackerUrl = node.options.trackerUrl
  if (trackerUrl === undefined) throw new Error('announceNode needs a node with a trackerUrl')
  // the mesh's identity (the same key file when the mesh is off), so the record names the
  // peer id the mesh listens under, and the addresses it and the relay are reached at
  const peerId =
    node.mesh?.peerId ?? peerIdFromPrivateKey(await loadOrCreateMeshKey(node.options.dataDir)).toString()
  const addresses = () => [
    ...(components.multiaddrs ?? node.mesh?.recordMultiaddrs() ?? []),
    ...(node.relay === undefined ? [] : [node.relay.multiaddr]),
  ]
  const multiaddrs = addresses()
  const mesh = node.mesh
  const announcer = createAnnouncer(
    {
      trackerUrl,
      record: {
        peerId,
        multiaddrs,
        httpUrl: announce.publicUrl ?? `${node.url}/`,
        region: announce.region,
        capacity: announce.capacity,
        payout: announce.payout ?? account.address,
      },
      ...(components.heartbeatIntervalMs === undefined
        ? {}
        : { heartbeatIntervalMs: components.heartbeatIntervalMs }),
    },
    {
      account,
      figures: () => node.figures(),
      logger: components.logger,
      // the mesh's addresses move (relay reservations): the record follows them, and each
      // heartbeat says how the mesh reaches the node (docs/tracker.md, Reachability)
      ...(mesh !== undefined && components.multiaddrs === undefined ? { multiaddrs: addresses } : {}),
      ...(mesh !== undefined ? { reachability: () => mesh.reachability() } : {}),
    },
  )
  announcer.start()
  return announcer
}
