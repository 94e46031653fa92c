import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import {
  alignRange,
  type Cid,
  chunkSpan,
  computeCid,
  createChunkVerifier,
  createProof,
  formatCid,
  type Leaves,
  type VerifiedChunk,
  verifyChunk,
  verifyStream,
} from '../src/index.ts'

const CHUNK = 1024
const bytesOf = (length: number, salt = 0) =>
  Uint8Array.from({ length }, (_, i) => (i * 31 + salt + (i >> 8)) & 0xff)
const sha256 = (...parts: Uint8Array[]) => {
  const h = createHash('sha256')
  for (const p of parts) h.update(p)
  return new Uint8Array(h.digest())
}
const concat = (parts: readonly Uint8Array[]) => new Uint8Array(Buffer.concat(parts))

/** Splits `bytes` into pieces of the given sizes, cycling through them. */
function split(bytes: Uint8Array, sizes: number[]): Uint8Array[] {
  const out: Uint8Array[] = []
  for (let at = 0, k = 0; at < bytes.length; k++) {
    const size = sizes[k % sizes.length]!
    out.push(bytes.subarray(at, at + size))
    at += size
  }
  return out
}

async function* slowly(pieces: Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const piece of pieces) {
    await new Promise((resolve) => setImmediate(resolve))
    yield piece
  }
}

async function collect(stream: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = []
  for await (const part of stream) parts.push(part)
  return concat(parts)
}

/** Runs a stream to its end; returns what was yielded and what it threw. */
async function drain(stream: AsyncIterable<Uint8Array>): Promise<{ bytes: Uint8Array; error: unknown }> {
  const parts: Uint8Array[] = []
  try {
    for await (const part of stream) parts.push(part)
  } catch (error) {
    return { bytes: concat(parts), error }
  }
  return { bytes: concat(parts), error: undefined }
}

/** A source that never yields, and records whether it was closed. */
function stalled() {
  const state = { closed: false }
  const source: AsyncIterable<Uint8Array> = {
    [Symbol.asyncIterator]: () => ({
      next: () => new Promise<IteratorResult<Uint8Array>>(() => {}),
      return: async () => {
        state.closed = true
        return { done: true, value: undefined }
      },
    }),
  }
  return { source, state }
}

