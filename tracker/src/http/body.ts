/**
 * Request bodies: bounded in bytes (declared and actual), JSON only, parsed once,
 * validated with a strict zod schema (unknown fields refused).
 */
import type { IncomingMessage } from 'node:http'
import {
  AbortError,
  InvalidArgumentError,
  InvalidFormatError,
  TooLargeError,
  UnsupportedMediaTypeError,
} from '@shoal/protocol'
import type { z } from 'zod/v4'

/** Reads the whole body, refusing more than `limit` bytes (413) before reading it when declared. */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = req.headers['content-length']
  if (declared !== undefined && Number(declared) > limit) {
    req.resume()
    return Promise.reject(new TooLargeError(`the body is larger than ${limit} bytes`))
  }
  // Events rather than an async iterator: this is on the heartbeat hot path.
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = []
    let total = 0
    const onData = (part: Buffer) => {
      total += part.length
      if (total > limit) {
        cleanup()
        req.resume()
        reject(new TooLargeError(`the body is larger than ${limit} bytes`))
        return
      }
      parts.push(part)
    }
    const onEnd = () => {
      cleanup()
      resolve(parts.length === 1 ? parts[0]! : Buffer.concat(parts, total))
    }
    const onError = (err: Error) => {
      cleanup()
      reject(err)
    }
    const onAborted = () => {
      cleanup()
      reject(new AbortError('the client went away before sending the whole body'))
    }
    const cleanup = () => {
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('error', onError)
      req.off('aborted', onAborted)
    }
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('error', onError)
    req.on('aborted', onAborted)
  })
}

/** Throws 415 unless the request says its body is JSON. */
export function requireJson(req: IncomingMessage): void {
  const type = req.headers['content-type']
  if (type === undefined || !/^application\/json\s*(;|$)/i.test(type)) {
    throw new UnsupportedMediaTypeError('the body must be JSON (content-type: application/json)')
  }
}

/** Parses JSON text; malformed JSON is `SHOAL_ERR_INVALID_FORMAT`. */
export function parseJson(bytes: Buffer | string): unknown {
  try {
    return JSON.parse(typeof bytes === 'string' ? bytes : bytes.toString('utf8'))
  } catch (err) {
    throw new InvalidFormatError(`the body is not valid JSON: ${(err as Error).message}`)
  }
}

/** Validates with a strict schema; the first problem becomes `SHOAL_ERR_INVALID_ARGUMENT` naming the field. */
export function validate<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const r = schema.safeParse(value)
  if (r.success) return r.data
  const issue = r.error.issues[0]
  const path = issue === undefined || issue.path.length === 0 ? what : `${what}.${issue.path.join('.')}`
  throw new InvalidArgumentError(`${path}: ${issue?.message ?? 'invalid'}`)
}

/** `requireJson` + `readBody` + `parseJson` + `validate`. */
export async function readJson<T>(
  req: IncomingMessage,
  limit: number,
  schema: z.ZodType<T>,
  what: string,
): Promise<T> {
  requireJson(req)
  return validate(schema, parseJson(await readBody(req, limit)), what)
}
