/**
 * Peers for a CID from the tracker: its selection for the CID names the nodes the
 * placement puts it on (the ones most likely to hold it), with their peer ids and
 * multiaddrs.
 *
 * With the node's region, half the peers are the tracker's selection for a client in
 * that region (near: a round trip within the region, and the nodes that take over the
 * CID's clients there when one goes offline) and the rest its selection for anyone
 * (the nodes of the region the placement picks for the CID, which hold it when no node
 * nearby does yet). For the random CID a node bootstraps from, that makes half its
 * neighbours regional.
 */
import type { TrackerClient } from '@shoal/client-sdk'
import type { Cid } from '@shoal/protocol'
import type { MeshPeerInfo } from './mesh.ts'

export interface TrackerDiscoveryInit {
  /** Peers asked for per CID (default 8). */
  count?: number
  /** The node's region, as it registers with the tracker. */
  region?: string
}

/**
 * @example
 * createMesh(init, { privateKey, holdings, discover: trackerDiscovery(tracker, { region: 'eu-west' }) })
 */
export function trackerDiscovery(tracker: Pick<TrackerClient, 'select'>, init: TrackerDiscoveryInit = {}) {
  const count = init.count ?? 8
  const region = init.region
  return async (cid: Cid, options: { signal?: AbortSignal } = {}): Promise<MeshPeerInfo[]> => {
    const [near, far] = await Promise.all([
      region === undefined
        ? []
        : tracker.select(cid.text, { count: Math.ceil(count / 2), region, ...options }),
      tracker.select(cid.text, { count, ...options }),
    ])
    const peers = new Map<string, MeshPeerInfo>()
    for (const n of [...near, ...far]) {
      if (peers.size === count) break
      if (n.peerId === '' || n.multiaddrs.length === 0 || peers.has(n.peerId)) continue
      peers.set(n.peerId, { peerId: n.peerId, multiaddrs: n.multiaddrs, node: n.node })
    }
    return [...peers.values()]
  }
}