describe('computeCid', () => {
  const data = bytesOf(5 * CHUNK + 300)

  it('computes leaves and root per the spec', async () => {
    const { cid, leaves } = await computeCid(data, { chunkSize: CHUNK })
    const expected = split(data, [CHUNK]).map((c) => sha256(Uint8Array.of(0), c))
    expect(leaves).toEqual(concat(expected))
    expect(cid).toMatchObject({ chunkSize: CHUNK, size: data.length, version: 1 })
    const one = Uint8Array.of(1)
    const [a, b, c, d, e, f] = expected as [
      Uint8Array,
      Uint8Array,
      Uint8Array,
      Uint8Array,
      Uint8Array,
      Uint8Array,
    ]
    const root = sha256(one, sha256(one, sha256(one, a, b), sha256(one, c, d)), sha256(one, e, f))
    expect(cid.root).toEqual(root)
  })

  it('gives the same CID for every kind of source and piece split', async () => {
    const { cid } = await computeCid(data, { chunkSize: CHUNK })
    const sources = [
      [data],
      split(data, [1]),
      split(data, [CHUNK]),
      split(data, [CHUNK + 1, 7, 3000]),
      [new Uint8Array(), ...split(data, [500]), new Uint8Array()],
      slowly(split(data, [777])),
      Readable.from(split(Buffer.from(data), [4096])),
      (function* () {
        yield* split(data, [100])
      })(),
    ]
    for (const source of sources) {
      expect((await computeCid(source, { chunkSize: CHUNK })).cid.text).toBe(cid.text)
    }
  })

  it('treats empty content as one empty chunk', async () => {
    const { cid, leaves } = await computeCid(new Uint8Array())
    expect(cid.size).toBe(0)
    expect(leaves).toEqual(sha256(Uint8Array.of(0)))
    expect(cid.root).toEqual(leaves)
    expect((await computeCid([])).cid.text).toBe(cid.text)
  })

  it('cuts exactly at chunk boundaries', async () => {
    for (const size of [CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK]) {
      const { leaves } = await computeCid(bytesOf(size), { chunkSize: CHUNK })
      expect(leaves.length / 32).toBe(Math.max(1, Math.ceil(size / CHUNK)))
    }
  })

  it('defaults to 256 KiB chunks', async () => {
    const { cid, leaves } = await computeCid(bytesOf(300_000))
    expect(cid.chunkSize).toBe(262_144)
    expect(leaves.length).toBe(64)
  })

  it('refuses a bad chunk size, bad sources and bad pieces', async () => {
    for (const chunkSize of [1000, 512, 2 ** 25, 0, Number.NaN]) {
      await expect(computeCid(data, { chunkSize })).rejects.toMatchObject({
        code: 'SHOAL_ERR_INVALID_ARGUMENT',
      })
    }
    for (const source of [42, null, undefined, {}, 'text', [[1, 2]], [new ArrayBuffer(4)]]) {
      await expect(computeCid(source as never)).rejects.toMatchObject({ code: 'SHOAL_ERR_INVALID_ARGUMENT' })
    }
  })

  it('stops when the signal aborts, also while the source is stalled, and closes the source', async () => {
    await expect(computeCid(data, { signal: AbortSignal.abort() })).rejects.toMatchObject({
      code: 'SHOAL_ERR_ABORTED',
    })
    const { source, state } = stalled()
    await expect(computeCid(source, { signal: AbortSignal.timeout(10) })).rejects.toMatchObject({
      code: 'SHOAL_ERR_ABORTED',
    })
    expect(state.closed).toBe(true)
    const controller = new AbortController()
    const pieces = (function* () {
      yield data.subarray(0, 10)
      controller.abort()
      yield data.subarray(10)
    })()
    await expect(computeCid(pieces, { signal: controller.signal })).rejects.toMatchObject({
      code: 'SHOAL_ERR_ABORTED',
    })
  })
})

