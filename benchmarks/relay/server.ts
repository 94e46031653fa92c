/**
 * The relay benchmark's server processes (all pinned to CPU 0 by run.ts), by role:
 * `origin` runs an http and an https origin serving 1 MiB objects; `relay` runs a Shoal
 * relay that trusts the issuer named in argv and allows 127.0.0.1 explicitly (the
 * operator opening benchmarks need); `bare` is the Node floor: a bare `http.Server`
 * that forwards absolute-form requests with `http.request` on a keep-alive agent and
 * `pipe`, and answers CONNECT with a socket-to-socket `pipe` (no ticket, no egress
 * check, no metering): what any Node proxy costs on this core. Separate
 * processes, as origin and relay are separate servers in the field. Reports its URLs
 * over IPC; exits on 'stop'.
 */
import { once } from 'node:events'
import http from 'node:http'
import https from 'node:https'
import net, { type AddressInfo } from 'node:net'
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
} else if (role === 'bare') {
  const agent = new http.Agent({ keepAlive: true })
  const tunnel = http.createServer((req, res) => {
    const target = new URL(req.url ?? '')
    const headers = { ...req.headers, host: target.host }
    delete headers['proxy-authorization']
    const upstream = http.request(
      { host: target.hostname, port: target.port, path: target.pathname, method: req.method, headers, agent },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers)
        answer.pipe(res)
      },
    )
    upstream.on('error', () => res.destroy())
    req.pipe(upstream)
  })
  tunnel.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    const [host, port] = (req.url ?? '').split(':') as [string, string]
    const upstream = net.connect({ host, port: Number(port), noDelay: true }, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n')
      if (head.length > 0) upstream.write(head)
      client.pipe(upstream)
      upstream.pipe(client)
    })
    const close = () => {
      client.destroy()
      upstream.destroy()
    }
    for (const s of [client, upstream]) s.on('error', close).on('close', close)
  })
  tunnel.listen(0, '127.0.0.1')
  await once(tunnel, 'listening')
  process.send?.({ bareUrl: `http://127.0.0.1:${(tunnel.address() as AddressInfo).port}` })
  process.on('message', () => {
    tunnel.closeAllConnections()
    tunnel.close()
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
