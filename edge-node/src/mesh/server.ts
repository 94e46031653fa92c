/**
 * The answering side of `/shoal/have/1.0.0` and `/shoal/chunk/1.0.0`. A malformed or
 * oversized request gets an error header when one can still be sent, and the stream
 * is closed; nothing a peer sends can throw out of a handler.
 */
import type { Connection, Stream, StreamHandler } from '@libp2p/interface'
import {
  type ChunkRequest,
  decodeChunkRequest,
  decodeHaveRequest,
  frameReader,
  jsonFrame,
  MESH_LIMITS,
  writeFrame,
  writeFrames,
  writeJson,
} from '@shoal/client-sdk/node'
import { type Cid, chunkSpan, isShoalError, NotFoundError } from '@shoal/protocol'
import type { Logger } from 'pino'
import { Uint8ArrayList } from 'uint8arraylist'
import type { TokenBucket } from '../limits/token-bucket.ts'
import type { MeshHoldings } from './holdings.ts'

export interface MeshServerComponents {
  holdings: MeshHoldings
  /** The node's egress cap: chunk bytes sent to peers take its tokens like HTTP bodies. */
  egress?: Pick<TokenBucket, 'take'>
  logger?: Logger
  /** Counts answered requests and bytes (metrics). */
  onServed?: (kind: 'have' | 'chunk', bytes: number) => void
  /**
   * Meters bytes about to be sent (leaves and chunks) for the payment session a chunk
   * request names (`Sessions.meter`: unknown sessions are ignored).
   */
  meter?: (session: string, bytes: number) => void
}

export interface MeshServerInit {
  /** How long a peer has to send its request frame. */
  requestTimeoutMs: number
}

const codeOf = (err: unknown): string => (isShoalError(err) ? err.code : 'SHOAL_ERR_INVALID_FORMAT')

/**
 * Ends a stream on a failure: an error header and a clean close when one can still be
 * sent, else a reset. Never throws.
 */
async function failStream(
  stream: Stream,
  err: unknown,
  log: Logger | undefined,
  peer: string,
  answered = false,
) {
  log?.debug({ peer, err: (err as Error).message }, 'mesh request refused')
  // once the header went out, an error can only be told by resetting the stream
  if (!answered && isShoalError(err) && stream.status === 'open') {
    try {
      await writeJson(stream, { status: 'error', code: err.code, message: err.message.slice(0, 200) })
      await stream.close({ signal: AbortSignal.timeout(1000) })
      return
    } catch {
      // fall through to abort
    }
  }
  stream.abort(err instanceof Error ? err : new Error(String(err)))
}

/**
 * A handler for a one-frame request and a one-frame JSON answer (`have`, `receipt`): reads
 * the request within `requestTimeoutMs` and at most `maxRequestBytes`, writes what
 * `answer` returns and closes the stream; a refusal or a malformed frame ends the stream
 * through `failStream`. Nothing a peer sends can throw out of it.
 */
export function requestAnswerHandler(
  init: MeshServerInit & { maxRequestBytes: number },
  logger: Logger | undefined,
  answer: (frame: Uint8ArrayList) => Promise<object> | object,
  onAnswered?: () => void,
): StreamHandler {
  return async (stream: Stream, connection: Connection) => {
    const reader = frameReader(stream)
    try {
      const frame = await reader.next(init.maxRequestBytes, {
        signal: AbortSignal.timeout(init.requestTimeoutMs),
      })
      if (frame === undefined) {
        stream.abort(new Error('no request'))
        return
      }
      await writeJson(stream, await answer(frame))
      await stream.close({ signal: AbortSignal.timeout(init.requestTimeoutMs) })
      onAnswered?.()
    } catch (err) {
      await failStream(stream, err, logger, connection.remotePeer.toString()).catch(() => {})
    } finally {
      reader.release()
    }
  }
}

/** `/shoal/have/1.0.0`: which of these CIDs do you hold? */
export function haveHandler(init: MeshServerInit, components: MeshServerComponents): StreamHandler {
  return requestAnswerHandler(
    { ...init, maxRequestBytes: MESH_LIMITS.maxRequestBytes },
    components.logger,
    (frame) => ({ have: decodeHaveRequest(frame).map((cid) => components.holdings.has(cid)) }),
    () => components.onServed?.('have', 0),
  )
}

/**
 * Most bytes of chunk frames handed to the stream in one send (one Yamux frame). Larger
 * sends cost both sides a little less per MiB, but the peer sees nothing of a Yamux
 * frame until it is whole and times out a wait for one chunk after 10 s: at 1 MiB a
 * send still arrives in time over a 1 Mbit/s uplink.
 */
const SEND_BATCH_BYTES = 1024 * 1024

/**
 * Sends `lead` (the header and leaves frames) and then chunks `[from, to)`: one frame
 * per chunk, never copying a memory-tier body. Sends grow: the lead goes out with the
 * first chunk alone, so the peer starts verifying after one chunk is encrypted, and
 * each later send is twice the last, up to `SEND_BATCH_BYTES`. `meter` counts the
 * paid bytes of each send (`leadBytes` of the lead: the leaves, not the header) before it
 * is written: a client that verified them may sign for them before the write returns.
 */