describe('verifyStream', () => {
  const data = bytesOf(6 * CHUNK + 300)
  let cid: Cid
  let leaves: Leaves
  const setup = async () => {
    ;({ cid, leaves } = await computeCid(data, { chunkSize: CHUNK }))
  }

  it('yields exactly the content for any piece split, sync or async', async () => {
    await setup()
    for (const sizes of [[1], [CHUNK], [CHUNK * 3], [333, 2000], [data.length]]) {
      expect(await collect(verifyStream(cid, split(data, sizes), { leaves }))).toEqual(data)
      expect(await collect(verifyStream(cid, slowly(split(data, sizes)), { leaves }))).toEqual(data)
    }
    expect(await collect(verifyStream(cid, Readable.from([Buffer.from(data)]), { leaves }))).toEqual(data)
  })

  it('yields views of the input, never copies', async () => {
    await setup()
    const parts: Uint8Array[] = []
    for await (const part of verifyStream(cid, [data], { leaves })) parts.push(part)
    expect(parts.every((p) => p.buffer === data.buffer)).toBe(true)
  })

  it('yields exactly [start, end) from the aligned span', async () => {
    await setup()
    const ranges = [
      [0, 1],
      [0, CHUNK],
      [1, CHUNK + 1],
      [CHUNK - 1, CHUNK + 1],
      [CHUNK, 2 * CHUNK],
      [2500, 5000],
      [data.length - 1, data.length],
      [6 * CHUNK, data.length],
      [0, data.length],
    ] as const
    for (const [start, end] of ranges) {
      const { fetchStart, fetchEnd } = alignRange(cid, start, end)
      const span = data.subarray(fetchStart, fetchEnd)
      const out = await collect(verifyStream(cid, split(span, [100, 900]), { leaves, start, end }))
      expect(out).toEqual(data.subarray(start, end))
    }
    const { fetchStart } = alignRange(cid, 3000, data.length)
    expect(await collect(verifyStream(cid, [data.subarray(fetchStart)], { leaves, start: 3000 }))).toEqual(
      data.subarray(3000),
    )
  })

  it('stops before the first bad chunk and names it', async () => {
    await setup()
    const bad = data.slice()
    bad[2 * CHUNK + 10] = bad[2 * CHUNK + 10]! ^ 0x01
    for (const sizes of [[100], [CHUNK], [5000]]) {
      const { bytes, error } = await drain(verifyStream(cid, slowly(split(bad, sizes)), { leaves }))
      expect(error).toMatchObject({ code: 'SHOAL_ERR_INTEGRITY', message: expect.stringMatching(/chunk 2 /) })
      // Exactly the verified chunks before chunk 2 came out, never a byte of chunk 2.
      expect(bytes).toEqual(data.subarray(0, 2 * CHUNK))
    }
    const whole = await drain(verifyStream(cid, [bad], { leaves }))
    expect(whole.bytes).toEqual(data.subarray(0, 2 * CHUNK))
    expect(whole.error).toMatchObject({ code: 'SHOAL_ERR_INTEGRITY' })
  })

  it('fails on truncated and on oversized input', async () => {
    await setup()
    const truncated = await drain(
      verifyStream(cid, split(data.subarray(0, data.length - 1), [700]), { leaves }),
    )
    expect(truncated.error).toMatchObject({
      code: 'SHOAL_ERR_INTEGRITY',
      message: expect.stringMatching(/truncated/),
    })
    expect(truncated.bytes).toEqual(data.subarray(0, 6 * CHUNK))
    const empty = await drain(verifyStream(cid, [], { leaves }))
    expect(empty.error).toMatchObject({ code: 'SHOAL_ERR_INTEGRITY' })
    const longer = concat([data, Uint8Array.of(0)])
    const oversized = await drain(verifyStream(cid, split(longer, [700]), { leaves }))
    expect(oversized.error).toMatchObject({
      code: 'SHOAL_ERR_INTEGRITY',
      message: expect.stringMatching(/too many/),
    })
    // A range source that sends the whole object instead of the aligned span.
    const range = await drain(verifyStream(cid, [data], { leaves, start: 0, end: 10 }))
    expect(range.error).toMatchObject({ code: 'SHOAL_ERR_INTEGRITY' })
    expect(range.bytes.length).toBe(0)
  })

  it('handles the empty object: nothing to yield, its empty chunk still checked', async () => {
    const empty = await computeCid(new Uint8Array())
    expect(await collect(verifyStream(empty.cid, [], { leaves: empty.leaves }))).toEqual(new Uint8Array())
    const extra = await drain(verifyStream(empty.cid, [Uint8Array.of(1)], { leaves: empty.leaves }))
    expect(extra.error).toMatchObject({ code: 'SHOAL_ERR_INTEGRITY' })
    // A CID claiming zero bytes under a root that is not the empty chunk's hash.
    const root = new Uint8Array(32).fill(7)
    const liar = formatCid({ chunkSize: 1024, size: 0, root })
    const lie = await drain(verifyStream(liar, [], { leaves: root }))
    expect(lie.error).toMatchObject({
      code: 'SHOAL_ERR_INTEGRITY',
      message: expect.stringMatching(/chunk 0 /),
    })
  })

  it('refuses leaves that do not belong to the CID and ranges outside it', async () => {
    await setup()
    const other = (await computeCid(bytesOf(6 * CHUNK + 300, 1), { chunkSize: CHUNK })).leaves
    const unverified = leaves.slice()
    expect(await collect(verifyStream(cid, [data], { leaves: unverified }))).toEqual(data)
    for (const bad of [other, leaves.subarray(32), new Uint8Array(0)]) {
      const { error } = await drain(verifyStream(cid, [data], { leaves: bad }))
      expect(error).toMatchObject({ code: 'SHOAL_ERR_INVALID_LEAVES' })
    }
    const { error } = await drain(verifyStream(cid, [data], { leaves, start: 10, end: data.length + 1 }))
    expect(error).toMatchObject({ code: 'SHOAL_ERR_RANGE_NOT_SATISFIABLE' })
    const noOptions = await drain(verifyStream(cid, [data], undefined as never))
    expect(noOptions.error).toMatchObject({ code: 'SHOAL_ERR_INVALID_ARGUMENT' })
    const notBytes = await drain(verifyStream(cid, ['text'] as never, { leaves }))
    expect(notBytes.error).toMatchObject({ code: 'SHOAL_ERR_INVALID_ARGUMENT' })
  })

  it('aborts on the signal, also while the source is stalled, and closes the source', async () => {
    await setup()
    const before = await drain(verifyStream(cid, [data], { leaves, signal: AbortSignal.abort() }))
    expect(before.error).toMatchObject({ code: 'SHOAL_ERR_ABORTED' })
    const { source, state } = stalled()
    const during = await drain(verifyStream(cid, source, { leaves, signal: AbortSignal.timeout(10) }))
    expect(during.error).toMatchObject({ code: 'SHOAL_ERR_ABORTED' })
    expect(state.closed).toBe(true)
    const controller = new AbortController()
    const parts: Uint8Array[] = []
    const consumer = async () => {
      for await (const part of verifyStream(cid, split(data, [CHUNK]), {
        leaves,
        signal: controller.signal,
      })) {
        parts.push(part)
        controller.abort()
      }
    }
    await expect(consumer()).rejects.toMatchObject({ code: 'SHOAL_ERR_ABORTED' })
    expect(parts).toHaveLength(1)
  })

  it('closes the source when the consumer stops early', async () => {
    await setup()
    let closed = false
    const source = (async function* () {
      try {
        yield* split(data, [CHUNK])
      } finally {
        closed = true
      }
    })()
    for await (const _ of verifyStream(cid, source, { leaves })) break
    expect(closed).toBe(true)
  })
})

