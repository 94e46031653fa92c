/**
 * Peers for a CID from the tracker: its selection for the CID names the nodes the
 * placement puts it on (the ones most likely to hold it), with their peer ids and
 * multiaddrs.
 */
import type { TrackerClient } from '@shoal/client-sdk'
import type { Cid } from '@shoal/protocol'
import type { MeshPeerInfo } from './mesh.ts'

/**
 * @example
 * createMesh(init, { privateKey, holdings, discover: trackerDiscovery(tracker) })
 */
export function trackerDiscovery(tracker: Pick<TrackerClient, 'select'>, count = 8) {
  return async (cid: Cid, options: { signal?: AbortSignal } = {}): Promise<MeshPeerInfo[]> => {
    const nodes = await tracker.select(cid.text, { count, ...options })
    return nodes
      .filter((n) => n.peerId !== '' && n.multiaddrs.length > 0)
      .map((n) => ({ peerId: n.peerId, multiaddrs: n.multiaddrs, node: n.node }))
  }
}
