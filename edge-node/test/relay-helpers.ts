/**
 * Helpers of the relay tests: a tracker key that signs tickets, a local origin that
 * counts what reaches it, and raw HTTP over a socket (so request targets are sent
 * exactly as written, not normalized by a client library).
 */
import { once } from 'node:events'
import http, { type IncomingMessage } from 'node:http'
import net, { type AddressInfo } from 'node:net'
import { type Signed, signTicket, type Ticket } from '@shoal/protocol'
import { generatePrivateKey, type PrivateKeyAccount, privateKeyToAccount } from 'viem/accounts'
import type { Resolver } from '../src/relay/index.ts'

export const issuer: PrivateKeyAccount = privateKeyToAccount(generatePrivateKey())
export const client: PrivateKeyAccount = privateKeyToAccount(generatePrivateKey())

const nonce = () => `0x${Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('hex')}` as const

export function makeTicket(
  over: Partial<Ticket> = {},
  signer: PrivateKeyAccount = issuer,
): Promise<Signed<Ticket>> {
  return signTicket(signer, {
    issuer: signer.address,
    client: client.address,
    budget: 2 ** 30,
    expiry: Math.floor(Date.now() / 1000) + 3600,
    nonce: nonce(),
    ...over,
  })
}

export interface Origin {
  port: number
  url: string
  hits: { method: string; url: string; headers: IncomingMessage['headers']; body: number }[]
  close(): Promise<void>
}

/** An origin on 127.0.0.1: `/bytes/N` answers N bytes, `/redirect` a 302 to `/secret`, `POST /echo` echoes. */
export async function startOrigin(): Promise<Origin> {
  const hits: Origin['hits'] = []
  const server = http.createServer(async (req, res) => {
    let body = 0
    const parts: Buffer[] = []
    for await (const c of req as AsyncIterable<Buffer>) {
      body += c.length
      parts.push(c)
    }
    hits.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body })
    const url = req.url ?? '/'
    if (url.startsWith('/bytes/')) {
      const n = Number(url.slice(7))
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n })
      res.end(Buffer.alloc(n, 7))
    } else if (url === '/redirect') {
      res.writeHead(302, { location: '/secret', 'content-length': 0 })
      res.end()
    } else if (url === '/echo') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' })
      res.end(Buffer.concat(parts))
    } else {
      res.writeHead(200, { 'content-type': 'text/plain', connection: 'keep-alive, x-hop', 'x-hop': 'secret' })
      res.end(`hello ${req.headers.host}`)
    }
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as AddressInfo).port
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    hits,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

/** A TCP echo server on 127.0.0.1 (the far end of CONNECT tunnels). */
export async function startEcho(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>()
  const server = net.createServer((s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
    s.on('error', () => {})
    s.pipe(s)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}

export interface RawAnswer {
  status: number
  headers: Record<string, string>
  body: string
}

/** Sends `head` as written and reads the answer until the relay closes (or `untilHead`). */
export async function raw(
  port: number,
  head: string,
  options: { untilHead?: boolean } = {},
): Promise<RawAnswer & { socket: net.Socket }> {
  const socket = net.connect({ host: '127.0.0.1', port })
  await once(socket, 'connect')
  socket.write(head)
  let text = ''
  await new Promise<void>((resolve) => {
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1')
      if (options.untilHead === true && text.includes('\r\n\r\n')) resolve()
    })
    socket.on('end', () => resolve())
    socket.on('close', () => resolve())
    socket.on('error', () => resolve())
  })
  const end = text.indexOf('\r\n\r\n')
  const lines = text.slice(0, end < 0 ? text.length : end).split('\r\n')
  const status = Number(lines[0]?.split(' ')[1])
  const headers: Record<string, string> = {}
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':')
    if (i > 0) headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim()
  }
  return { status, headers, body: end < 0 ? '' : text.slice(end + 4), socket }
}

/** A fixed name table (and a count of lookups) standing in for DNS. */
export function tableResolver(table: Record<string, string[]>): Resolver & { calls: string[] } {
  const calls: string[] = []
  const resolve = async (host: string) => {
    calls.push(host)
    const list = table[host]
    if (list === undefined) throw Object.assign(new Error(`ENOTFOUND ${host}`), { code: 'ENOTFOUND' })
    return list.map((address) => ({ address, family: (address.includes(':') ? 6 : 4) as 4 | 6 }))
  }
  return Object.assign(resolve, { calls })
}