describe('createChunkVerifier', () => {
  const data = bytesOf(4 * CHUNK + 10)

  it('returns each chunk once it is complete and verified, as the written pieces', async () => {
    const { cid, leaves } = await computeCid(data, { chunkSize: CHUNK })
    const verifier = createChunkVerifier(cid, leaves)
    expect(verifier.range).toEqual({ fetchStart: 0, fetchEnd: data.length, firstChunk: 0, lastChunk: 4 })
    const chunks: VerifiedChunk[] = []
    for (const piece of split(data, [700])) chunks.push(...(await verifier.write(piece)))
    expect(verifier.received).toBe(data.length)
    expect(await verifier.end()).toEqual([])
    expect(chunks.map((c) => [c.index, c.offset, c.length])).toEqual([
      [0, 0, CHUNK],
      [1, CHUNK, CHUNK],
      [2, 2 * CHUNK, CHUNK],
      [3, 3 * CHUNK, CHUNK],
      [4, 4 * CHUNK, 10],
    ])
    for (const c of chunks) expect(concat(c.pieces)).toEqual(data.subarray(c.offset, c.offset + c.length))
    expect(chunks[0]!.pieces.map((p) => p.length)).toEqual([700, CHUNK - 700])
    expect(await verifier.write(new Uint8Array()).catch((e) => e)).toMatchObject({
      code: 'SHOAL_ERR_INVALID_ARGUMENT',
    })
  })

  it('verifies one chunk pulled on its own', async () => {
    const { cid, leaves } = await computeCid(data, { chunkSize: CHUNK })
    const { start, end } = chunkSpan(cid, 2)
    const verifier = createChunkVerifier(cid, leaves, { start, end })
    const [chunk] = await verifier.write(data.subarray(start, end))
    expect(chunk).toMatchObject({ index: 2, offset: start, length: CHUNK })
    await expect(verifier.end()).resolves.toEqual([])
  })

  it('rejects the bad chunk, and every call after it', async () => {
    const { cid, leaves } = await computeCid(data, { chunkSize: CHUNK })
    const verifier = createChunkVerifier(cid, leaves)
    const bad = data.slice()
    bad[CHUNK] = bad[CHUNK]! ^ 0x80
    expect(await verifier.write(bad.subarray(0, CHUNK))).toHaveLength(1)
    const error = await verifier.write(bad.subarray(CHUNK, 2 * CHUNK)).catch((e) => e)
    expect(error).toMatchObject({ code: 'SHOAL_ERR_INTEGRITY', message: expect.stringMatching(/chunk 1 /) })
    await expect(verifier.write(data.subarray(2 * CHUNK))).rejects.toBe(error)
    await expect(verifier.end()).rejects.toBe(error)
  })

  it('rejects a write that completes a bad chunk, whatever it completed before it', async () => {
    const { cid, leaves } = await computeCid(data, { chunkSize: CHUNK })
    const verifier = createChunkVerifier(cid, leaves)
    const bad = data.slice()
    bad[3 * CHUNK] = bad[3 * CHUNK]! ^ 0x01
    await expect(verifier.write(bad)).rejects.toMatchObject({
      code: 'SHOAL_ERR_INTEGRITY',
      message: /chunk 3 /,
    })
  })

  it('rejects missing and extra bytes', async () => {
    const { cid, leaves } = await computeCid(data, { chunkSize: CHUNK })
    const short = createChunkVerifier(cid, leaves)
    await short.write(data.subarray(0, 100))
    await expect(short.end()).rejects.toMatchObject({
      code: 'SHOAL_ERR_INTEGRITY',
      message: /chunk 0 is incomplete/,
    })
    const long = createChunkVerifier(cid, leaves, { start: 0, end: 1 })
    await expect(long.write(data.subarray(0, CHUNK + 1))).rejects.toMatchObject({
      code: 'SHOAL_ERR_INTEGRITY',
    })
  })

  it('refuses leaves that do not rebuild the root, synchronously', async () => {
    const { cid, leaves } = await computeCid(data, { chunkSize: CHUNK })
    const bad = leaves.slice()
    bad[0] = bad[0]! ^ 1
    expect(() => createChunkVerifier(cid, bad)).toThrow(
      expect.objectContaining({ code: 'SHOAL_ERR_INVALID_LEAVES' }),
    )
    expect(() => createChunkVerifier(cid, leaves, { start: 5, end: 5 })).toThrow(
      expect.objectContaining({ code: 'SHOAL_ERR_RANGE_NOT_SATISFIABLE' }),
    )
  })

  it('refuses pieces that are not bytes', async () => {
    const { cid, leaves } = await computeCid(data, { chunkSize: CHUNK })
    await expect(createChunkVerifier(cid, leaves).write('abc' as never)).rejects.toMatchObject({
      code: 'SHOAL_ERR_INVALID_ARGUMENT',
    })
  })
})