async function sendChunks(
  stream: Stream,
  cid: Cid,
  request: ChunkRequest,
  lead: Uint8Array[],
  leadBytes: number,
  body: Uint8Array | AsyncIterable<Uint8Array> | undefined,
  signal: AbortSignal,
  egress: Pick<TokenBucket, 'take'> | undefined,
  meter: (bytes: number) => void,
): Promise<number> {
  if (body === undefined || request.from === request.to) {
    if (leadBytes > 0) meter(leadBytes)
    await writeFrames(stream, lead, { signal })
    return 0
  }
  const start = chunkSpan(cid, request.from).start
  const end = chunkSpan(cid, request.to - 1).end
  if (body instanceof Uint8Array) {
    // several chunks a send (write batching): fewer Yamux frames and Noise messages
    let batch: Uint8Array[] = [...lead]
    let batched = 0
    let metered = leadBytes
    let limit = 1
    for (let i = request.from; i < request.to; i++) {
      const span = chunkSpan(cid, i)
      batch.push(body.subarray(span.start - start, span.end - start))
      batched += span.end - span.start
      if (batched >= limit || i === request.to - 1) {
        await egress?.take(batched, { signal })
        meter(metered + batched)
        await writeFrames(stream, batch, { signal })
        metered = 0
        limit = Math.min(2 * Math.max(limit, batched), SEND_BATCH_BYTES)
        batch = []
        batched = 0
      }
    }
    return end - start
  }
  if (leadBytes > 0) meter(leadBytes)
  await writeFrames(stream, lead, { signal })
  // from disk: regroup the file's pieces into whole chunks
  let index = request.from
  let pending = new Uint8ArrayList()
  let want = chunkSpan(cid, index).end - chunkSpan(cid, index).start
  for await (const piece of body) {
    let rest = piece
    while (rest.length > 0) {
      const take = Math.min(rest.length, want - pending.byteLength)
      pending.append(rest.subarray(0, take))
      rest = rest.subarray(take)
      if (pending.byteLength === want) {
        await egress?.take(want, { signal })
        meter(want)
        await writeFrame(stream, pending, { signal })
        pending = new Uint8ArrayList()
        index++
        if (index < request.to) want = chunkSpan(cid, index).end - chunkSpan(cid, index).start
      }
    }
  }
  if (index !== request.to) throw new NotFoundError(`${cid.text} ended early on disk`)
  return end - start
}

/** `/shoal/chunk/1.0.0`: send me chunks `[from, to)` of a CID (and its leaves). */
export function chunkHandler(init: MeshServerInit, components: MeshServerComponents): StreamHandler {
  return async (stream: Stream, connection: Connection) => {
    const reader = frameReader(stream)
    const peer = connection.remotePeer.toString()
    const controller = new AbortController()
    const onClose = () => controller.abort()
    stream.addEventListener('close', onClose)
    let answered = false
    try {
      const frame = await reader.next(MESH_LIMITS.maxRequestBytes, {
        signal: AbortSignal.timeout(init.requestTimeoutMs),
      })
      reader.release()
      if (frame === undefined) {
        stream.abort(new Error('no request'))
        return
      }
      const request = decodeChunkRequest(frame)
      const cid = request.parsed
      const { holdings } = components
      if (!holdings.has(cid)) throw new NotFoundError(`this node does not hold ${cid.text}`)
      const leaves = request.leaves ? await holdings.leaves(cid, { signal: controller.signal }) : undefined
      if (request.leaves && leaves === undefined)
        throw new NotFoundError(`this node has no leaves of ${cid.text}`)
      let body: Uint8Array | AsyncIterable<Uint8Array> | undefined
      if (request.from < request.to) {
        const start = chunkSpan(cid, request.from).start
        const end = chunkSpan(cid, request.to - 1).end
        body = await holdings.read(cid, start, end, { signal: controller.signal })
        if (body === undefined) throw new NotFoundError(`${cid.text} is no longer held`)
      }
      const { session } = request
      const meterSession = components.meter
      const meter =
        session === undefined || meterSession === undefined
          ? () => {}
          : (n: number) => meterSession(session, n)
      answered = true
      const lead = [jsonFrame({ status: 'ok' }), ...(leaves === undefined ? [] : [leaves])]
      const bytes = await sendChunks(
        stream,
        cid,
        request,
        lead,
        leaves?.byteLength ?? 0,
        body,
        controller.signal,
        components.egress,
        meter,
      )
      await stream.close({ signal: AbortSignal.timeout(init.requestTimeoutMs) })
      components.onServed?.('chunk', bytes)
    } catch (err) {
      if (!controller.signal.aborted)
        await failStream(stream, err, components.logger, peer, answered).catch(() => {})
      else components.logger?.debug({ peer, code: codeOf(err) }, 'mesh chunk stream closed by the peer')
    } finally {
      reader.release()
      stream.removeEventListener('close', onClose)
    }
  }
}
