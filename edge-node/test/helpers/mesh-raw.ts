/**
 * Raw mesh exchanges for tests of bad input: send any bytes on a protocol stream and
 * collect the frames the node answers before it closes or resets the stream.
 */
import type { Libp2p } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { encodeVarint, frameReader } from '@shoal/client-sdk/node'
import type { EdgeNode } from '../../src/node.ts'

/**
 * Sends `send` on a fresh `protocol` stream to `node`, half-closes, and reads every
 * answer frame as text.
 *
 * @example
 * const { frames } = await rawExchange(client, node, CHUNK_PROTOCOL, frame('{nope'))
 */
export async function rawExchange(
  client: Libp2p,
  node: EdgeNode,
  protocol: string,
  send: Uint8Array,
): Promise<{ frames: string[]; status: string }> {
  const stream = await client.dialProtocol(multiaddr(node.mesh!.multiaddrs()[0]!), protocol)
  stream.send(send)
  await stream.close().catch(() => {})
  const reader = frameReader(stream)
  const frames: string[] = []
  try {
    while (true) {
      const frame = await reader.next(1 << 20, { signal: AbortSignal.timeout(5000) })
      if (frame === undefined) break
      frames.push(Buffer.from(frame.subarray()).toString())
    }
  } catch {
    // a reset stream ends the exchange
  }
  return { frames, status: stream.status }
}

/** One length-prefixed frame holding `text`. */
export const frame = (text: string): Buffer => {
  const body = Buffer.from(text)
  return Buffer.concat([encodeVarint(body.length), body])
}
