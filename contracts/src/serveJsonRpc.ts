import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { InvalidArgumentError, throwIfAborted } from '@shoal/protocol'
import { DEFAULT_MAX_RPC_BODY_BYTES } from './constants.ts'

/** The EIP-1193 surface the server forwards to (an EDR provider, a viem transport…). */
export interface Eip1193Provider {
  request(args: { method: string; params?: unknown }): Promise<unknown>
}

export interface ServeJsonRpcOptions {
  /** Interface to bind; default `127.0.0.1` (never all interfaces unless asked). */
  hostname?: string
  /** Port; default 0 (any free port). */
  port?: number
  /** Largest request body accepted, in bytes; default 8 MiB. */
  maxBodyBytes?: number
  /** Aborting closes the server. */
  signal?: AbortSignal
}

/** A listening JSON-RPC endpoint. */
export interface JsonRpcServer {
  /** `http://<hostname>:<port>`, what a wallet or viem `http()` transport connects to. */
  readonly url: string
  readonly hostname: string
  readonly port: number
  /** Stops listening and closes open connections. */
  close(): Promise<void>
}

interface JsonRpcRequest {
  jsonrpc?: unknown
  id?: unknown
  method?: unknown
  params?: unknown
}

/** JSON-RPC 2.0 error codes used here. */
const RPC = {
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  INTERNAL_ERROR: -32603,
} as const

/**
 * Serves an EIP-1193 provider as Ethereum JSON-RPC over HTTP (POST, single and batch
 * requests, CORS open so browser wallets and dapps can connect), bound to 127.0.0.1 by
 * default. This is how the devnet exposes its in-process chain to wallets and to other
 * processes: the chain stays in this process, the server only forwards requests.
 *
 * @example
 * const chain = await startChain()
 * const server = await serveJsonRpc(chain.provider, { port: 8545 })
 * // MetaMask: RPC URL server.url, chain id 31337
 * await server.close()
 */
export async function serveJsonRpc(
  provider: Eip1193Provider,
  options: ServeJsonRpcOptions = {},
): Promise<JsonRpcServer> {
  const hostname = options.hostname ?? '127.0.0.1'
  const port = options.port ?? 0
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_RPC_BODY_BYTES
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new InvalidArgumentError(`port must be an integer in 0 … 65535, got ${port}`)
  }
  if (!Number.isInteger(maxBodyBytes) || maxBodyBytes <= 0) {
    throw new InvalidArgumentError(`maxBodyBytes must be a positive integer, got ${maxBodyBytes}`)
  }
  throwIfAborted(options.signal)

  const server = createServer((req, res) => {
    handle(provider, maxBodyBytes, req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500)
      res.end()
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, hostname, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const address = server.address() as AddressInfo
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address

  let closed: Promise<void> | undefined
  const close = (): Promise<void> => {
    closed ??= new Promise<void>((resolve) => {
      options.signal?.removeEventListener('abort', onAbort)
      server.close(() => resolve())
      server.closeAllConnections()
    })
    return closed
  }
  const onAbort = (): void => {
    void close()
  }
  options.signal?.addEventListener('abort', onAbort, { once: true })

  return { url: `http://${host}:${address.port}`, hostname: address.address, port: address.port, close }
}

const CORS_HEADERS = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'POST, OPTIONS',
  'access-control-allow-headers': 'content-type',
  'access-control-max-age': '600',
} as const

async function handle(
  provider: Eip1193Provider,
  maxBodyBytes: number,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  if (req.method === 'OPTIONS') {
    res.writeHead(204, CORS_HEADERS).end()
    return
  }
  if (req.method !== 'POST') {
    res.writeHead(405, { ...CORS_HEADERS, allow: 'POST, OPTIONS' }).end()
    return
  }
  const body = await readBody(req, maxBodyBytes)
  if (body === undefined) {
    res.writeHead(413, { ...CORS_HEADERS, connection: 'close' }).end()
    return
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(body)
  } catch {
    reply(res, errorResponse(null, RPC.PARSE_ERROR, 'parse error'))
    return
  }
  if (Array.isArray(parsed)) {
    if (parsed.length === 0) {
      reply(res, errorResponse(null, RPC.INVALID_REQUEST, 'empty batch'))
      return
    }
    reply(res, await Promise.all(parsed.map((item) => call(provider, item))))
    return
  }
  reply(res, await call(provider, parsed))
}

function reply(res: ServerResponse, payload: unknown): void {
  const json = JSON.stringify(payload, (_key, value) =>
    typeof value === 'bigint' ? `0x${value.toString(16)}` : value,
  )
  res.writeHead(200, { ...CORS_HEADERS, 'content-type': 'application/json' }).end(json)
}

async function call(provider: Eip1193Provider, item: unknown): Promise<object> {
  const request = (typeof item === 'object' && item !== null ? item : {}) as JsonRpcRequest
  const id = typeof request.id === 'string' || typeof request.id === 'number' ? request.id : null
  if (typeof request.method !== 'string') return errorResponse(id, RPC.INVALID_REQUEST, 'invalid request')
  try {
    const params = request.params === undefined ? [] : request.params
    const result = await provider.request({ method: request.method, params })
    return { jsonrpc: '2.0', id, result: result ?? null }
  } catch (err) {
    const { code, message, data } = (err ?? {}) as { code?: unknown; message?: unknown; data?: unknown }
    return errorResponse(
      id,
      typeof code === 'number' ? code : RPC.INTERNAL_ERROR,
      typeof message === 'string' ? message : 'internal error',
      data,
    )
  }
}

function errorResponse(id: string | number | null, code: number, message: string, data?: unknown): object {
  return { jsonrpc: '2.0', id, error: data === undefined ? { code, message } : { code, message, data } }
}

/** Reads the whole body, or `undefined` once it exceeds `limit` bytes. */
async function readBody(req: IncomingMessage, limit: number): Promise<string | undefined> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    const buf = chunk as Buffer
    size += buf.length
    if (size > limit) return undefined
    chunks.push(buf)
  }
  return Buffer.concat(chunks).toString('utf8')
}
