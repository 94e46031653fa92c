import type { ServerResponse } from 'node:http'
import { toErrorResponse } from '@shoal/protocol'

/** Sends a JSON body with the right length and type. */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body)
  res.writeHead(status, {
    ...headers,
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': headers['cache-control'] ?? 'no-store',
  })
  res.end(text)
}

/**
 * Answers any thrown value with the shared JSON error body
 * (`{"error":{"code","message"}}`); non-Shoal errors become a generic 500.
 * If the head was already sent, the response is destroyed instead so the client
 * sees a truncated body rather than wrong bytes.
 */
export function sendError(res: ServerResponse, err: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy(err instanceof Error ? err : undefined)
    return
  }
  const { status, body } = toErrorResponse(err)
  sendJson(res, status, body, headers)
}
