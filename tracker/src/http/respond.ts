import type { ServerResponse } from 'node:http'
import { toErrorResponse } from '@shoal/protocol'

/** Sends a JSON body (already serialized, or a value to serialize) with length and type. */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers?: Record<string, string>,
): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body)
  if (headers === undefined) {
    // the raw-array form skips node:http's header object bookkeeping (the hot path);
    // headers set earlier with setHeader are merged in by node:http
    res.writeHead(status, [
      'content-type',
      'application/json; charset=utf-8',
      'content-length',
      String(Buffer.byteLength(text)),
      'cache-control',
      'no-store',
    ])
  } else {
    res.writeHead(status, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(text),
      'cache-control': 'no-store',
      ...headers,
    })
  }
  res.end(text)
}

/**
 * Answers any thrown value with the shared JSON error body (`{"error":{"code","message"}}`);
 * anything that is not a Shoal error becomes a generic 500, so internals never leak.
 */
export function sendError(res: ServerResponse, err: unknown, headers?: Record<string, string>): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  const { status, body } = toErrorResponse(err)
  sendJson(res, status, body, headers)
}
