/**
 * How a started node presents itself to its tracker: its peer identity, the record it
 * signs, and the announcer that keeps it registered.
 */
import type { Logger } from 'pino'
import type { LocalAccount } from 'viem/accounts'
import type { AnnounceOptions } from '../cli/args.ts'
import type { EdgeNode } from '../node.ts'
import { type Announcer, createAnnouncer } from './announcer.ts'
import { loadOrCreatePeerIdentity } from './peer-identity.ts'

export { type Announcer, type AnnouncerInit, createAnnouncer, type NodeFigures } from './announcer.ts'
export { loadOrCreatePeerIdentity, type PeerIdentity, peerIdOf } from './peer-identity.ts'

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
  const { peerId } = await loadOrCreatePeerIdentity(node.options.dataDir)
  const announcer = createAnnouncer(
    {
      trackerUrl,
      record: {
        peerId,
        multiaddrs: components.multiaddrs ?? [],
        httpUrl: announce.publicUrl ?? `${node.url}/`,
        region: announce.region,
        capacity: announce.capacity,
        payout: announce.payout ?? account.address,
      },
      ...(components.heartbeatIntervalMs === undefined
        ? {}
        : { heartbeatIntervalMs: components.heartbeatIntervalMs }),
    },
    { account, figures: () => node.figures(), logger: components.logger },
  )
  announcer.start()
  return announcer
}
