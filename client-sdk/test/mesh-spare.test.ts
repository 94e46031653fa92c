/**
 * The mesh client opens the next `/shoal/chunk/1.0.0` stream while a request runs, so
 * the next request to the same node skips the protocol negotiation round trip; a spare
 * the node has dropped, or one left unused, never fails a fetch. A real edge node on
 * 127.0.0.1.
 */
import type { Stream } from '@libp2p/interface'
import type { EdgeNode } from '@shoal/edge-node'
import { afterEach, describe, expect, it } from 'vitest'
import {
  CHUNK_PROTOCOL,
  createMeshClient,
  MESH_SPARE_STREAM_MAX_AGE_MS,
  type MeshClient,
  type MeshNode,
} from '../src/node/index.ts'
import { type Content, makeContent, type Nodes, startEdgeNodes, waitFor } from './helpers/nodes.ts'

let nodes: Nodes | undefined
let mesh: MeshClient | undefined

afterEach(async () => {
  await mesh?.stop()
  await nodes?.close()
  mesh = undefined
  nodes = undefined
})

async function setup(
  requestTimeoutMs: number,
): Promise<{ node: EdgeNode; content: Content; peer: MeshNode }> {
  nodes = await startEdgeNodes(1, [], { mesh: { requestTimeoutMs } })
  const node = nodes.nodes[0]!
  const content = await makeContent(700_000, 64 * 1024)
  await nodes.push(content)
  mesh = createMeshClient({ timeoutMs: 5_000 })
  await mesh.start()
  return { node, content, peer: { peerId: node.mesh!.peerId, multiaddrs: node.mesh!.multiaddrs() } }
}

/** The node's open inbound chunk streams that have not been asked anything yet. */
const chunkStreams = (node: EdgeNode): Stream[] =>
  node
    .mesh!.libp2p!.getConnections()
    .flatMap((c) => c.streams)
    .filter((s) => s.protocol === CHUNK_PROTOCOL && s.status === 'open')

describe('mesh client: a chunk stream opened ahead', () => {
  it('opens the next stream during a request and uses it for the next one', async () => {
    const { node, content, peer } = await setup(10_000)
    expect(Buffer.from(await mesh!.fetch(peer, content.cid))).toEqual(Buffer.from(content.bytes))
    // one stream waits at the node for the next request
    await waitFor(() => chunkStreams(node).length === 1, 2_000)
    const [spare] = chunkStreams(node)
    expect(Buffer.from(await mesh!.fetch(peer, content.cid))).toEqual(Buffer.from(content.bytes))
    // that stream carried the second request (it closes well before a spare's age runs
    // out); another one waits for a third
    await waitFor(() => spare!.status !== 'open', MESH_SPARE_STREAM_MAX_AGE_MS / 2)
    await waitFor(() => chunkStreams(node).length === 1 && chunkStreams(node)[0] !== spare, 2_000)
    // a range over the same spare mechanism
    const parts: Uint8Array[] = []
    for await (const part of mesh!.range(peer, content.cid, 100_000, 300_000)) parts.push(part)
    expect(Buffer.concat(parts)).toEqual(Buffer.from(content.bytes.subarray(100_000, 300_000)))
  })

  it('drops a spare left unused, and fetches on a fresh stream when the node dropped it first', async () => {
    // the node waits 300 ms for a request: it resets the spare long before the client drops it
    const { node, content, peer } = await setup(300)
    await mesh!.fetch(peer, content.cid)
    await waitFor(() => chunkStreams(node).length === 1, 2_000)
    await waitFor(() => chunkStreams(node).length === 0, 2_000)
    expect(Buffer.from(await mesh!.fetch(peer, content.cid))).toEqual(Buffer.from(content.bytes))
    // a node that waits longer than the client keeps a spare: the client drops it unused
    await mesh!.stop()
    await nodes!.close()
    const again = await setup(10_000)
    await mesh!.fetch(again.peer, again.content.cid)
    await waitFor(() => chunkStreams(again.node).length === 1, 2_000)
    await new Promise((r) => setTimeout(r, MESH_SPARE_STREAM_MAX_AGE_MS + 300))
    expect(chunkStreams(again.node)).toHaveLength(0)
    expect(Buffer.from(await mesh!.fetch(again.peer, again.content.cid))).toEqual(
      Buffer.from(again.content.bytes),
    )
  })
})
