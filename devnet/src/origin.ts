/**
 * The devnet's sample origin: a plain static file server on 127.0.0.1 (the publisher's
 * own web server, in a real deployment). It counts the requests it answers, which is
 * how the summary shows what the edge saved it.
 */
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { extname, join, normalize, sep } from 'node:path'

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.json': 'application/json',
  '.bin': 'application/octet-stream',
}

export interface SampleOrigin {
  readonly url: string
  readonly dir: string
  /** Requests answered (any status). */
  readonly requests: number
  close(): Promise<void>
}

/** Bytes of the sample site's large file: several chunks, so verification and receipts show. */
export const LARGE_FILE_BYTES = 3 * 2 ** 20 + 12_345

/** Deterministic bytes (SHA-256 in counter mode over a seed): the same site on every run. */
export function sampleBytes(size: number, seed = 'shoal-devnet'): Uint8Array {
  const out = new Uint8Array(size)
  for (let i = 0, block = 0; i < size; block++) {
    const digest = createHash('sha256').update(`${seed}:${block}`).digest()
    out.set(digest.subarray(0, Math.min(32, size - i)), i)
    i += 32
  }
  return out
}

/**
 * Copies the sample site (devnet/sample-site) into `dir`, adds its large file, and
 * returns the directory.
 */
export async function prepareSampleSite(dir: string): Promise<string> {
  await cp(new URL('../sample-site', import.meta.url), dir, { recursive: true })
  await mkdir(join(dir, 'media'), { recursive: true })
  await writeFile(join(dir, 'media', 'intro.bin'), sampleBytes(LARGE_FILE_BYTES))
  return dir
}

/**
 * @example
 * const origin = await startSampleOrigin(await prepareSampleSite(join(dataDir, 'site')), 7471)
 */
export async function startSampleOrigin(dir: string, port: number): Promise<SampleOrigin> {
  let requests = 0
  const root = normalize(dir + sep)
  const server: Server = createServer(async (req, res) => {
    requests++
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://origin').pathname)
    const file = normalize(join(root, path.endsWith('/') ? `${path}index.html` : path))
    if (!file.startsWith(root) || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(req.method === 'GET' || req.method === 'HEAD' ? 404 : 405).end()
      return
    }
    try {
      const body = await readFile(file)
      res.writeHead(200, {
        'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
        'content-length': body.length,
        'cache-control': 'public, max-age=300',
        etag: `"${createHash('sha256').update(body).digest('hex').slice(0, 16)}"`,
      })
      res.end(req.method === 'HEAD' ? undefined : body)
    } catch {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n')
    }
  })
  server.listen(port, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${address.port}`,
    dir,
    get requests() {
      return requests
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
