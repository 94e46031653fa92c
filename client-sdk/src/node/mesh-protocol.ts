/**
 * The mesh's wire protocols, shared by edge nodes and the SDK's Node mesh client
 * (docs/mesh.md has the full description):
 *
 * - `/shoal/have/1.0.0`: one request frame `{"cids":[…]}` (≤ 32 CIDs), one answer
 *   frame `{"have":[true,false,…]}`.
 * - `/shoal/chunk/1.0.0`: one request frame `{"cid","from","to","leaves"}` for chunks
 *   `[from, to)`; the answer is a header frame `{"status":"ok"}` (or `{"status":"error",
 *   "code","message"}`), then the CID's leaf list when asked for, then one frame per
 *   chunk holding exactly that chunk's bytes.
 *
 * Every frame is an unsigned-varint length prefix and the bytes. Limits are strict: a
 * frame longer than what its place allows, a prefix longer than 4 bytes, JSON that is
 * not the expected shape, or a chunk frame of the wrong length fails the stream with a
 * typed error (`SHOAL_ERR_TOO_LARGE`, `SHOAL_ERR_INVALID_FORMAT`); chunk bytes are
 * checked against the CID's leaves as they arrive (`SHOAL_ERR_INTEGRITY`, with the
 * evidence a tracker report needs).
 */
import { createHash } from 'node:crypto'
import type { Stream } from '@libp2p/interface'
import {
  AbortError,
  type Cid,
  chunkCount,
  chunkSpan,
  ERROR_CODES,
  type ErrorCode,
  IntegrityError,
  InvalidFormatError,
  isCidText,
  parseCid,
  ShoalError,
  TimeoutError,
  TooLargeError,
  verifyLeaves,
} from '@shoal/protocol'
import { Uint8ArrayList } from 'uint8arraylist'

export const HAVE_PROTOCOL = '/shoal/have/1.0.0'
export const CHUNK_PROTOCOL = '/shoal/chunk/1.0.0'

/** The mesh's size limits; both ends enforce them. */
export const MESH_LIMITS = {
  /** Largest request frame (chunk request, have request). */
  maxRequestBytes: 4096,
  /** Largest response header frame. */
  maxHeaderBytes: 1024,
  /** CIDs in one have request. */
  maxHaveCids: 32,
  /** Chunks in one chunk request. */
  maxChunksPerRequest: 1024,
  /** Largest leaf list sent in one frame (262 144 chunks: 64 GiB at 256 KiB chunks). */
  maxLeavesBytes: 8 * 2 ** 20,
  /** Longest length prefix: 4 varint bytes encode up to 2^28 − 1. */
  maxPrefixBytes: 4,
} as const

/** A chunk request as sent on `/shoal/chunk/1.0.0`. */
export interface ChunkRequest {
  cid: string
  /** First chunk index. */
  from: number
  /** End chunk index (exclusive); `from === to` asks for the leaves only. */
  to: number
  /** Whether the answer starts with the CID's leaf list. */
  leaves: boolean
  /**
   * The payment session the bytes count for (opened on `/shoal/receipt/1.0.0`), like the
   * `shoal-session` header of an HTTP request; absent when unpaid.
   */
  session?: string
}

const SESSION_RE = /^0x[0-9a-f]{64}$/

/** The header frame of a chunk answer. */
export type ChunkResponseHeader = { status: 'ok' } | { status: 'error'; code: ErrorCode; message: string }

/** Evidence of bad bytes from a peer: what a tracker report carries. */
export interface MeshIntegrityEvidence {
  cid: string
  chunk: number
  /** Leaf hash (`SHA-256(0x00 ‖ bytes)`) of the bytes received, lowercase 0x-hex. */
  badHash: `0x${string}`
}

/** `SHOAL_ERR_INTEGRITY` with the evidence of which chunk was wrong. */
export class MeshIntegrityError extends IntegrityError {
  readonly evidence: MeshIntegrityEvidence
  constructor(message: string, evidence: MeshIntegrityEvidence) {
    super(message)
    this.evidence = evidence
  }
}

/**
 * An error the peer answered with (its error header): the peer refused, it did not
 * misbehave. `remote` tells it from errors found in what the peer sent.
 */
