/**
 * An edge node for the NAT test, run inside a network namespace by `mesh-nat.test.ts`:
 * it listens on the namespace's own address (unreachable from outside), holds a
 * reservation on the relay given in argv[2], holds one object, and prints
 * `{"peerId","multiaddrs","cid","node"}` once it is reachable through the relay. With a
 * tracker URL (argv[5]) it also registers there and heartbeats, its HTTP URL on the
 * namespace's address (which the tracker's probes cannot reach). It stops when its stdin
 * closes.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { computeCid } from '@shoal/protocol'
import pino from 'pino'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { createEdgeNode } from '../../src/node.ts'
import { announceNode } from '../../src/tracker/index.ts'

const [relay, listenIp, sizeText, trackerUrl] = process.argv.slice(2)
const account = privateKeyToAccount(generatePrivateKey())
const size = Number(sizeText ?? 600_000)
const bytes = Buffer.alloc(size)
for (let i = 0; i < size; i++) bytes[i] = (i * 131 + (i >> 11)) & 0xff
const { cid } = await computeCid(bytes)
const dataDir = await mkdtemp(join(tmpdir(), 'shoal-nat-node-'))
const node = createEdgeNode(
  {
    dataDir,
    // behind the home router: the tracker's probes of this URL never get in
    host: trackerUrl === undefined ? '127.0.0.1' : listenIp!,
    port: 0,
    shutdownGraceMs: 100,
    acceptPushes: 'any',
    mesh: { listen: [`/ip4/${listenIp}/tcp/0`], relays: [relay!] },
    ...(trackerUrl === undefined ? {} : { trackerUrl }),
  },
  { account },
)
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
const announcer =
  trackerUrl === undefined
    ? undefined
    : await announceNode(
        node,
        account,
        { region: 'eu-west', capacity: 12_500_000 },
        { logger: pino({ level: 'silent' }), heartbeatIntervalMs: 200 },
      )
await announcer?.registered()
process.stdout.write(
  `${JSON.stringify({ peerId: node.mesh!.peerId, multiaddrs: node.mesh!.multiaddrs(), record: node.mesh!.recordMultiaddrs(), cid: cid.text, node: account.address })}\n`,
)
process.stdin.resume()
process.stdin.on('end', async () => {
  await announcer?.stop()
  await node.stop()
  await rm(dataDir, { recursive: true, force: true })
  process.exit(0)
})
