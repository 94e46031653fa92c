/**
 * Publisher calls to edge nodes (`PUT /manifests/<site>`, `HEAD`/`PUT /c/<cid>`,
 * `POST /admin/purge`) over undici, with the node's JSON error body turned into the typed
 * error it names.
 */

import { Readable } from 'node:stream'
import {
  ERROR_CODES,
  type ErrorCode,
  parseErrorBody,
  ShoalError,
  UpstreamError,
  UpstreamTimeoutError,
} from '@shoal/protocol'
import { type Dispatcher, request } from 'undici'

/** Headers and body timeout of one call to a node (ms). */
export const DEFAULT_NODE_TIMEOUT_MS = 30_000

export interface NodeCall {
  method: 'GET' | 'HEAD' | 'PUT' | 'POST'
  body?: string | AsyncIterable<Uint8Array>
  headers?: Record<string, string>
  signal?: AbortSignal
  timeoutMs?: number
}

/** The node's answer; non-2xx answers are thrown as typed errors (`SHOAL_ERR_…`). */
export async function callNode(
  base: string,
  path: string,
  call: NodeCall,
): Promise<{ status: number; body: unknown }> {
  const url = `${base.replace(/\/$/, '')}${path}`
  const timeout = call.timeoutMs ?? DEFAULT_NODE_TIMEOUT_MS
  let res: Dispatcher.ResponseData
  try {
    res = await request(url, {
      method: call.method,
      headers: call.headers ?? {},
      ...(call.body === undefined
        ? {}
        : { body: typeof call.body === 'string' ? call.body : Readable.from(call.body) }),
      headersTimeout: timeout,
      bodyTimeout: timeout,
      ...(call.signal === undefined ? {} : { signal: call.signal }),
    })
  } catch (err) {
    if (call.signal?.aborted === true) throw err
    const code = (err as { code?: string }).code
    if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
      throw new UpstreamTimeoutError(`node ${base} did not answer in ${timeout} ms`, { cause: err })
    }
    throw new UpstreamError(`node ${base} did not answer: ${(err as Error).message}`, { cause: err })
  }
  let text = ''
  if (call.method === 'HEAD') await res.body.dump()
  else text = await res.body.text()
  let body: unknown
  try {
    body = text === '' ? undefined : JSON.parse(text)
  } catch {
    body = undefined
  }
  if (res.statusCode >= 200 && res.statusCode < 300) return { status: res.statusCode, body }
  const error = parseErrorBody(body)
  if (error !== undefined && Object.hasOwn(ERROR_CODES, error.error.code)) {
    throw new ShoalError(error.error.code as ErrorCode, `node ${base}: ${error.error.message}`)
  }
  throw new UpstreamError(`node ${base} answered ${res.statusCode} to ${call.method} ${path}`)
}