export class MeshPeerError extends ShoalError {
  override name = 'MeshPeerError'
  readonly remote = true
}

// ---------------------------------------------------------------- frames

/** Unsigned LEB128 varint of a non-negative safe integer. */
export function encodeVarint(value: number): Uint8Array {
  const out: number[] = []
  let v = value
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80)
    v = Math.floor(v / 0x80)
  }
  out.push(v)
  return Uint8Array.from(out)
}

/** Writes one length-prefixed frame; waits for the stream to drain when its buffer is full. */
export async function writeFrame(
  stream: Stream,
  bytes: Uint8Array | Uint8ArrayList,
  options: { signal?: AbortSignal } = {},
): Promise<void> {
  const list = new Uint8ArrayList(encodeVarint(bytes.byteLength))
  list.append(bytes)
  if (!stream.send(list)) await stream.onDrain(options)
}

/**
 * Writes several frames in one send: one Yamux frame, cut by Noise into full 64 KiB
 * messages (a send per chunk would end each chunk with a tiny Noise message).
 */
export async function writeFrames(
  stream: Stream,
  frames: readonly (Uint8Array | Uint8ArrayList)[],
  options: { signal?: AbortSignal } = {},
): Promise<void> {
  const list = new Uint8ArrayList()
  for (const bytes of frames) {
    list.append(encodeVarint(bytes.byteLength))
    list.append(bytes)
  }
  if (!stream.send(list)) await stream.onDrain(options)
}

/** A JSON message's bytes, to be framed (`writeFrames`) together with what follows it. */
export function jsonFrame(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value))
}

export async function writeJson(stream: Stream, value: unknown, options: { signal?: AbortSignal } = {}) {
  await writeFrame(stream, jsonFrame(value), options)
}

export interface FrameReader {
  /**
   * The next frame (at most `maxBytes` long), or `undefined` when the remote closed
   * cleanly between frames. Throws `TooLargeError` or `InvalidFormatError` on a bad
   * frame, `AbortError`/`TimeoutError` when the signal fires.
   */
  next(maxBytes: number, options?: { signal?: AbortSignal }): Promise<Uint8ArrayList | undefined>
  /** Stops reading (removes the listeners). */
  release(): void
}

export interface FrameReaderInit {
  /** Buffered bytes above which the stream is paused (backpressure through yamux's window). */
  highWaterMark?: number
}

const DEFAULT_HIGH_WATER_MARK = 16 * 2 ** 20

/**
 * Reads length-prefixed frames from a libp2p stream, with backpressure: past
 * `highWaterMark` buffered bytes the stream is paused, so the remote's window closes.
 *
 * @example
 * const reader = frameReader(stream)
 * const frame = await reader.next(MESH_LIMITS.maxRequestBytes, { signal })
 */
