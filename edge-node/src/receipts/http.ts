/**
 * `POST /v1/sessions` and `POST /v1/receipts` over HTTP (docs/receipts.md): the same two
 * endpoints on the node's port (content, kind 0) and on its relay's port (relayed
 * bytes, kind 1), answered by one `Sessions`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { InvalidArgumentError, MethodNotAllowedError } from '@shoal/protocol'
import { readBody } from '../http/body.ts'
import { sendJson } from '../http/respond.ts'
import type { Sessions } from './sessions.ts'

/** Largest session or receipt body accepted (a signed ticket or receipt is under 1 KiB). */
export const MAX_RECEIPT_BODY_BYTES = 16 * 1024

/**
 * Answers `POST /v1/sessions` (`path === 'sessions'`) or `POST /v1/receipts`; throws a
 * ShoalError the caller maps to its JSON error answer.
 *
 * @example
 * if (url === '/v1/receipts') await answerPayment('receipts', req, res, sessions)
 */
export async function answerPayment(
  path: 'sessions' | 'receipts',
  req: IncomingMessage,
  res: ServerResponse,
  sessions: Pick<Sessions, 'open' | 'accept'>,
): Promise<void> {
  if (req.method !== 'POST') throw new MethodNotAllowedError(`use POST /v1/${path}`)
  const text = await readBody(req, MAX_RECEIPT_BODY_BYTES)
  if (path === 'receipts') {
    sendJson(res, 200, await sessions.accept(text))
    return
  }
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    throw new InvalidArgumentError('the session request is not JSON')
  }
  sendJson(res, 201, await sessions.open(body))
}