describe('verifyChunk', () => {
  const data = bytesOf(5 * CHUNK + 10)

  it('accepts a chunk with its proof and refuses altered bytes or proofs', async () => {
    const { cid, leaves } = await computeCid(data, { chunkSize: CHUNK })
    for (let index = 0; index < 6; index++) {
      const { start, end } = chunkSpan(cid, index)
      const proof = createProof(leaves, index)
      await verifyChunk(cid, index, data.subarray(start, end), proof)
      const flipped = data.slice(start, end)
      flipped[0] = flipped[0]! ^ 1
      await expect(verifyChunk(cid, index, flipped, proof)).rejects.toMatchObject({
        code: 'SHOAL_ERR_INTEGRITY',
      })
    }
    const chunk = data.subarray(0, CHUNK)
    const proof = createProof(leaves, 0)
    await expect(verifyChunk(cid, 0, chunk.subarray(1), proof)).rejects.toMatchObject({
      code: 'SHOAL_ERR_INTEGRITY',
    })
    await expect(verifyChunk(cid, 1, chunk, createProof(leaves, 1))).rejects.toMatchObject({
      code: 'SHOAL_ERR_INTEGRITY',
    })
    await expect(verifyChunk(cid, 0, chunk, proof.slice(1))).rejects.toMatchObject({
      code: 'SHOAL_ERR_INVALID_PROOF',
    })
    await expect(verifyChunk(cid, 0, chunk, [new Uint8Array(3), ...proof.slice(1)])).rejects.toMatchObject({
      code: 'SHOAL_ERR_INVALID_PROOF',
    })
    await expect(verifyChunk(cid, 6, chunk, proof)).rejects.toMatchObject({
      code: 'SHOAL_ERR_INVALID_ARGUMENT',
    })
    await expect(verifyChunk(cid, 0, 'x' as never, proof)).rejects.toMatchObject({
      code: 'SHOAL_ERR_INVALID_ARGUMENT',
    })
  })
})
