/**
 * Where a node gets content it does not hold: the origin a site manifest names,
 * other nodes over HTTP, and (later) mesh neighbours. Every source is untrusted:
 * what it returns is checked against the CID before anything is kept or served.
 */
import type { Cid } from '@shoal/protocol'
import { NotFoundError, UpstreamError } from '@shoal/protocol'
import { encodePath } from '../http/routes.ts'
import type { HttpUpstream } from '../upstream/http-upstream.ts'

export interface ContentSource {
  /** For logs and metrics: `origin`, `peer`, `mesh`. */
  readonly kind: string
  /** A label for logs (never a client address). */
  readonly name: string
  /** The chunk-hash list, when the source can give it; the caller verifies it. */
  leaves?(cid: Cid, options: { signal?: AbortSignal }): Promise<Uint8Array | undefined>
  /** The whole body as a stream; `undefined` when the source does not have it. */
  body(cid: Cid, options: { signal?: AbortSignal }): Promise<AsyncIterable<Uint8Array> | undefined>
}

async function readAllLimited(body: AsyncIterable<Uint8Array>, limit: number): Promise<Uint8Array> {
  const parts: Uint8Array[] = []
  let total = 0
  for await (const part of body) {
    total += part.length
    if (total > limit) throw new UpstreamError(`leaves response is larger than ${limit} bytes`)
    parts.push(part)
  }
  return Buffer.concat(parts)
}

/**
 * The origin named by a site manifest: `GET <origin><path>`. It serves bodies only;
 * the node computes the leaves from the bytes while it checks them against the CID.
 *
 * @example
 * const source = originSource(upstream, 'https://origin.example', '/img/logo.png')
 */
export function originSource(upstream: HttpUpstream, origin: string, path: string): ContentSource {
  const url = `${origin.replace(/\/$/, '')}${encodePath(path)}`
  return {
    kind: 'origin',
    name: new URL(origin).host,
    async body(_cid, { signal }) {
      const res = await upstream.request(url, { method: 'GET', headers: { accept: '*/*' }, signal })
      if (res.status === 404 || res.status === 410) {
        res.body.destroy()
        return undefined
      }
      if (res.status !== 200) {
        res.body.destroy()
        throw new UpstreamError(`origin answered ${res.status}`)
      }
      return res.body
    },
  }
}

/**
 * Another Shoal node over HTTP: `GET /c/<cid>/leaves` and `GET /c/<cid>`.
 *
 * @example
 * const source = peerSource(upstream, 'http://127.0.0.1:7481')
 */
export function peerSource(upstream: HttpUpstream, baseUrl: string): ContentSource {
  const base = baseUrl.replace(/\/$/, '')
  return {
    kind: 'peer',
    name: new URL(base).host,
    async leaves(cid, { signal }) {
      const res = await upstream.request(`${base}/c/${cid.text}/leaves`, { method: 'GET', signal })
      if (res.status !== 200) {
        res.body.destroy()
        if (res.status === 404) return undefined
        throw new UpstreamError(`peer answered ${res.status} for leaves`)
      }
      // a leaf list is 32 bytes a chunk: bound it by what the CID allows
      const expected = Math.max(1, Math.ceil(cid.size / cid.chunkSize)) * 32
      return readAllLimited(res.body, expected)
    },
    async body(cid, { signal }) {
      const res = await upstream.request(`${base}/c/${cid.text}`, { method: 'GET', signal })
      if (res.status === 404) {
        res.body.destroy()
        return undefined
      }
      if (res.status !== 200) {
        res.body.destroy()
        throw new UpstreamError(`peer answered ${res.status}`)
      }
      return res.body
    },
  }
}

/** Thrown when no source had the content. */
export function notFoundAnywhere(cid: Cid): Error {
  return new NotFoundError(`no source has ${cid.text}`)
}
