/**
 * The base of the pipeline: one `GET` with `fetch` (the global one or an injected one,
 * e.g. undici's), its status and range checked, its body read through a reader so it
 * runs in every runtime. It resolves when the first byte has arrived.
 */
import { UpstreamError } from '@shoal/protocol'
import { errorOfResponse, failureOf } from '../errors.ts'
import type { Dispatch, SourceRequest, SourceResponse } from './dispatch.ts'

const CONTENT_RANGE_RE = /^bytes (\d+)-(\d+)\/(\d+|\*)$/

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
      res = await doFetch(req.url, {
        method: 'GET',
        headers:
          req.range === undefined
            ? { accept: '*/*' }
            : { accept: '*/*', range: `bytes=${req.range.start}-${req.range.end - 1}` },
        signal,
        // nodes never redirect; origins may
        redirect: req.source.kind === 'node' ? 'error' : 'follow',
      })
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
    let done = reader === undefined
    const close = () => {
      if (done) return
      done = true
      reader?.cancel().catch(() => {})
    }
    const read = async (): Promise<Uint8Array | undefined> => {
      if (reader === undefined) return undefined
      try {
        const r = await reader.read()
        if (r.done) {
          done = true
          return undefined
        }
        return r.value
      } catch (err) {
        done = true
        throw failureOf(err, signal, `${from} broke off the body`)
      }
    }

    // Skip what a server that ignored Range sent before the span, then read the first piece.
    let skip = window.skip
    let first = window.length === 0 ? undefined : await readOrClose()
    while (first !== undefined && skip > 0) {
      if (first.length <= skip) {
        skip -= first.length
        first = await readOrClose()
      } else {
        first = first.subarray(skip)
        skip = 0
      }
    }
    const ttfbMs = performance.now() - started

    async function readOrClose(): Promise<Uint8Array | undefined> {
      try {
        return await read()
      } catch (err) {
        close()
        throw err
      }
    }

    async function* body(): AsyncGenerator<Uint8Array, void, undefined> {
      let left = window.length
      try {
        let piece = first
        while (piece !== undefined) {
          if (piece.length > left) {
            // a server that ignored Range: the span ends inside this piece
            if (window.skip > 0 || (req.range !== undefined && res.status === 200)) {
              if (left > 0) yield piece.subarray(0, left)
              return
            }
            throw new UpstreamError(`${from} sent more than the ${window.length} bytes expected`)
          }
          left -= piece.length
          yield piece
          if (left === 0 && res.status === 200 && req.range !== undefined) return
          piece = await read()
        }
      } finally {
        close()
      }
    }

    const response: SourceResponse = { status: res.status, headers: res.headers, body: body(), ttfbMs, close }
    return response
  }
}
