/**
 * Getting verified bytes of a CID from untrusted sources: the leaf list, then the body.
 *
 * The body is one async generator over `verifyStream` (the only place bytes are checked):
 * a hedged race picks a node for the chunk-aligned span; its bytes go through the
 * verifier, and only verified bytes are yielded. When the node fails mid-stream (error,
 * stall, wrong bytes), the next race asks another node for the rest of the span from the
 * next unverified byte — always a chunk boundary, so no byte is repeated or skipped.
 * Wrong bytes are evidence: the chunk's hash goes to `onIntegrityFailure`. When every
 * node failed and the site names an origin, the origin serves the rest, verified against
 * the same CID.
 */
import {
  AbortError,
  type AlignedRange,
  alignRange,
  type Cid,
  chunkSpan,
  computeCid,
  createChunkVerifier,
  hashChunk,
  IntegrityError,
  InvalidArgumentError,
  isShoalError,
  type Leaves,
  TooLargeError,
  type VerifiedChunk,
  verifyLeaves,
  verifyStream,
} from '@shoal/protocol'
import type { Hex } from 'viem'
import { infoOf, isAbort, unavailable } from './errors.ts'
import type { ClientEvent } from './events.ts'
import { type LeavesCache, leavesLength, readAll, rootLeaves } from './leaves.ts'
import type { NodeStats } from './node-stats.ts'
import type { NodeDirectory } from './nodes.ts'
import type { Dispatch, Source, SourceResponse } from './pipeline/dispatch.ts'
import { type RaceWin, race } from './race.ts'
import type { FetchPayment } from './receipts/payments.ts'
import { toHex } from './reports.ts'

export interface IntegrityFailure {
  source: Source
  cid: Cid
  chunk: number
  badHash: Hex
  /** Bytes received from the source in this request. */
  bytes: number
  ttfbMs: number
}

export interface ContentFetcherInit {
  hedge: {
    enabled: boolean
    quantile: number
    minDelayMs: number
    maxDelayMs: number
    initialDelayMs: number
    minSamples: number
    maxParallel: number
  }
  originBufferBytes: number
}

export interface ContentFetcherComponents {
  dispatch: Dispatch
  directory: NodeDirectory
  stats: NodeStats
  leavesCache: LeavesCache
  emit(event: ClientEvent): void
  onIntegrityFailure(failure: IntegrityFailure): void
}

/**
 * What one fetch has learnt, shared by its leaves request and its body: the nodes that
 * failed (skipped from then on), every failure (listed by `UnavailableError`), and
 * whether the tracker was already asked for more nodes.
 */
export interface FetchState {
  failed: Map<string, Source>
  failures: { source: string; error: unknown }[]
  reselect: { reselected: boolean }
}

export function createFetchState(): FetchState {
  return { failed: new Map(), failures: [], reselect: { reselected: false } }
}

export interface BodyRequest {
  cid: Cid
  /** From `leaves()`; `undefined` only when no node could give them and `origin` is set. */
  leaves: Leaves | undefined
  start: number
  end: number
  /** The object's URL at the site's origin, when the manifest names one. */
  origin?: string
  signal: AbortSignal
  /** Shared with the `leaves()` call of the same fetch (default: a fresh one). */
  state?: FetchState
  /** Pays the nodes for verified bytes (a client with an account). */
  payment?: FetchPayment
}

export interface ContentFetcher {
  /**
   * The CID's verified leaves: from the root (one chunk), the cache, or the nodes.
   * With `origin`, a CID whose leaves no node gives resolves to `undefined` (the origin
   * path verifies the whole object instead); without, it throws `UnavailableError`.
   */
  leaves(
    cid: Cid,
    options: { signal: AbortSignal; origin?: string; state?: FetchState; payment?: FetchPayment },
  ): Promise<Leaves | undefined>
  /** Verified bytes `[start, end)` of the CID. */
  body(request: BodyRequest): AsyncGenerator<Uint8Array, void, undefined>
  /**
   * Verified bytes `[start, end)` of the CID when they lie in one chunk, as one buffer: the
   * same sources, failover and evidence as `body`, without a stream (a chunk is held until
   * it verified anyway). `InvalidArgumentError` when the range spans more than one chunk.
   */
  small(request: BodyRequest): Promise<Uint8Array>
}