export function frameReader(stream: Stream, init: FrameReaderInit = {}): FrameReader {
  const highWater = init.highWaterMark ?? DEFAULT_HIGH_WATER_MARK
  const buffer = new Uint8ArrayList()
  let ended = false
  let failure: Error | undefined
  let wake: (() => void) | undefined
  let paused = false
  /** Bytes the waiting `next` needs buffered before it can return: no wake-up per message below it. */
  let want = 1
  const notify = () => {
    const w = wake
    wake = undefined
    w?.()
  }
  const onMessage = (evt: { data: Uint8Array | Uint8ArrayList }) => {
    buffer.append(evt.data)
    if (!paused && buffer.byteLength > highWater && stream.status === 'open') {
      paused = true
      stream.pause()
    }
    if (buffer.byteLength >= want || paused) notify()
  }
  const onClose = (evt: Event & { error?: Error }) => {
    ended = true
    if (evt.error !== undefined) failure = evt.error
    notify()
  }
  const onRemoteCloseWrite = () => {
    ended = true
    notify()
  }
  stream.addEventListener('message', onMessage)
  stream.addEventListener('close', onClose)
  stream.addEventListener('remoteCloseWrite', onRemoteCloseWrite)
  if (stream.readableEnded || stream.status !== 'open') ended = true

  const wait = (signal: AbortSignal | undefined) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted === true) {
        reject(abortReason(signal))
        return
      }
      const onAbort = () => {
        wake = undefined
        reject(abortReason(signal!))
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      wake = () => {
        signal?.removeEventListener('abort', onAbort)
        resolve()
      }
    })

  /** Decodes the prefix at the head of the buffer: [length, prefixBytes] or undefined when incomplete. */
  const prefix = (): [number, number] | undefined => {
    let value = 0
    let factor = 1
    const n = Math.min(buffer.byteLength, MESH_LIMITS.maxPrefixBytes)
    for (let i = 0; i < n; i++) {
      const b = buffer.get(i)
      value += (b & 0x7f) * factor
      factor *= 0x80
      if ((b & 0x80) === 0) {
        if (i > 0 && b === 0) throw new InvalidFormatError('frame length prefix is not minimal')
        return [value, i + 1]
      }
    }
    if (n === MESH_LIMITS.maxPrefixBytes)
      throw new InvalidFormatError(`frame length prefix is longer than ${MESH_LIMITS.maxPrefixBytes} bytes`)
    return undefined
  }

  return {
    async next(maxBytes, options = {}) {
      while (true) {
        const head = buffer.byteLength > 0 ? prefix() : undefined
        if (head !== undefined) {
          const [length, skip] = head
          if (length > maxBytes)
            throw new TooLargeError(`frame of ${length} bytes is larger than the ${maxBytes} allowed here`)
          if (buffer.byteLength >= skip + length) {
            const frame = buffer.sublist(skip, skip + length)
            buffer.consume(skip + length)
            want = 1
            if (paused && buffer.byteLength <= highWater / 2 && stream.status === 'open') {
              paused = false
              stream.resume()
            }
            return frame
          }
          // the frame is bigger than what is buffered: let the remote send it
          if (paused && stream.status === 'open') {
            paused = false
            stream.resume()
          }
          want = skip + length
        } else {
          want = buffer.byteLength + 1
        }
        if (ended) {
          if (failure !== undefined) throw failure
          if (buffer.byteLength === 0) return undefined
          throw new InvalidFormatError('the stream ended in the middle of a frame')
        }
        await wait(options.signal)
      }
    },
    release() {
      stream.removeEventListener('message', onMessage)
      stream.removeEventListener('close', onClose)
      stream.removeEventListener('remoteCloseWrite', onRemoteCloseWrite)
    },
  }
}

function abortReason(signal: AbortSignal): Error {
  const reason = signal.reason as { name?: string } | undefined
  return reason?.name === 'TimeoutError'
    ? new TimeoutError('the mesh peer did not answer in time')
    : new AbortError('the operation was aborted')
}

// ---------------------------------------------------------------- messages

/** Parses a JSON frame into an object; `InvalidFormatError` otherwise. */
export function parseJsonFrame(frame: Uint8ArrayList | Uint8Array, what: string): Record<string, unknown> {
  let value: unknown
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(frame.subarray()))
  } catch (cause) {
    throw new InvalidFormatError(`${what} is not JSON`, { cause })
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new InvalidFormatError(`${what} is not a JSON object`)
  return value as Record<string, unknown>
}

const isIndex = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0

/** Validates a chunk request; returns it with its CID parsed. */
export function decodeChunkRequest(frame: Uint8ArrayList | Uint8Array): ChunkRequest & { parsed: Cid } {
  const v = parseJsonFrame(frame, 'chunk request')
  const keys = Object.keys(v)
  const fields = Object.hasOwn(v, 'session') ? 5 : 4
  if (keys.length !== fields || !['cid', 'from', 'to', 'leaves'].every((k) => Object.hasOwn(v, k)))
    throw new InvalidFormatError('a chunk request has exactly the fields cid, from, to, leaves (and session)')
  if (fields === 5 && (typeof v.session !== 'string' || !SESSION_RE.test(v.session)))
    throw new InvalidFormatError('chunk request: session is 0x and 64 lowercase hex digits')
  if (!isCidText(v.cid)) throw new InvalidFormatError('chunk request: cid is not a CID')
  const parsed = parseCid(v.cid)
  const { from, to, leaves } = v
  if (!isIndex(from) || !isIndex(to))
    throw new InvalidFormatError('chunk request: from and to are chunk indexes')
  if (typeof leaves !== 'boolean') throw new InvalidFormatError('chunk request: leaves is a boolean')
  checkRange(parsed, from, to, leaves)
  return { cid: v.cid, from, to, leaves, parsed, ...(fields === 5 ? { session: v.session as string } : {}) }
}

