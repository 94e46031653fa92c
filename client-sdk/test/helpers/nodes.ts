/**
 * Real servers for the client's tests, all on 127.0.0.1 port 0:
 * - `startEdgeNodes`: real edge nodes (`@shoal/edge-node`) in temp dirs, with a `push`;
 * - `startFaultyNode`: a real HTTP server in front of a real node that misbehaves on
 *   content bodies (flips a bit, dies mid-stream, stalls, answers late) and counts the
 *   requests it has open, so tests can assert that nothing is left behind;
 * - `startOrigin`: a plain origin serving files by path.
 */
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import http from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createEdgeNode, type EdgeNode, type EdgeNodeOptions } from '@shoal/edge-node'
import { type Cid, computeCid } from '@shoal/protocol'
import { request } from 'undici'
import type { LocalAccount } from 'viem/accounts'
import { pattern } from '../../../test-support/pattern.ts'

export { pattern }

export interface Content {
  bytes: Uint8Array
  cid: Cid
  leaves: Uint8Array
}

export async function makeContent(size: number, chunkSize = 1024, seed = 7): Promise<Content> {
  const bytes = pattern(size, seed)
  const { cid, leaves } = await computeCid(bytes, { chunkSize })
  return { bytes, cid, leaves }
}

export interface Nodes {
  nodes: EdgeNode[]
  /** Base URLs with a trailing `/`. */
  urls: string[]
  push(content: Content, on?: EdgeNode[]): Promise<void>
  close(): Promise<void>
}

export async function startEdgeNodes(
  count: number,
  accounts: LocalAccount[] = [],
  options: Partial<EdgeNodeOptions> = {},
): Promise<Nodes> {
  const dirs: string[] = []
  const nodes: EdgeNode[] = []
  for (let i = 0; i < count; i++) {
    const dataDir = await mkdtemp(join(tmpdir(), 'shoal-sdk-node-'))
    dirs.push(dataDir)
    const account = accounts[i]
    const node = createEdgeNode(
      {
        dataDir,
        host: '127.0.0.1',
        port: 0,
        memoryCacheBytes: 8 * 2 ** 20,
        shutdownGraceMs: 200,
        acceptPushes: 'any',
        ...options,
      },
      account === undefined ? {} : { account },
    )
    await node.start()
    nodes.push(node)
  }
  return {
    nodes,
    urls: nodes.map((n) => `${n.url.replace(/\/$/, '')}/`),
    async push(content, on = nodes) {
      for (const node of on) {
        const res = await request(`${node.url.replace(/\/$/, '')}/c/${content.cid.text}`, {
          method: 'PUT',
          body: content.bytes,
        })
        await res.body.dump()
        if (res.statusCode !== 201 && res.statusCode !== 200)
          throw new Error(`push answered ${res.statusCode}`)
      }
    },
    async close() {
      for (const node of nodes) await node.stop()
      for (const dir of dirs) await rm(dir, { recursive: true, force: true })
    },
  }
}

export type Fault =
  | { kind: 'ok' }
  /** Flips bit 0 of the byte at `offset` of the object. */
  | { kind: 'flip'; offset: number }
  /** Destroys the socket once `after` body bytes were sent. */
  | { kind: 'die'; after: number }
  /** Stops sending (socket left open) once `after` body bytes were sent. */
  | { kind: 'stall'; after: number }
  /** Waits `ms` before answering. */
  | { kind: 'delay'; ms: number }
  /** Refuses everything with 503. */
  | { kind: 'down' }

export interface FaultyNode {
  /** Base URL with a trailing `/`. */
  url: string
  fault: Fault
  /** Requests answered or being answered, by path. */
  requests: string[]
  /** Requests whose response has not finished or closed. */
  readonly open: number
  /** Sockets currently connected. */
  readonly sockets: number
  close(): Promise<void>
}

const CONTENT_PATH = /^\/c\/[a-z2-7]+$/