const contentUrl = (source: Source, cid: Cid) => `${source.url}c/${cid.text}`

/**
 * @example
 * const content = createContentFetcher(init, { dispatch, directory, stats, leavesCache, emit, onIntegrityFailure })
 * const leaves = await content.leaves(cid, { signal })
 * for await (const bytes of content.body({ cid, leaves, start: 0, end: cid.size, signal })) …
 */
export function createContentFetcher(
  init: ContentFetcherInit,
  components: ContentFetcherComponents,
): ContentFetcher {
  const { dispatch, directory, stats, leavesCache, emit } = components
  const { hedge } = init

  const delayFor = (source: Source): number => {
    if (!hedge.enabled || source.kind !== 'node') return Number.POSITIVE_INFINITY
    const q =
      stats.ttfbQuantile(source.url, hedge.quantile, hedge.minSamples) ??
      stats.globalQuantile(hedge.quantile, hedge.minSamples)
    if (q === undefined) return hedge.initialDelayMs
    return Math.min(hedge.maxDelayMs, Math.max(hedge.minDelayMs, q))
  }

  const raceNodes = <R>(
    cid: Cid,
    state: FetchState,
    ticket: Hex | undefined,
    signal: AbortSignal,
    what: string,
    start: (source: Source, signal: AbortSignal, abort: (reason: Error) => void) => Promise<R>,
    dispose?: (result: R) => void,
  ) =>
    race<Source, R>({
      next: directory.candidates(cid.text, state.failed, state.reselect, {
        signal,
        ...(ticket === undefined ? {} : { ticket }),
      }),
      nameOf: (s) => s.url,
      start,
      delayFor,
      maxParallel: hedge.enabled ? hedge.maxParallel : 1,
      signal,
      what,
      failures: state.failures,
      onHedge: (from, to, afterMs) =>
        emit({ type: 'hedge', cid: cid.text, from: from.url, to: to.url, afterMs }),
      onError: (source, error) => {
        state.failed.set(source.url, source)
        emit({ type: 'node-error', cid: cid.text, node: source.url, error: infoOf(error) })
      },
      onLose: (source, elapsedMs) => stats.recordSlow(source.url, elapsedMs),
      ...(dispose === undefined ? {} : { dispose }),
    })

  const leaves = async (
    cid: Cid,
    options: { signal: AbortSignal; origin?: string; state?: FetchState; payment?: FetchPayment },
  ) => {
    const cached = leavesCache.get(cid)
    if (cached !== undefined) return cached
    const fromRoot = await rootLeaves(cid)
    if (fromRoot !== undefined) {
      leavesCache.set(cid, fromRoot)
      return fromRoot
    }
    const length = leavesLength(cid)
    const state = options.state ?? createFetchState()
    const { payment } = options
    const ticket = payment === undefined ? undefined : await payment.ticket(options.signal)
    // a tracker that fails to select is the fetch's error, as it is
    const listed = directory.nodesFor(cid.text, { signal: options.signal, ...(ticket ? { ticket } : {}) })
    if (listed instanceof Promise) await listed
    try {
      const won = await raceNodes(
        cid,
        state,
        ticket,
        options.signal,
        `no node could give the leaves of ${cid.text}`,
        async (source, signal, abort) => {
          const headers = payment === undefined ? undefined : await payment.headerFor(source, signal)
          const res = await dispatch({
            source,
            url: `${contentUrl(source, cid)}/leaves`,
            size: length,
            ...(headers === undefined ? {} : { headers }),
            signal,
            abort,
          })
          try {
            // a leaf list that does not rebuild the root fails this node; the next is tried
            const verified = await verifyLeaves(cid, await readAll(res.body, length))
            payment?.credit(source, length)
            return verified
          } catch (err) {
            if (!signal.aborted) stats.recordFailure(source.url, 'error')
            throw err
          } finally {
            res.close()
          }
        },
      )
      won.release()
      leavesCache.set(cid, won.result)
      return won.result
    } catch (err) {
      if (options.origin !== undefined && !isAbort(err)) return undefined
      throw err
    }
  }

  /** The whole object from the origin, held until it matched the CID (no leaves to verify chunks with). */
  async function* wholeFromOrigin(
    request: BodyRequest,
    origin: string,
    failures: { source: string; error: unknown }[],
  ): AsyncGenerator<Uint8Array, void, undefined> {
    const { cid, signal } = request
    if (cid.size > init.originBufferBytes) {
      failures.push({
        source: origin,
        error: new TooLargeError(
          `no node gave the leaves of ${cid.text}, and at ${cid.size} bytes it is too large to verify whole from the origin (originBufferBytes ${init.originBufferBytes})`,
        ),
      })
      throw unavailable(`no source could serve ${cid.text}`, failures)
    }
    const source: Source = { kind: 'origin', url: origin }
    let res: SourceResponse | undefined
    const pieces: Uint8Array[] = []
    try {
      res = await dispatch({ source, url: origin, size: cid.size, signal })
      const body = res.body
      const kept = (async function* () {
        for await (const piece of body) {
          pieces.push(piece)
          yield piece
        }
      })()
      // no signal here: aborting `signal` aborts the request, which ends `kept`
      const computed = await computeCid(kept, { chunkSize: cid.chunkSize })
      if (computed.cid.text !== cid.text)
        throw new IntegrityError(`the origin's bytes are not ${cid.text} (they are ${computed.cid.text})`)
      leavesCache.set(cid, computed.leaves)
    } catch (err) {
      if (signal.aborted) throw new AbortError('the operation was aborted', { cause: signal.reason })
      failures.push({ source: origin, error: err })
      throw unavailable(`no source could serve ${cid.text}`, failures)
    } finally {
      res?.close()
    }
    let at = 0
    for (const piece of pieces) {
      const from = Math.max(request.start, at)
      const to = Math.min(request.end, at + piece.length)
      if (to > from) yield piece.subarray(from - at, to - at)
      at += piece.length
    }
  }

  /** What a body request needs across its attempts: the fetch's state, its ticket, whether the origin took over. */
  interface Attempts {
    request: BodyRequest
    state: FetchState
    ticket: Hex | undefined
    leaves: Leaves | undefined
    fromOrigin: boolean
  }

  // synchronous when nothing is to be waited for (unpaid, nodes at hand): the request then
  // leaves before the caller's next statement, and the caller can work while it is out
  const open = (request: BodyRequest): Attempts | Promise<Attempts> => {
    const { cid, signal, payment } = request
    const attempts = (ticket: Hex | undefined): Attempts => ({
      request,
      state: request.state ?? createFetchState(),
      ticket,
      leaves: request.leaves,
      fromOrigin: false,
    })
    if (payment === undefined) {
      const listed = directory.nodesFor(cid.text, { signal })
      return listed instanceof Promise ? listed.then(() => attempts(undefined)) : attempts(undefined)
    }
    return (async () => {
      const ticket = await payment.ticket(signal)
      await directory.nodesFor(cid.text, ticket === undefined ? { signal } : { signal, ticket })
      return attempts(ticket)
    })()
  }

  /**
   * A source answering for the chunk-aligned `span` (from `at`): the winner of a hedged
   * race over the nodes, else the origin. `undefined` when only the origin is left and no
   * leaves are known (then the origin's whole object is verified against the CID).
   */
  const sourceFor = (
    attempts: Attempts,
    span: AlignedRange,
    at: number,
  ): Promise<RaceWin<Source, SourceResponse> | undefined> => {
    const { cid, signal, origin, payment } = attempts.request
    const { state } = attempts
    // the whole object is asked without Range: a plain GET is what caches answer fastest
    const whole = span.fetchStart === 0 && span.fetchEnd === cid.size
    const send = (
      source: Source,
      sig: AbortSignal,
      abort: (reason: Error) => void,
      headers: Record<string, string> | undefined,
    ) =>
      dispatch({
        source,
        url: source.kind === 'origin' ? source.url : contentUrl(source, cid),
        ...(whole ? {} : { range: { start: span.fetchStart, end: span.fetchEnd } }),
        ...(headers === undefined ? {} : { headers }),
        size: cid.size,
        // the last chunk received stays at hand as evidence, should it not verify
        retain: cid.chunkSize,
        signal: sig,
        abort,
      })
    // a paying fetch names its session with the node (opened once per node, ticket and epoch)
    const ask = (source: Source, sig: AbortSignal, abort: (reason: Error) => void) =>
      payment === undefined
        ? send(source, sig, abort, undefined)
        : payment.headerFor(source, sig).then((headers) => send(source, sig, abort, headers))
    const fromOrigin = async (): Promise<RaceWin<Source, SourceResponse> | undefined> => {
      if (origin === undefined) throw unavailable(`no source could serve ${cid.text}`, state.failures)
      attempts.leaves ??= leavesCache.get(cid)
      if (attempts.leaves === undefined) return undefined
      const once: Source[] = [{ kind: 'origin', url: origin }]
      return race<Source, SourceResponse>({
        next: () => once.shift(),
        nameOf: (s) => s.url,
        start: ask,
        delayFor: () => Number.POSITIVE_INFINITY,
        maxParallel: 1,
        signal,
        what: `no source could serve ${cid.text}`,
        failures: state.failures,
        dispose: (r) => r.close(),
      })
    }
    if (attempts.fromOrigin) return fromOrigin()
    const raced = raceNodes(
      cid,
      state,
      attempts.ticket,
      signal,
      `no node could serve ${cid.text}`,
      ask,
      (r) => r.close(),
    )
    // no origin to fall back to: the race's own promise, as it is (no turn added)
    if (origin === undefined) return raced
    return raced.catch((err: unknown) => {
      if (isAbort(err)) throw err
      attempts.fromOrigin = true
      emit({ type: 'origin-fallback', cid: cid.text, origin, at })
      return fromOrigin()
    })
  }

  /**
   * A source failed while its bytes were read, the last verified byte being `at`: record
   * it, file the evidence of a chunk that did not match, and let the caller go on with
   * the next source; throws when the fetch cannot go on (aborted, the origin failed).
   */
  const sourceFailed = async (
    attempts: Attempts,
    won: RaceWin<Source, SourceResponse>,
    span: AlignedRange,
    at: number,
    err: unknown,
  ): Promise<void> => {
    const { cid, signal } = attempts.request
    const { state } = attempts
    const { candidate: source, result: res } = won
    if (signal.aborted) throw new AbortError('the operation was aborted', { cause: signal.reason })
    state.failures.push({ source: source.url, error: err })
    if (source.kind === 'origin') throw unavailable(`no source could serve ${cid.text}`, state.failures)
    state.failed.set(source.url, source)
    if (isShoalError(err) && err.code === 'SHOAL_ERR_INTEGRITY') {
      // the chunk after the last verified byte did not match its leaf (or the body was cut short)
      const chunk = Math.floor(at / cid.chunkSize)
      const { start: chunkStart, end: chunkEnd } = chunkSpan(cid, chunk)
      const bad = res.recent(chunkStart - span.fetchStart, chunkEnd - span.fetchStart)
      if (bad !== undefined) {
        stats.recordFailure(source.url, 'integrity')
        const badHash = toHex(await hashChunk(bad))
        components.onIntegrityFailure({
          source,
          cid,
          chunk,
          badHash,
          bytes: res.progress.bytes,
          ttfbMs: res.ttfbMs,
        })
      } else {
        stats.recordFailure(source.url, 'error')
      }
    }
    emit({ type: 'failover', cid: cid.text, node: source.url, at, error: infoOf(err) })
  }

  /** Done with a source: its abort is no longer forwarded; a request not read to its end is closed. */
  const settle = (won: RaceWin<Source, SourceResponse>, complete: boolean) => {
    won.release()
    // a request read to its end needs no abort (that would cost an error object and an event)
    if (!complete) {
      won.result.close()
      won.controller.abort()
    }
  }

  async function* body(request: BodyRequest): AsyncGenerator<Uint8Array, void, undefined> {
    const { cid, end } = request
    // the empty object has no bytes to verify: its CID says it all
    if (cid.size === 0) return
    const opened = open(request)
    const attempts = opened instanceof Promise ? await opened : opened
    let at = request.start
    for (;;) {
      if (at >= end) return
      const span = alignRange(cid, at, end)
      const won = await sourceFor(attempts, span, at)
      if (won === undefined) {
        yield* wholeFromOrigin({ ...request, start: at }, request.origin as string, attempts.state.failures)
        return
      }
      const { candidate: source, result: res } = won
      const { leaves } = attempts
      // The caller's abort aborts the winner's request (the race forwards it until
      // `release`), which ends its body with the abort. `signal` is not handed to
      // verifyStream: racing every pull against it costs a promise per piece (and, in
      // protocol 0.1.0, keeps every piece alive until the stream ends).
      let complete = false
      try {
        if (leaves === undefined) throw new IntegrityError(`no verified leaves for ${cid.text}`)
        for await (const bytes of verifyStream(cid, res.body, { leaves, start: at, end })) {
          at += bytes.length
          request.payment?.credit(source, bytes.length)
          yield bytes
        }
        complete = true
        return
      } catch (err) {
        await sourceFailed(attempts, won, span, at, err)
      } finally {
        settle(won, complete)
      }
    }
  }

  async function small(request: BodyRequest): Promise<Uint8Array> {
    const { cid, start, end } = request
    if (cid.size === 0) return new Uint8Array(0)
    const span = alignRange(cid, start, end)
    if (span.firstChunk !== span.lastChunk)
      throw new InvalidArgumentError(`bytes [${start}, ${end}) of ${cid.text} span more than one chunk`)
    const opened = open(request)
    const attempts = opened instanceof Promise ? await opened : opened
    for (;;) {
      const won = await sourceFor(attempts, span, start)
      if (won === undefined) {
        const pieces: Uint8Array[] = []
        for await (const piece of wholeFromOrigin(request, request.origin as string, attempts.state.failures))
          pieces.push(piece)
        return concat(pieces, end - start)
      }
      const { candidate: source, result: res } = won
      const { leaves } = attempts
      let complete = false
      try {
        if (leaves === undefined) throw new IntegrityError(`no verified leaves for ${cid.text}`)
        // one chunk: its bytes are held until it verified, whatever the reader does, so
        // they are read whole here and handed over at once (no stream of one piece)
        const verifier = createChunkVerifier(cid, leaves, { start, end })
        let chunk: VerifiedChunk | undefined
        for await (const piece of res.body) {
          const verified = await verifier.write(piece)
          if (verified.length > 0) chunk = verified[0]
        }
        await verifier.end()
        if (chunk === undefined) throw new IntegrityError(`no chunk of ${cid.text} verified`)
        const bytes = trim(chunk, start, end)
        request.payment?.credit(source, bytes.length)
        complete = true
        return bytes
      } catch (err) {
        await sourceFailed(attempts, won, span, start, err)
      } finally {
        settle(won, complete)
      }
    }
  }

  return { leaves, body, small }
}

/** The bytes `[start, end)` of a verified chunk, as one buffer (a view when it came in one piece). */
function trim(chunk: VerifiedChunk, start: number, end: number): Uint8Array {
  const { pieces, offset } = chunk
  if (pieces.length === 1) {
    const piece = pieces[0]!
    return start === offset && end === offset + piece.length
      ? piece
      : piece.subarray(start - offset, end - offset)
  }
  const out = new Uint8Array(end - start)
  let at = offset
  for (const piece of pieces) {
    const lo = Math.max(start, at)
    const hi = Math.min(end, at + piece.length)
    if (hi > lo) out.set(piece.subarray(lo - at, hi - at), lo - start)
    at += piece.length
  }
  return out
}

/** Pieces of known total length as one buffer. */
function concat(pieces: readonly Uint8Array[], length: number): Uint8Array {
  if (pieces.length === 1 && pieces[0]!.length === length) return pieces[0]!
  const out = new Uint8Array(length)
  let at = 0
  for (const piece of pieces) {
    out.set(piece, at)
    at += piece.length
  }
  return out
}
