import type { IncomingMessage } from 'node:http'
import { TooLargeError } from '@shoal/protocol'

/** Reads a request body as UTF-8 text, refusing (413) one larger than `limit` bytes. */
export async function readBody(req: IncomingMessage, limit: number): Promise<string> {
  const declared = Number(req.headers['content-length'] ?? 0)
  if (declared > limit) throw new TooLargeError(`body is larger than ${limit} bytes`)
  const parts: Buffer[] = []
  let total = 0
  for await (const part of req as AsyncIterable<Buffer>) {
    total += part.length
    if (total > limit) throw new TooLargeError(`body is larger than ${limit} bytes`)
    parts.push(part)
  }
  return Buffer.concat(parts).toString('utf8')
}
