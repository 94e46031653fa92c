/**
 * The HTTP client the tracker talks to nodes with (probes, audits): one undici Agent,
 * bounded connections per node, short timeouts, and — unless private URLs are allowed
 * — a DNS lookup that refuses private addresses.
 */
import { Agent, type Dispatcher } from 'undici'
import { safeLookup } from '../registry/url-policy.ts'

export interface NodeClientInit {
  allowPrivateUrls: boolean
  /** Connect, head and body timeouts (ms). */
  timeoutMs: number
  /** Connections kept per node origin. Default 2. */
  connectionsPerOrigin?: number
}

export function createNodeDispatcher(init: NodeClientInit): Dispatcher {
  return new Agent({
    connections: init.connectionsPerOrigin ?? 2,
    keepAliveTimeout: 60_000,
    headersTimeout: init.timeoutMs,
    bodyTimeout: init.timeoutMs,
    connect: {
      timeout: init.timeoutMs,
      ...(init.allowPrivateUrls ? {} : { lookup: safeLookup as never }),
    },
  })
}

/** Reads at most `limit` bytes of a body; more is an error (the rest is discarded). */
export async function readLimited(body: AsyncIterable<Uint8Array>, limit: number): Promise<Buffer> {
  const parts: Buffer[] = []
  let total = 0
  for await (const part of body) {
    total += part.length
    if (total > limit) throw new RangeError(`body larger than ${limit} bytes`)
    parts.push(Buffer.from(part.buffer, part.byteOffset, part.byteLength))
  }
  return Buffer.concat(parts, total)
}

/** Joins a node's base URL and a path (`https://n.example/base` + `health` → `…/base/health`). */
export function nodeUrl(base: string, path: string): string {
  return base.endsWith('/') ? `${base}${path}` : `${base}/${path}`
}
