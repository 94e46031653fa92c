/**
 * The sending side of the `mesh` benchmark, run as a child process pinned to CPU 0 by
 * `run.ts`: one real edge node (mesh on, 127.0.0.1) holding `count` objects of `size`
 * bytes in its memory tier (hot content: at most 8 MiB an object enters memory), and a
 * raw TCP server that writes the same bytes, all objects back to back, to every
 * connection. The node's libp2p also answers `RAW_PROTOCOL` with the same bytes on a
 * bare stream (1 MiB sends, the chunk protocol's largest, no frames, nothing to verify):
 * what TCP + Noise + Yamux alone reach, the floor under the chunk protocol. Answers `{ type: 'ready', cids, peerId, multiaddrs, tcpPort }`;
 * `{ type: 'stop' }` stops both.
 */
import { randomFillSync } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createEdgeNode } from '@shoal/edge-node'
import { computeCid } from '@shoal/protocol'

const RAW_PROTOCOL = '/shoal-bench/raw/1.0.0'

const size = Number(process.argv[2] ?? 8 * 2 ** 20)
const count = Number(process.argv[3] ?? 8)
const bytes = Buffer.alloc(size * count)
randomFillSync(bytes)
const objects = []
for (let i = 0; i < count; i++) {
  const body = bytes.subarray(i * size, (i + 1) * size)
  objects.push({ body, cid: (await computeCid(body)).cid })
}

const dataDir = await mkdtemp(join(tmpdir(), 'shoal-bench-mesh-'))
const node = createEdgeNode({
  dataDir,
  host: '127.0.0.1',
  port: 0,
  shutdownGraceMs: 500,
  acceptPushes: 'any',
  memoryCacheBytes: 2 * size * count,
})
await node.start()
for (const { cid, body } of objects)
  await node.content.push(
    cid,
    (async function* () {
      yield body
    })(),
  )
if (objects.some(({ cid }) => node.content.peek(cid) === undefined))
  throw new Error('the objects are not all in the memory tier')

await node.mesh!.libp2p!.handle(
  RAW_PROTOCOL,
  async (stream) => {
    for (let at = 0; at < bytes.length; at += 2 ** 20)
      if (!stream.send(bytes.subarray(at, at + 2 ** 20))) await stream.onDrain()
    await stream.close()
  },
  { runOnLimitedConnection: true },
)

const tcp = net.createServer({ noDelay: true }, (socket) => {
  socket.on('error', () => socket.destroy())
  socket.end(bytes)
})
await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve))

process.on('disconnect', () => process.exit(0))
process.on('message', async (m: { type: string }) => {
  if (m.type !== 'stop') return
  tcp.close()
  await node.stop()
  await rm(dataDir, { recursive: true, force: true })
  process.exit(0)
})
process.send?.({
  type: 'ready',
  cids: objects.map(({ cid }) => cid.text),
  peerId: node.mesh!.peerId,
  multiaddrs: node.mesh!.multiaddrs(),
  tcpPort: (tcp.address() as net.AddressInfo).port,
  rawProtocol: RAW_PROTOCOL,
})
