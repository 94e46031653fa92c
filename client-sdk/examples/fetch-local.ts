/**
 * A verified fetch end to end on one machine: an edge node on 127.0.0.1, some bytes
 * pushed to it, then the SDK fetching them whole and by range, and a node that lies.
 *
 *   npx node client-sdk/examples/fetch-local.ts
 */
import { mkdtemp, rm } from 'node:fs/promises'
import http from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createClient } from '@shoal/client-sdk'
import { createEdgeNode } from '@shoal/edge-node'
import { computeCid } from '@shoal/protocol'

const dataDir = await mkdtemp(join(tmpdir(), 'shoal-example-'))
const node = createEdgeNode({ dataDir, host: '127.0.0.1', port: 0, acceptPushes: 'any' })
await node.start()

// some content and its id (256 KiB chunks by default; 64 KiB here so it has several)
const bytes = new TextEncoder().encode('Shoal verifies every byte. '.repeat(20_000))
const { cid } = await computeCid(bytes, { chunkSize: 65536 })
await fetch(`${node.url}/c/${cid.text}`, { method: 'PUT', body: bytes })

// a "node" that flips one bit of everything it relays
const liar = http.createServer(async (req, res) => {
  const upstream = await fetch(`${node.url}${req.url}`, { headers: req.headers as Record<string, string> })
  const body = new Uint8Array(await upstream.arrayBuffer())
  if (req.url?.endsWith('/leaves') !== true && body.length > 100_000) body[100_000]! ^= 1
  res.writeHead(upstream.status, Object.fromEntries(upstream.headers)).end(body)
})
await new Promise<void>((resolve) => liar.listen(0, '127.0.0.1', resolve))
const liarUrl = `http://127.0.0.1:${(liar.address() as { port: number }).port}/`

const client = createClient({
  nodes: [liarUrl, node.url], // the liar first: the client must route around it
  onEvent: (event) => console.log('event:', event.type, 'node' in event ? event.node : ''),
})

const res = await client.fetch(`shoal://${cid.text}`)
const got = new Uint8Array(await res.arrayBuffer())
console.log(
  res.status,
  res.headers.get('etag'),
  got.length,
  'bytes, identical:',
  Buffer.from(got).equals(Buffer.from(bytes)),
)

const part = await client.fetch(`shoal://${cid.text}`, { headers: { range: 'bytes=0-25' } })
console.log(part.status, part.headers.get('content-range'), JSON.stringify(await part.text()))

await client.stop()
liar.close()
await node.stop()
await rm(dataDir, { recursive: true, force: true })
