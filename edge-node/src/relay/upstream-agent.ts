/**
 * The keep-alive agent of the relay's forwarded requests (`http-proxy`'s `agent`), whose
 * sockets read into one reused buffer each (`net.connect({ onread })`) instead of a
 * fresh 64 KiB backing store per read.
 *
 * Node's http client takes a socket's bytes from its `data` events and parses them at
 * once; its parser keeps nothing of the buffer it was handed: every body piece is
 * copied into a buffer of its own before it reaches the response stream, and header
 * pieces are saved as strings. So each read is handed over as a `data` event on a view
 * of the reused buffer, and the buffer is free again when the event returns.
 * (edge-node/test/relay-pipe.test.ts checks this through a stalled client: were a body
 * piece a view of the buffer, the next read would overwrite it and the bytes would
 * differ.)
 */
import http from 'node:http'
import net from 'node:net'
import type { Duplex } from 'node:stream'

/** Bytes of each upstream socket's read buffer. */
export const UPSTREAM_READ_BYTES = 64 * 1024

/**
 * @example
 * const agent = createUpstreamAgent({ keepAlive: true, maxSockets: 256 })
 * httpProxy.createProxyServer({ agent, selfHandleResponse: true })
 */
export function createUpstreamAgent(options: http.AgentOptions): http.Agent {
  const agent = new http.Agent(options)
  // `createConnection` is the documented way to give an agent its own sockets
  agent.createConnection = (opts: net.NetConnectOpts): Duplex => {
    const buffer = Buffer.allocUnsafe(UPSTREAM_READ_BYTES)
    const socket: net.Socket = net.connect({
      ...(opts as net.TcpNetConnectOpts),
      onread: {
        buffer,
        callback(n: number): boolean {
          socket.emit('data', buffer.subarray(0, n))
          return true
        },
      },
    })
    return socket
  }
  return agent
}
