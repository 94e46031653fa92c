/**
 * The devnet's bad node: a real edge node whose public URL is this proxy, which flips
 * one bit in every content body it relays (a compromised router, a bad disk). Health
 * challenges pass through untouched — the node's key signs them — so the tracker keeps
 * the node in selection until clients and audits catch the wrong bytes.
 */
import { once } from 'node:events'
import { createServer, request, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface CorruptProxy {
  readonly url: string
  /** Content bodies it corrupted. */
  readonly corrupted: number
  close(): Promise<void>
}

/** Paths whose bodies are content (leaves, health and the rest pass through). */
const CONTENT = /^\/(?:c\/[^/]+|s\/.+)$/

/**
 * @example
 * const proxy = await startCorruptProxy('http://127.0.0.1:7485', 7486)
 * // start the node with --public-url proxy.url
 */
export async function startCorruptProxy(target: string, port: number): Promise<CorruptProxy> {
  const upstream = new URL(target)
  let corrupted = 0
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!
    const out = request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: upstream.host },
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers)
        let flipped = !(CONTENT.test(path) && (answer.statusCode === 200 || answer.statusCode === 206))
        answer.on('data', (chunk: Buffer) => {
          if (!flipped && chunk.length > 0) {
            const copy = Buffer.from(chunk)
            copy[copy.length >> 1]! ^= 0x01
            flipped = true
            corrupted++
            res.write(copy)
            return
          }
          res.write(chunk)
        })
        answer.on('end', () => res.end())
        answer.on('error', () => res.destroy())
      },
    )
    out.on('error', () => {
      if (!res.headersSent) res.writeHead(502).end()
      else res.destroy()
    })
    req.pipe(out)
  })
  server.listen(port, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${address.port}`,
    get corrupted() {
      return corrupted
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
