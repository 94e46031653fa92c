/**
 * The relay benchmark's server processes (both pinned to CPU 0 by run.ts), by role:
 * `origin` runs an http and an https origin serving 1 MiB objects; `relay` runs a Shoal
 * relay that trusts the issuer named in argv and allows 127.0.0.1 explicitly (the
 * operator opening benchmarks need). Separate processes, as origin and relay are
 * separate servers in the field. Reports its URLs over IPC; exits on 'stop'.
 */
import { once } from 'node:events'
import http from 'node:http'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import { createRelay } from '@shoal/edge-node'

const [role, issuer, certPem, keyPem] = process.argv.slice(2) as [string, string, string, string]
const OBJECT = Buffer.alloc(2 ** 20, 7)

if (role === 'relay') {
  const relay = createRelay({ port: 0, issuers: [issuer], egress: { allowCidrs: ['127.0.0.1/32'] } })
  await relay.start()
  process.send?.({ relayUrl: relay.url })
  process.on('message', async () => {
    await relay.stop()
    process.exit(0)
  })
} else {
  await origin()
}

async function origin(): Promise<void> {
  const handler = (_req: http.IncomingMessage, res: http.ServerResponse) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': OBJECT.length })
    res.end(OBJECT)
  }
  const plain = http.createServer({ keepAliveTimeout: 60_000 }, handler)
  const tls = https.createServer(
    { cert: Buffer.from(certPem, 'base64'), key: Buffer.from(keyPem, 'base64'), keepAliveTimeout: 60_000 },
    handler,
  )
  plain.listen(0, '127.0.0.1')
  tls.listen(0, '127.0.0.1')
  await Promise.all([once(plain, 'listening'), once(tls, 'listening')])

  process.send?.({
    httpUrl: `http://127.0.0.1:${(plain.address() as AddressInfo).port}`,
    httpsUrl: `https://127.0.0.1:${(tls.address() as AddressInfo).port}`,
  })
  process.on('message', async () => {
    plain.closeAllConnections()
    tls.closeAllConnections()
    plain.close()
    tls.close()
    process.exit(0)
  })
}