function checkRange(cid: Cid, from: number, to: number, leaves: boolean): void {
  const count = chunkCount(cid)
  if (from > to || to > count)
    throw new InvalidFormatError(`chunk request: [${from}, ${to}) is not inside the ${count} chunks`)
  if (from === to && !leaves) throw new InvalidFormatError('chunk request: asks for nothing')
  if (to - from > MESH_LIMITS.maxChunksPerRequest)
    throw new TooLargeError(`chunk request: at most ${MESH_LIMITS.maxChunksPerRequest} chunks per request`)
  if (leaves && count * 32 > MESH_LIMITS.maxLeavesBytes)
    throw new TooLargeError(`${cid.text} has too many chunks to send its leaves over the mesh`)
}

export function decodeChunkResponseHeader(frame: Uint8ArrayList | Uint8Array): ChunkResponseHeader {
  const v = parseJsonFrame(frame, 'chunk answer header')
  if (v.status === 'ok') return { status: 'ok' }
  if (
    v.status === 'error' &&
    typeof v.code === 'string' &&
    Object.hasOwn(ERROR_CODES, v.code) &&
    typeof v.message === 'string'
  ) {
    return { status: 'error', code: v.code as ErrorCode, message: v.message.slice(0, 200) }
  }
  throw new InvalidFormatError('chunk answer header has no valid status')
}

export function decodeHaveRequest(frame: Uint8ArrayList | Uint8Array): Cid[] {
  const v = parseJsonFrame(frame, 'have request')
  if (Object.keys(v).length !== 1 || !Array.isArray(v.cids))
    throw new InvalidFormatError('a have request has exactly the field cids')
  if (v.cids.length === 0 || v.cids.length > MESH_LIMITS.maxHaveCids)
    throw new InvalidFormatError(`a have request names 1 to ${MESH_LIMITS.maxHaveCids} CIDs`)
  return v.cids.map((c: unknown) => {
    if (!isCidText(c)) throw new InvalidFormatError('have request: an entry is not a CID')
    return parseCid(c)
  })
}

export function decodeHaveResponse(frame: Uint8ArrayList | Uint8Array, count: number): boolean[] {
  const v = parseJsonFrame(frame, 'have answer')
  if (!Array.isArray(v.have) || v.have.length !== count || !v.have.every((h) => typeof h === 'boolean'))
    throw new InvalidFormatError(`a have answer is {"have": [${count} booleans]}`)
  return v.have as boolean[]
}

// ---------------------------------------------------------------- requesting side

/**
 * Asks a peer which of `cids` it holds, over a fresh `/shoal/have/1.0.0` stream.
 *
 * @example
 * const [has] = await askHave(await libp2p.dialProtocol(peer, HAVE_PROTOCOL), [cid], { signal })
 */
export async function askHave(stream: Stream, cids: Cid[], options: { signal?: AbortSignal } = {}) {
  const reader = frameReader(stream)
  try {
    await writeJson(stream, { cids: cids.map((c) => c.text) }, options)
    await stream.close(options)
    const frame = await reader.next(MESH_LIMITS.maxRequestBytes, options)
    if (frame === undefined) throw new InvalidFormatError('the peer closed without a have answer')
    return decodeHaveResponse(frame, cids.length)
  } catch (err) {
    stream.abort(err as Error)
    throw err
  } finally {
    reader.release()
  }
}

/** One verified chunk: its index and its bytes (the frame's parts, not copied). */
export interface MeshChunk {
  index: number
  bytes: Uint8ArrayList
}

export interface RequestChunksOptions {
  signal?: AbortSignal
  /** The CID's verified leaves, when the caller holds them; else they are asked for and verified. */
  leaves?: Uint8Array
  /** Told the verified leaves when they came from the peer. */
  onLeaves?: (leaves: Uint8Array) => void
  /** Longest wait for any one frame (header, leaves, a chunk): a stalled peer fails with `SHOAL_ERR_TIMEOUT`. */
  stallTimeoutMs?: number
  /** The payment session the bytes count for (`ChunkRequest.session`). */
  session?: string
}

