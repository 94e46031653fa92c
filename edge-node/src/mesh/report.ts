/**
 * Reports a mesh peer that sent bad bytes to the tracker, in the same signed
 * `NodeReport` form clients use: one failed request with the integrity evidence (CID,
 * chunk, leaf hash of the bytes received), signed by this node's key.
 */
import { randomNonce, signNodeReport, type TrackerClient } from '@shoal/client-sdk'
import type { MeshIntegrityEvidence } from '@shoal/client-sdk/node'
import { chunkSpan, parseCid, type RecordSigner } from '@shoal/protocol'
import type { MeshPeerInfo } from './mesh.ts'

/**
 * @example
 * const report = trackerReporter(account, createTrackerClient({ url }))
 * createMesh(init, { privateKey, holdings, report })
 */
export function trackerReporter(account: RecordSigner, tracker: Pick<TrackerClient, 'report'>) {
  return async (
    peer: MeshPeerInfo,
    evidence: MeshIntegrityEvidence,
    options: { signal?: AbortSignal } = {},
  ) => {
    if (peer.node === undefined) return
    const span = chunkSpan(parseCid(evidence.cid), evidence.chunk)
    const signed = await signNodeReport(account, {
      client: account.address,
      node: peer.node,
      nonce: randomNonce(),
      timestamp: Math.floor(Date.now() / 1000),
      requests: 1,
      failures: 1,
      bytes: span.end - span.start,
      ttfbMs: 0,
      throughput: 0,
      cid: evidence.cid,
      chunk: evidence.chunk,
      badHash: evidence.badHash,
    })
    await tracker.report(signed, options)
  }
}
