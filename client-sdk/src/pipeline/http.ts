/**
 * The base of the pipeline: one `GET` with `fetch` (the global one or an injected one,
 * e.g. undici's), its status and range checked, its body read through a reader so it
 * runs in every runtime. It resolves when the first byte has arrived.
 */
import { UpstreamError } from '@shoal/protocol'
import { errorOfResponse, failureOf } from '../errors.ts'
import type { Dispatch, SourceEnd, SourceProgress, SourceRequest } from './dispatch.ts'

const CONTENT_RANGE_RE = /^bytes (\d+)-(\d+)\/(\d+|\*)$/

const DONE: IteratorReturnResult<undefined> = { done: true, value: undefined }

/** What part of the received body to pass on: skip `skip` bytes, then exactly `length`. */
interface Window {
  skip: number
  length: number
}

/** Checks the status and range headers against the request; returns the window of the body to keep. */
function windowOf(req: SourceRequest, res: Response, from: string): Window {
  const { range, size } = req
  if (range === undefined) {
    if (res.status !== 200) throw new UpstreamError(`${from} answered ${res.status} to a plain GET`)
    const declared = res.headers.get('content-length')
    if (size !== undefined && declared !== null && Number(declared) !== size)
      throw new UpstreamError(`${from} sent ${declared} bytes, expected ${size}`)
    return { skip: 0, length: size ?? req.maxBytes ?? Number.POSITIVE_INFINITY }
  }
  const length = range.end - range.start
  if (res.status === 206) {
    const m = CONTENT_RANGE_RE.exec(res.headers.get('content-range') ?? '')
    if (m === null) throw new UpstreamError(`${from} answered 206 without a valid Content-Range`)
    const [first, last, total] = [Number(m[1]), Number(m[2]), m[3]]
    if (first !== range.start || last !== range.end - 1)
      throw new UpstreamError(`${from} sent bytes ${first}-${last}, asked ${range.start}-${range.end - 1}`)
    if (size !== undefined && total !== '*' && Number(total) !== size)
      throw new UpstreamError(`${from} says the object has ${total} bytes, expected ${size}`)
    return { skip: 0, length }
  }
  if (res.status === 200) {
    // a server that ignores Range sends the whole object: skip to the span
    const declared = res.headers.get('content-length')
    if (size !== undefined && declared !== null && Number(declared) !== size)
      throw new UpstreamError(`${from} sent ${declared} bytes, expected ${size}`)
    return { skip: range.start, length }
  }
  throw new UpstreamError(`${from} answered ${res.status} to a range request`)
}

/**
 * @example
 * const dispatch = httpDispatch(fetch)
 * const res = await dispatch({ source, url: `${node}c/${cid.text}`, range: { start: 0, end: 1024 }, size, signal })
 * for await (const piece of res.body) …
 */
