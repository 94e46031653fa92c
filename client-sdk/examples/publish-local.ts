/**
 * Publishing end to end on one machine: a tracker and two edge nodes on 127.0.0.1, a
 * small directory published with `publishDirectory`, then every file fetched back
 * (verified) with the SDK.
 *
 *   npx node client-sdk/examples/publish-local.ts          # run and exit
 *   npx node client-sdk/examples/publish-local.ts --keep   # keep the network running and
 *                                                          # try the shoal CLI against it
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createClient } from '@shoal/client-sdk'
import { createKeystoreFile, publishDirectory } from '@shoal/client-sdk/node'
import { createEdgeNode, type EdgeNode } from '@shoal/edge-node'
import { encodeNodeRecord, signNodeRecord } from '@shoal/protocol'
import { createSqliteStore, createTracker } from '@shoal/tracker'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'

const work = await mkdtemp(join(tmpdir(), 'shoal-publish-example-'))

// a tracker that probes every 300 ms and accepts nodes on 127.0.0.1
const tracker = createTracker(
  { port: 0, allowPrivateUrls: true, probeIntervalMs: 300, probeTimeoutMs: 300, auditIntervalMs: 0 },
  {
    store: createSqliteStore({ path: join(work, 'tracker.db') }),
    account: privateKeyToAccount(generatePrivateKey()),
  },
)
await tracker.start()

// two edge nodes that take pushes only for content a manifest they hold names
const nodes: EdgeNode[] = []
const addresses: `0x${string}`[] = []
for (let i = 0; i < 2; i++) {
  const account = privateKeyToAccount(generatePrivateKey())
  const node = createEdgeNode(
    { dataDir: join(work, `node${i}`), host: '127.0.0.1', port: 0, trackerUrl: tracker.url },
    { account },
  )
  await node.start()
  nodes.push(node)
  addresses.push(account.address)
  const record = await signNodeRecord(account, {
    node: account.address,
    peerId: `12D3KooW${'A'.repeat(44)}${i + 1}`,
    multiaddrs: [],
    httpUrl: `${node.url.replace(/\/$/, '')}/`,
    region: 'eu-west',
    capacity: 12_500_000,
    payout: account.address,
    timestamp: Math.floor(Date.now() / 1000),
  })
  const registered = await fetch(`${tracker.url}/v1/nodes`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: encodeNodeRecord(record),
  })
  if (!registered.ok) throw new Error(`registration: ${registered.status} ${await registered.text()}`)
}
// the tracker selects a node once its probes have seen it answer
while (addresses.some((a) => tracker.index.get(a)?.status !== 'active')) {
  await new Promise((resolve) => setTimeout(resolve, 50))
}

// a directory to publish and the publisher's key
const site = join(work, 'site')
await mkdir(join(site, 'css'), { recursive: true })
await writeFile(
  join(site, 'index.html'),
  '<!doctype html><link rel=stylesheet href=css/a.css><h1>Hello</h1>\n',
)
await writeFile(join(site, 'css', 'a.css'), 'h1 { color: teal }\n')
const keyFile = join(work, 'publisher.json')
const account = await createKeystoreFile(keyFile, 'example passphrase', { n: 2 ** 14 })

const summary = await publishDirectory(site, {
  site: 'demo',
  tracker: tracker.url,
  account,
  replicas: 2,
  onProgress: (p) => process.stderr.write(`\r${p.phase} ${p.loaded}/${p.total} bytes   `),
})
process.stderr.write('\n')
console.log(`published demo sequence ${summary.sequence}: ${summary.files} files, ${summary.bytes} bytes`)
for (const c of summary.contents) console.log(' ', c.paths.join(', '), c.cid, '→', c.nodes.join(' '))

const client = createClient({ tracker: tracker.url })
for (const path of ['/index.html', '/css/a.css']) {
  const res = await client.fetch(`shoal://demo${path}`)
  console.log(res.status, path, res.headers.get('content-type'), JSON.stringify(await res.text()))
}
await client.stop()

const stop = async () => {
  for (const node of nodes) await node.stop()
  await tracker.stop()
  await rm(work, { recursive: true, force: true })
}
if (process.argv.includes('--keep')) {
  console.log(`
The network keeps running (Ctrl-C stops it). In another shell:
  export SHOAL_TRACKER=${tracker.url} SHOAL_KEY=${keyFile} SHOAL_PASSPHRASE='example passphrase'
  npx shoal site show demo
  npx shoal get shoal://demo/index.html
  npx shoal publish ${site} --site demo --replicas 2`)
  process.once('SIGINT', () => stop().then(() => process.exit(0)))
} else {
  await stop()
}
