/**
 * An edge node for the NAT test, run inside a network namespace by `mesh-nat.test.ts`:
 * it listens on the namespace's own address (unreachable from outside), holds a
 * reservation on the relay given in argv[2], holds one object, and prints
 * `{"peerId","multiaddrs","cid"}` once it is reachable through the relay. It stops when
 * its stdin closes.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { computeCid } from '@shoal/protocol'
import { createEdgeNode } from '../../src/node.ts'

const [relay, listenIp, sizeText] = process.argv.slice(2)
const size = Number(sizeText ?? 600_000)
const bytes = Buffer.alloc(size)
for (let i = 0; i < size; i++) bytes[i] = (i * 131 + (i >> 11)) & 0xff
const { cid } = await computeCid(bytes)
const dataDir = await mkdtemp(join(tmpdir(), 'shoal-nat-node-'))
const node = createEdgeNode({
  dataDir,
  host: '127.0.0.1',
  port: 0,
  shutdownGraceMs: 100,
  acceptPushes: 'any',
  mesh: { listen: [`/ip4/${listenIp}/tcp/0`], relays: [relay!] },
})
await node.start()
await node.content.push(
  cid,
  (async function* () {
    yield bytes
  })(),
)
const deadline = Date.now() + 20_000
while (!node.mesh!.multiaddrs().some((m) => m.includes('/p2p-circuit'))) {
  if (Date.now() > deadline) {
    process.stderr.write(`no relay reservation; addresses: ${node.mesh!.multiaddrs().join(' ')}\n`)
    process.exit(1)
  }
  await new Promise((r) => setTimeout(r, 50))
}
process.stdout.write(
  `${JSON.stringify({ peerId: node.mesh!.peerId, multiaddrs: node.mesh!.multiaddrs(), record: node.mesh!.recordMultiaddrs(), cid: cid.text })}\n`,
)
process.stdin.resume()
process.stdin.on('end', async () => {
  await node.stop()
  await rm(dataDir, { recursive: true, force: true })
  process.exit(0)
})