export const DEFAULT_MESH_STALL_TIMEOUT_MS = 10_000

const hex = (bytes: Uint8Array): `0x${string}` => `0x${Buffer.from(bytes).toString('hex')}`

/** The leaf hash of a chunk held in parts, without copying it. */
function leafHash(list: Uint8ArrayList): Buffer {
  const h = createHash('sha256').update(LEAF_PREFIX)
  for (const part of list) h.update(part)
  return h.digest()
}
const LEAF_PREFIX = new Uint8Array([0])

/**
 * Fetches chunks `[from, to)` of `cid` over a fresh `/shoal/chunk/1.0.0` stream and
 * yields each one after it matched its leaf. The leaves are the caller's (verified)
 * or the peer's, checked against the CID before any chunk is read. A bad chunk throws
 * `MeshIntegrityError` with the evidence; the stream is aborted on every error.
 *
 * @example
 * for await (const chunk of requestChunks(stream, cid, 0, chunkCount(cid))) store(chunk)
 */
export async function* requestChunks(
  stream: Stream,
  cid: Cid,
  from: number,
  to: number,
  options: RequestChunksOptions = {},
): AsyncGenerator<MeshChunk, void, undefined> {
  const wantLeaves = options.leaves === undefined
  checkRange(cid, from, to, wantLeaves)
  const reader = frameReader(stream, { highWaterMark: Math.max(DEFAULT_HIGH_WATER_MARK, 2 * cid.chunkSize) })
  let done = false
  try {
    const request: ChunkRequest = { cid: cid.text, from, to, leaves: wantLeaves }
    if (options.session !== undefined) request.session = options.session
    await writeJson(stream, request, options)
    await stream.close(options)
    const stallMs = options.stallTimeoutMs ?? DEFAULT_MESH_STALL_TIMEOUT_MS
    // one signal for every frame, its stall timer armed only while a frame is awaited
    // (not an AbortSignal.timeout and an AbortSignal.any per chunk)
    const stall = new AbortController()
    const signal = options.signal ? AbortSignal.any([stall.signal, options.signal]) : stall.signal
    const onStall = () => stall.abort(new DOMException('the mesh peer stalled', 'TimeoutError'))
    const nextFrame = async (maxBytes: number) => {
      const timer = setTimeout(onStall, stallMs)
      try {
        return await reader.next(maxBytes, { signal })
      } finally {
        clearTimeout(timer)
      }
    }
    const headerFrame = await nextFrame(MESH_LIMITS.maxHeaderBytes)
    if (headerFrame === undefined) throw new InvalidFormatError('the peer closed without an answer')
    const header = decodeChunkResponseHeader(headerFrame)
    if (header.status === 'error') throw new MeshPeerError(header.code, `mesh peer: ${header.message}`)
    let leaves = options.leaves
    if (leaves === undefined) {
      const expected = chunkCount(cid) * 32
      const frame = await nextFrame(expected)
      if (frame === undefined || frame.byteLength !== expected)
        throw new InvalidFormatError(`the leaves frame of ${cid.text} must be ${expected} bytes`)
      leaves = await verifyLeaves(cid, frame.subarray())
      options.onLeaves?.(leaves)
    }
    for (let index = from; index < to; index++) {
      const span = chunkSpan(cid, index)
      const length = span.end - span.start
      const frame = await nextFrame(length)
      if (frame === undefined || frame.byteLength !== length)
        throw new InvalidFormatError(`chunk ${index} of ${cid.text} must be a frame of ${length} bytes`)
      const got = leafHash(frame)
      if (!got.equals(leaves.subarray(index * 32, index * 32 + 32))) {
        throw new MeshIntegrityError(
          `chunk ${index} of ${cid.text} from a mesh peer does not match its leaf`,
          {
            cid: cid.text,
            chunk: index,
            badHash: hex(got),
          },
        )
      }
      yield { index, bytes: frame }
    }
    done = true
  } catch (err) {
    stream.abort(err as Error)
    throw err
  } finally {
    reader.release()
    if (!done && stream.status === 'open') stream.abort(new AbortError('the reader stopped early'))
  }
}
