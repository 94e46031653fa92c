/**
 * Peers for a CID from the tracker: its selection for the CID names the nodes the
 * placement puts it on (the ones most likely to hold it), with their peer ids and
 * multiaddrs. With the node's region, the tracker answers with nodes in that region
 * first (then its neighbouring regions'), as it does for a client there: the nodes a
 * client nearby is sent to, so the ones that hold what this node is asked for, and
 * neighbours a round trip away within the region rather than across the world.
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
    const nodes = await tracker.select(cid.text, {
      count,
      ...(region === undefined ? {} : { region }),
      ...options,
    })
    return nodes
      .filter((n) => n.peerId !== '' && n.multiaddrs.length > 0)
      .map((n) => ({ peerId: n.peerId, multiaddrs: n.multiaddrs, node: n.node }))
  }
}
