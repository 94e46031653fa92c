/**
 * Serving content-addressed objects: `GET`/`HEAD /c/<cid>` and site paths that a
 * manifest maps to a CID. `ETag` is the CID; it never changes, so conditional
 * requests are answered before any lookup. Ranges are served from the stored object
 * (a ranged read from disk is re-checked chunk by chunk against the leaves; whole-body
 * reads are checked against the stored SHA-256 by the store).
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { alignRange, type Cid, NotFoundError, RangeNotSatisfiableError, verifyStream } from '@shoal/protocol'
import type { ContentService } from '../content/content-service.ts'
import type { ContentSource } from '../content/sources.ts'
import { type TokenBucket, throttle } from '../limits/token-bucket.ts'
import type { StoreEntry } from '../store/index.ts'
import { contentRange, parseRange, unsatisfiedRange } from './range.ts'
import { sendError } from './respond.ts'

export const IMMUTABLE = 'public, max-age=31536000, immutable'

export interface ContentResponseInit {
  cid: Cid
  contentType: string
  cacheControl: string
  sources?: ContentSource[]
}

export interface ContentHandlerComponents {
  content: ContentService
  egress?: TokenBucket
  /** Counts body bytes sent, for metrics and receipts. */
  onBytes?: (n: number) => void
}

/** True when an `If-None-Match` list names this ETag (weak comparison, RFC 9110 §13.1.2). */
export function etagMatches(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false
  if (header.trim() === '*') return true
  const bare = etag.replace(/^W\//, '')
  return header.split(',').some((tag) => tag.trim().replace(/^W\//, '') === bare)
}

/** Headers every content response carries. */
export function contentHeaders(init: ContentResponseInit): Record<string, string> {
  return {
    etag: `"${init.cid.text}"`,
    'cache-control': init.cacheControl,
    'content-type': init.contentType,
    'accept-ranges': 'bytes',
    'x-content-type-options': 'nosniff',
  }
}

async function* bodyOf(
  entry: StoreEntry,
  cid: Cid,
  range: { start: number; end: number } | undefined,
  content: ContentService,
  signal: AbortSignal,
): AsyncGenerator<Uint8Array> {
  if (entry.tier === 'memory') {
    yield range === undefined ? entry.body : entry.body.subarray(range.start, range.end)
    return
  }
  if (range === undefined || (range.start === 0 && range.end === cid.size)) {
    yield* await entry.open(undefined, { signal })
    return
  }
  // a part of a large object: read the chunk-aligned span and verify it chunk by chunk
  const leaves = await content.leaves(cid, { signal })
  const span = alignRange(cid, range.start, range.end)
  const stream = await entry.open({ start: span.fetchStart, end: span.fetchEnd }, { signal })
  yield* verifyStream(cid, stream, { leaves, start: range.start, end: range.end, signal })
}

async function send(
  res: ServerResponse,
  body: AsyncIterable<Uint8Array>,
  components: ContentHandlerComponents,
  signal: AbortSignal,
): Promise<void> {
  const metered = async function* () {
    for await (const piece of components.egress === undefined
      ? body
      : throttle(body, [components.egress], { signal })) {
      components.onBytes?.(piece.length)
      yield piece
    }
  }
  await pipeline(Readable.from(metered(), { objectMode: false }), res, { signal }).catch((err: unknown) => {
    // the client went away or a stored body failed its check mid-stream: the socket is
    // closed so the client sees a truncated body, never wrong bytes
    res.destroy(err instanceof Error ? err : undefined)
  })
}

/**
 * Answers a GET or HEAD for a content-addressed object.
 *
 * @example
 * await serveContent(req, res, { cid, contentType: 'application/octet-stream', cacheControl: IMMUTABLE }, { content })
 */
export async function serveContent(
  req: IncomingMessage,
  res: ServerResponse,
  init: ContentResponseInit,
  components: ContentHandlerComponents,
): Promise<void> {
  const { cid } = init
  const headers = contentHeaders(init)
  if (etagMatches(req.headers['if-none-match'], headers.etag!)) {
    res.writeHead(304, headers)
    res.end()
    return
  }
  const controller = new AbortController()
  res.once('close', () => controller.abort())
  const { signal } = controller

  // If-Range with another validator (or a date: our ETag never changes) means "send it all"
  const ifRange = req.headers['if-range']
  const rangeHeader =
    ifRange === undefined || (typeof ifRange === 'string' && etagMatches(ifRange, headers.etag!))
      ? req.headers.range
      : undefined
  const asked = parseRange(rangeHeader, cid.size)
  if (asked.kind === 'unsatisfiable') {
    sendError(res, new RangeNotSatisfiableError(`range not satisfiable for ${cid.size} bytes`), {
      'content-range': unsatisfiedRange(cid.size),
    })
    return
  }
  const range = asked.kind === 'range' ? asked.range : undefined
  const status = range === undefined ? 200 : 206
  const length = range === undefined ? cid.size : range.end - range.start
  const head = {
    ...headers,
    'content-length': String(length),
    ...(range === undefined ? {} : { 'content-range': contentRange(range, cid.size) }),
  }

  try {
    let opened = await components.content.open(cid, {
      signal,
      ...(init.sources ? { sources: init.sources } : {}),
    })
    if (opened.kind === 'live') {
      // this request started the fill: wait for the first verified bytes before the head,
      // so a fill that fails at once is answered with a JSON error, not a cut body
      const iterator = opened.body[Symbol.asyncIterator]()
      const first = await iterator.next()
      const rest: AsyncIterable<Uint8Array> = {
        async *[Symbol.asyncIterator]() {
          if (first.done !== true) yield first.value
          while (true) {
            const next = await iterator.next()
            if (next.done === true) return
            yield next.value
          }
        },
      }
      if (first.done === true || req.method === 'HEAD' || range !== undefined) {
        // nothing to stream live (a source without leaves is checked whole before it is
        // kept), or a HEAD or a range: finish the fill and answer from the stored object
        for await (const _ of rest);
        const entry = await components.content.get(cid, { signal })
        if (entry === undefined) throw new NotFoundError(`${cid.text} was filled and then evicted; retry`)
        opened = { kind: 'stored', entry }
      } else {
        res.writeHead(status, head)
        await send(res, rest, components, signal)
        return
      }
    }
    res.writeHead(status, head)
    if (req.method === 'HEAD') {
      res.end()
      return
    }
    await send(res, bodyOf(opened.entry, cid, range, components.content, signal), components, signal)
  } catch (err) {
    sendError(res, err)
  }
}
