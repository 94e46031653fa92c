/**
 * The mesh frame reader's `hash` option: a frame's bytes are hashed as they arrive,
 * whatever the message boundaries (a length prefix cut in two, several frames in one
 * message, a frame already buffered before `next` was called), and the digest is the
 * one of the frame's bytes. Two real libp2p peers on 127.0.0.1 (TCP, Noise, Yamux).
 */
import { createHash } from 'node:crypto'
import type { Libp2p, Stream } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createMeshTransport, encodeVarint, frameReader } from '../src/node/index.ts'

const PROTOCOL = '/shoal-test/frames/1.0.0'
const LENGTHS = [1, 0, 300, 70_000, 256 * 1024, 5]

/** The frames, each its length prefix and bytes, back to back. */
function wire(): { bytes: Uint8Array; frames: Uint8Array[] } {
  const frames = LENGTHS.map((n, i) => Uint8Array.from({ length: n }, (_, j) => (j * 31 + i) & 0xff))
  const parts = frames.flatMap((f) => [encodeVarint(f.length), f])
  return { bytes: Buffer.concat(parts), frames }
}

const bytesOf = (frame: { subarray(): Uint8Array } | undefined) => Buffer.from(frame?.subarray() ?? [])
const sha = (bytes: Uint8Array) => createHash('sha256').update(Uint8Array.of(0)).update(bytes).digest()

let server: Libp2p
let client: Libp2p
/** Where the sender cuts the wire into sends: inside the 3-byte prefix of the 70 000-byte frame, mid-frame, … */
let cuts: number[]

beforeAll(async () => {
  const { bytes } = wire()
  const big = 1 + 1 + 1 + 2 + 300 // offset of the 70 000-byte frame's prefix
  cuts = [1, 3, big + 1, big + 2, big + 3 + 1000, big + 3 + 70_000 + 7, bytes.length - 3, bytes.length]
  server = await createMeshTransport({ listen: ['/ip4/127.0.0.1/tcp/0'] })
  await server.handle(PROTOCOL, async (stream) => {
    let at = 0
    for (const cut of cuts) {
      if (!stream.send(bytes.subarray(at, cut))) await stream.onDrain()
      at = cut
      // separate messages on the reader's side
      await new Promise((r) => setTimeout(r, 5))
    }
    await stream.close()
  })
  client = await createMeshTransport({ listen: [] })
})

afterAll(async () => {
  await client?.stop()
  await server?.stop()
})

async function open(): Promise<Stream> {
  const addr = server.getMultiaddrs()[0]!
  return client.dialProtocol(multiaddr(addr.toString()), PROTOCOL)
}

describe('mesh frame reader: hashing frames as they arrive', () => {
  it('hashes each frame across cut prefixes and messages, while reading as the bytes come', async () => {
    const { frames } = wire()
    const stream = await open()
    const reader = frameReader(stream)
    try {
      for (const expected of frames) {
        const hash = createHash('sha256').update(Uint8Array.of(0))
        const frame = await reader.next(256 * 1024, { hash })
        expect(bytesOf(frame)).toEqual(Buffer.from(expected))
        expect(hash.digest()).toEqual(sha(expected))
      }
      expect(await reader.next(16)).toBeUndefined()
    } finally {
      reader.release()
    }
  })

  it('hashes frames that were buffered before next was called, and frames read without a hash are unchanged', async () => {
    const { frames } = wire()
    const stream = await open()
    const reader = frameReader(stream)
    try {
      // everything arrives before the first read
      await new Promise((r) => setTimeout(r, cuts.length * 5 + 200))
      for (const [i, expected] of frames.entries()) {
        if (i % 2 === 0) {
          const hash = createHash('sha256').update(Uint8Array.of(0))
          const frame = await reader.next(256 * 1024, { hash })
          expect(bytesOf(frame)).toEqual(Buffer.from(expected))
          expect(hash.digest()).toEqual(sha(expected))
        } else {
          expect(bytesOf(await reader.next(256 * 1024))).toEqual(Buffer.from(expected))
        }
      }
    } finally {
      reader.release()
    }
  })

  it('refuses a frame longer than allowed even when hashing it', async () => {
    const stream = await open()
    const reader = frameReader(stream)
    try {
      const hash = createHash('sha256')
      expect((await reader.next(16, { hash }))?.byteLength).toBe(1)
      expect((await reader.next(16, { hash }))?.byteLength).toBe(0)
      await expect(reader.next(299, { hash })).rejects.toMatchObject({ code: 'SHOAL_ERR_TOO_LARGE' })
    } finally {
      reader.release()
      stream.abort(new Error('done'))
    }
  })
})
