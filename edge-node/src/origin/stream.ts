/**
 * Streaming of response bodies to a client and into the store at once, with
 * backpressure from both, and the rule for fills whose client is gone.
 */
import type { ServerResponse } from 'node:http'
import type { Readable } from 'node:stream'
import { UpstreamError } from '@shoal/protocol'
import type { ObjectWriter } from '../store/index.ts'
import type { OriginContext } from './types.ts'
import { drained, errorCode } from './util.ts'

/** What the client gets of a body: nothing (no client, or already answered), all of it, or a slice. */
export type ClientMode =
  | { kind: 'none' }
  | { kind: 'done' }
  | { kind: 'full' }
  | { kind: 'slice'; start: number; end: number }

export interface PumpResult {
  /** The body was read to its end. */
  complete: boolean
  bytes: number
  /** The writer took every byte (it is still open). */
  writerOk: boolean
  /** The error the body failed with. */
  error?: unknown
}

export type Pump = (
  body: AsyncIterable<Buffer>,
  res: ServerResponse | undefined,
  mode: ClientMode,
  writer: ObjectWriter | undefined,
  length: number | undefined,
  countUpstream: boolean,
) => Promise<PumpResult>

export function createPump(ctx: Pick<OriginContext, 'logger' | 'metrics' | 'detachedFillMaxBytes'>): Pump {
  const { logger, metrics, detachedFillMaxBytes } = ctx
  /**
   * Streams `body` to the client per `mode` and to `writer`, with backpressure from
   * both. Once the client is gone or served, the fill goes on only while what is left
   * to read stays within `detachedFillMaxBytes`.
   */
  return async (body, res, mode, writer, length, countUpstream) => {
    let offset = 0
    let writerOk = writer !== undefined
    let clientDone = res === undefined || mode.kind === 'none' || mode.kind === 'done'
    // A client that left before the head counts as gone from the start.
    let clientGone = res !== undefined && !clientDone && res.destroyed
    let detachedAt: number | undefined = clientDone || clientGone ? 0 : undefined
    const onClose = (): void => {
      if (res !== undefined && !res.writableFinished) clientGone = true
    }
    if (res !== undefined && !clientDone) res.on('close', onClose)
    const mayGoOn = (): boolean => {
      if (!writerOk) return false
      if (length !== undefined) return length - offset <= detachedFillMaxBytes
      return offset - (detachedAt ?? offset) <= detachedFillMaxBytes
    }
    const stop = async (): Promise<void> => {
      if (writer !== undefined && writerOk) {
        writerOk = false
        await writer.abort(new UpstreamError('the fill was abandoned'))
      }
    }
    try {
      if ((clientDone || clientGone) && !mayGoOn()) {
        await stop()
        ;(body as Partial<Readable>).destroy?.()
        return { complete: false, bytes: 0, writerOk: false }
      }
      for await (const chunk of body) {
        if (countUpstream) metrics?.upstreamBytes.inc({ upstream: 'origin' }, chunk.byteLength)
        // Settles to the write's error (or undefined): a rejection must not go unhandled while the client drains.
        const writing =
          writerOk && writer !== undefined
            ? writer.write(chunk).then(
                () => undefined,
                (err: unknown) => err ?? new Error('cache write failed'),
              )
            : undefined
        if (!clientDone && !clientGone && res !== undefined) {
          let piece: Buffer | undefined = chunk
          if (mode.kind === 'slice') {
            const from = Math.max(mode.start - offset, 0)
            const to = Math.min(mode.end - offset, chunk.byteLength)
            piece = to > from ? chunk.subarray(from, to) : undefined
          }
          if (piece !== undefined && !res.write(piece)) await drained(res)
          if (mode.kind === 'slice' && offset + chunk.byteLength >= mode.end) {
            res.end()
            clientDone = true
          }
        }
        const writeError = writing === undefined ? undefined : await writing
        if (writeError !== undefined) {
          logger?.debug({ code: errorCode(writeError) }, 'cache write stopped')
          writerOk = false
          await writer?.abort(writeError)
        }
        offset += chunk.byteLength
        if (clientDone || clientGone) {
          detachedAt ??= offset
          if (!mayGoOn()) {
            await stop()
            return { complete: false, bytes: offset, writerOk: false }
          }
        }
      }
    } catch (err) {
      if (res !== undefined && !clientDone && !res.destroyed) res.destroy()
      return { complete: false, bytes: offset, writerOk, error: err }
    } finally {
      res?.off('close', onClose)
    }
    if (res !== undefined && !clientDone && !clientGone) res.end()
    return { complete: true, bytes: offset, writerOk }
  }
}