/** Byte offset of the first body byte of a response, from its Content-Range (0 without one). */
function firstOffset(headers: Record<string, string | string[] | undefined>): number {
  const m = /^bytes (\d+)-/.exec(String(headers['content-range'] ?? ''))
  return m === null ? 0 : Number(m[1])
}

/**
 * A real HTTP server that proxies to `upstream` (a real node) and applies `fault` to
 * content bodies (`/c/<cid>`; leaves and everything else pass through unless `down`).
 */
export async function startFaultyNode(upstream: string, fault: Fault = { kind: 'ok' }): Promise<FaultyNode> {
  let open = 0
  const sockets = new Set<Socket>()
  const base = upstream.replace(/\/$/, '')
  const node: FaultyNode = {
    url: '',
    fault,
    requests: [],
    get open() {
      return open
    },
    get sockets() {
      return sockets.size
    },
    async close() {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
  const server = http.createServer(async (req, res) => {
    open++
    res.once('close', () => open--)
    const path = req.url ?? '/'
    node.requests.push(path)
    const f = node.fault
    if (f.kind === 'down') {
      res
        .writeHead(503, { 'content-type': 'application/json' })
        .end('{"error":{"code":"SHOAL_ERR_UNAVAILABLE","message":"down"}}')
      return
    }
    if (f.kind === 'delay') await new Promise((r) => setTimeout(r, f.ms))
    if (res.destroyed) return
    const controller = new AbortController()
    res.once('close', () => controller.abort())
    try {
      const up = await request(`${base}${path}`, {
        method: req.method as 'GET',
        headers: req.headers.range === undefined ? {} : { range: req.headers.range },
        signal: controller.signal,
      })
      const headers = { ...up.headers }
      delete headers.connection
      delete headers['keep-alive']
      delete headers['transfer-encoding']
      res.writeHead(up.statusCode, headers)
      const content = CONTENT_PATH.test(path) && up.statusCode < 300
      let at = firstOffset(up.headers)
      let sent = 0
      for await (const piece of up.body as AsyncIterable<Buffer>) {
        let out = piece
        if (content && f.kind === 'flip' && f.offset >= at && f.offset < at + piece.length) {
          out = Buffer.from(piece)
          out[f.offset - at] = (out[f.offset - at] ?? 0) ^ 1
        }
        if (content && (f.kind === 'die' || f.kind === 'stall') && sent + out.length > f.after) {
          const keep = f.after - sent
          if (keep > 0) res.write(out.subarray(0, keep))
          if (f.kind === 'die') {
            // let the kept bytes leave, then cut the connection
            await new Promise((r) => setTimeout(r, 20))
            res.destroy()
          }
          up.body.destroy()
          return
        }
        at += piece.length
        sent += out.length
        if (!res.write(out)) await once(res, 'drain')
      }
      res.end()
    } catch {
      res.destroy()
    }
  })
  server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  node.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
  return node
}

export interface Origin {
  url: string
  files: Map<string, Uint8Array>
  hits: string[]
  close(): Promise<void>
}

/** A plain origin: `GET <path>` answers the file (ignoring Range, as many origins do). */
export async function startOrigin(): Promise<Origin> {
  const files = new Map<string, Uint8Array>()
  const hits: string[] = []
  const server = http.createServer((req, res) => {
    const path = req.url ?? '/'
    hits.push(path)
    const body = files.get(path)
    if (body === undefined) {
      res.writeHead(404).end()
      return
    }
    res
      .writeHead(200, { 'content-length': body.length, 'content-type': 'application/octet-stream' })
      .end(body)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    files,
    hits,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

/** Reads a response body whole. */
export async function bytesOf(res: Response): Promise<Uint8Array> {
  return new Uint8Array(await res.arrayBuffer())
}

/** Resolves when `fn` returns a truthy value (polling), or rejects after `timeoutMs`. */
export async function waitFor<T>(fn: () => T, timeoutMs = 5_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = fn()
    if (v) return v as NonNullable<T>
    if (Date.now() > deadline) throw new Error('timed out waiting')
    await new Promise((r) => setTimeout(r, 10))
  }
}
