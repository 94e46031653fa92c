/**
 * The benchmark's origin: a small node:http server, run as its own process by `run.ts`.
 *
 * `GET /<size>/<anything>` answers `size` bytes (`1k`, `64k`, `1m`; the same bytes for every
 * path of a size) with `Cache-Control: public, max-age=3600`, so every path is a distinct,
 * cacheable object; `GET /<size>-nostore/<anything>` answers the same with
 * `Cache-Control: no-store` (a cache only passes it through). `GET /__count` answers how many object requests it has served (never
 * cached): the driver reads it around each hit run to prove no request reached the origin.
 *
 *   node benchmarks/edge/origin.ts   → prints {"port":N} once listening on 127.0.0.1
 */
import { once } from 'node:events'
import http from 'node:http'
import type { AddressInfo } from 'node:net'

export const OBJECT_SIZES = { '1k': 1024, '64k': 64 * 1024, '1m': 2 ** 20 } as const
export type SizeName = keyof typeof OBJECT_SIZES

/** A deterministic body of `size` bytes. */
export function objectBody(size: number): Buffer {
  const body = Buffer.allocUnsafe(size)
  for (let i = 0; i < size; i++) body[i] = 97 + (i % 26)
  return body
}

/** Headers an ordinary static origin sends, the same for Shoal and nginx. */
export function objectHeaders(name: SizeName, store = true): Record<string, string | number> {
  return {
    'content-type': 'application/octet-stream',
    'content-length': OBJECT_SIZES[name],
    'cache-control': store ? 'public, max-age=3600' : 'no-store',
    'last-modified': 'Tue, 24 Nov 2026 12:00:00 GMT',
    etag: `"bench-${name}"`,
  }
}

async function main(): Promise<void> {
  const objects = new Map<string, { headers: Record<string, string | number>; body: Buffer }>()
  for (const name of Object.keys(OBJECT_SIZES) as SizeName[]) {
    const body = objectBody(OBJECT_SIZES[name])
    objects.set(name, { headers: objectHeaders(name), body })
    objects.set(`${name}-nostore`, { headers: objectHeaders(name, false), body })
  }
  let served = 0
  const server = http.createServer((req, res) => {
    const url = req.url ?? '/'
    if (url === '/__count') {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' })
      res.end(JSON.stringify({ served }))
      return
    }
    const slash = url.indexOf('/', 1)
    const object = objects.get(url.slice(1, slash < 0 ? undefined : slash))
    if (object === undefined || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain', 'cache-control': 'no-store' })
      res.end('not found\n')
      return
    }
    served++
    res.writeHead(200, object.headers)
    res.end(req.method === 'HEAD' ? undefined : object.body)
  })
  await serveHelper(server)
}

/**
 * Listens on 127.0.0.1 (a free port), prints `{"port":N}` for `run.ts`, and exits on
 * SIGTERM: the benchmark's helper processes (this origin, the bare proxy).
 */
export async function serveHelper(server: http.Server): Promise<void> {
  server.keepAliveTimeout = 65_000
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`)
  process.on('SIGTERM', () => {
    server.closeAllConnections()
    server.close(() => process.exit(0))
  })
}

if (import.meta.main) await main()