export function httpDispatch(doFetch: typeof globalThis.fetch): Dispatch {
  return async (req) => {
    const started = performance.now()
    const from = req.source.kind === 'node' ? `node ${req.source.url}` : `origin ${req.url}`
    const { signal } = req
    let res: Response
    try {
      // the plainest init that says it: a node never redirects (`manual` then shows as a
      // 3xx, refused below); an origin may
      res = await doFetch(
        req.url,
        req.range === undefined && req.headers === undefined
          ? req.source.kind === 'node'
            ? { signal, redirect: 'manual' }
            : { signal }
          : {
              headers:
                req.range === undefined
                  ? (req.headers as Record<string, string>)
                  : { ...req.headers, range: `bytes=${req.range.start}-${req.range.end - 1}` },
              signal,
              ...(req.source.kind === 'node' ? { redirect: 'manual' as const } : {}),
            },
      )
    } catch (err) {
      throw failureOf(err, signal, `${from} did not answer`)
    }
    if (!res.ok) throw await errorOfResponse(res, from)
    let window: Window
    try {
      window = windowOf(req, res, from)
    } catch (err) {
      await res.body?.cancel().catch(() => {})
      throw err
    }
    const reader = res.body?.getReader()
    const progress: SourceProgress = { waitingSince: undefined, bytes: 0 }
    let ended: SourceEnd | undefined
    const listeners: ((end: SourceEnd) => void)[] = []
    const end = (outcome: SourceEnd) => {
      if (ended !== undefined) return
      ended = outcome
      progress.waitingSince = undefined
      if (!outcome.complete) reader?.cancel().catch(() => {})
      for (const fn of listeners) fn(outcome)
    }
    const read = async (): Promise<Uint8Array | undefined> => {
      if (reader === undefined) return undefined
      progress.waitingSince = performance.now()
      try {
        const r = await reader.read()
        progress.waitingSince = undefined
        return r.done ? undefined : r.value
      } catch (err) {
        const error = failureOf(err, signal, `${from} broke off the body`)
        end({ complete: false, error })
        throw error
      }
    }

    // Skip what a server that ignored Range sent before the span, then read the first piece.
    let skip = window.skip
    let first = window.length === 0 ? undefined : await read()
    while (first !== undefined && skip > 0) {
      if (first.length <= skip) {
        skip -= first.length
        first = await read()
      } else {
        first = first.subarray(skip)
        skip = 0
      }
    }
    const ttfbMs = performance.now() - started
    // a server that ignored Range (or an origin): the span may end before its body does
    const sliced = window.skip > 0 || (req.range !== undefined && res.status === 200)

    // the retained pieces (oldest first) and the body offset of each
    const retain = req.retain ?? 0
    const kept: Uint8Array[] = []
    const keptAt: number[] = []
    const keep = (piece: Uint8Array) => {
      if (retain === 0) return
      const at = progress.bytes - piece.length
      kept.push(piece)
      keptAt.push(at)
      while (kept.length > 1 && keptAt[0]! + kept[0]!.length <= at - retain) {
        kept.shift()
        keptAt.shift()
      }
    }
    const recent = (start: number, stop: number): Uint8Array | undefined => {
      if (progress.bytes < stop || kept.length === 0 || keptAt[0]! > start) return undefined
      const out = new Uint8Array(stop - start)
      for (let k = 0; k < kept.length; k++) {
        const at = keptAt[k]!
        const piece = kept[k]!
        const lo = Math.max(start, at)
        const hi = Math.min(stop, at + piece.length)
        if (hi > lo) out.set(piece.subarray(lo - at, hi - at), lo - start)
      }
      return out
    }

    // The body as a hand-made async iterator rather than an async generator: a piece
    // costs one promise, and the first (already in hand) none that waits.
    let left = window.length
    let head: Uint8Array | undefined = first
    let passedHead = false
    /** Passes `piece` on (or ends the body at `undefined`), keeping the window. */
    const pass = (piece: Uint8Array | undefined): IteratorResult<Uint8Array, undefined> => {
      if (piece === undefined) {
        end({ complete: left === 0 || !Number.isFinite(window.length) })
        return DONE
      }
      if (piece.length > left) {
        if (!sliced) {
          const error = new UpstreamError(`${from} sent more than the ${window.length} bytes expected`)
          end({ complete: false, error })
          throw error
        }
        // the span ends inside this piece: pass on its part, the rest of the body is not ours
        piece = piece.subarray(0, left)
        if (piece.length === 0) {
          end({ complete: true })
          return DONE
        }
      }
      left -= piece.length
      progress.bytes += piece.length
      keep(piece)
      return { done: false, value: piece }
    }
    const body: AsyncIterableIterator<Uint8Array> = {
      [Symbol.asyncIterator]() {
        return this
      },
      next() {
        if (ended !== undefined) return Promise.resolve(DONE)
        try {
          if (!passedHead) {
            passedHead = true
            const piece = head
            head = undefined
            return Promise.resolve(pass(piece))
          }
          // the span is complete: no read for the end of the stream (the transport knows
          // the message is whole from its length and keeps the connection)
          if (left === 0) return Promise.resolve(pass(undefined))
        } catch (err) {
          return Promise.reject(err)
        }
        return read().then(pass)
      },
      return() {
        head = undefined
        end({ complete: false })
        return Promise.resolve(DONE)
      },
    }

    return {
      status: res.status,
      headers: res.headers,
      body,
      ttfbMs,
      progress,
      recent,
      onEnd(fn) {
        if (ended !== undefined) fn(ended)
        else listeners.push(fn)
      },
      close: () => end({ complete: false }),
    }
  }
}
