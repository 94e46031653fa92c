import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  alignRange,
  chunkCount,
  computeCid,
  createProof,
  formatCid,
  merkleRoot,
  parseCid,
  verifyLeaves,
  verifyProof,
  verifyStream,
} from '../src/index.ts'

const CHUNK = 1024
const RUNS = { numRuns: 100 }

function split(bytes: Uint8Array, sizes: number[]): Uint8Array[] {
  const out: Uint8Array[] = []
  for (let at = 0, k = 0; at < bytes.length; k++) {
    const size = sizes.length === 0 ? bytes.length : sizes[k % sizes.length]!
    out.push(bytes.subarray(at, at + size))
    at += size
  }
  return out
}

async function drain(stream: AsyncIterable<Uint8Array>): Promise<{ bytes: Uint8Array; error: unknown }> {
  const parts: Uint8Array[] = []
  try {
    for await (const part of stream) parts.push(part)
  } catch (error) {
    return { bytes: new Uint8Array(Buffer.concat(parts)), error }
  }
  return { bytes: new Uint8Array(Buffer.concat(parts)), error: undefined }
}

const flip = (bytes: Uint8Array, bit: number) => {
  const out = bytes.slice()
  out[bit >>> 3] = out[bit >>> 3]! ^ (1 << (bit & 7))
  return out
}

const content = fc.uint8Array({ minLength: 1, maxLength: 6 * CHUNK + 100 })
const pieceSizes = fc.array(fc.integer({ min: 1, max: 2500 }), { maxLength: 6 })

describe('content properties', () => {
  it('CID text round-trips for any chunk size, size and root', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 10, max: 24 }),
        fc.maxSafeNat(),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        (log2, size, root) => {
          const cid = formatCid({ chunkSize: 2 ** log2, size, root })
          expect(cid.text).toMatch(/^s[a-z2-7]+$/)
          expect(parseCid(cid.text)).toEqual(cid)
        },
      ),
      { numRuns: 200 },
    )
  })

  it('only the canonical text parses: any edit is refused or is another canonical CID', () => {
    const chars = 'abcdefghijklmnopqrstuvwxyz234567ABCXYZ0189=-_ '
    fc.assert(
      fc.property(
        fc.maxSafeNat(),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.nat(),
        fc.constantFrom(...chars),
        fc.constantFrom('replace', 'insert', 'delete'),
        (size, root, at, char, edit) => {
          const { text } = formatCid({ chunkSize: CHUNK, size, root })
          const i = at % text.length
          const edited =
            edit === 'replace'
              ? text.slice(0, i) + char + text.slice(i + 1)
              : edit === 'insert'
                ? text.slice(0, i) + char + text.slice(i)
                : text.slice(0, i) + text.slice(i + 1)
          let parsed: ReturnType<typeof parseCid> | undefined
          try {
            parsed = parseCid(edited)
          } catch (error) {
            expect(error).toMatchObject({ code: 'SHOAL_ERR_INVALID_CID' })
          }
          if (parsed !== undefined) {
            expect(parsed.text).toBe(edited)
            expect(formatCid(parsed).text).toBe(edited)
          }
        },
      ),
      { numRuns: 400 },
    )
  })

  it('computeCid gives the same CID for any split of the input', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 5 * CHUNK }), pieceSizes, async (data, sizes) => {
        const whole = await computeCid(data, { chunkSize: CHUNK })
        const pieces = await computeCid(split(data, sizes), { chunkSize: CHUNK })
        expect(pieces.cid.text).toBe(whole.cid.text)
        expect(pieces.leaves).toEqual(whole.leaves)
        expect(chunkCount(whole.cid)).toBe(Math.max(1, Math.ceil(data.length / CHUNK)))
      }),
      RUNS,
    )
  })

  it('verifyStream yields exactly the requested bytes for any range and piece boundaries', async () => {
    await fc.assert(
      fc.asyncProperty(content, pieceSizes, fc.nat(), fc.nat(), async (data, sizes, a, b) => {
        const { cid, leaves } = await computeCid(data, { chunkSize: CHUNK })
        const start = a % data.length
        const end = start + 1 + (b % (data.length - start))
        const { fetchStart, fetchEnd } = alignRange(cid, start, end)
        const source = split(data.subarray(fetchStart, fetchEnd), sizes)
        const { bytes, error } = await drain(verifyStream(cid, source, { leaves, start, end }))
        expect(error).toBeUndefined()
        expect(bytes).toEqual(data.subarray(start, end))
      }),
      RUNS,
    )
  })

  it('any flipped bit in the content fails at its chunk, after exactly the chunks before it', async () => {
    await fc.assert(
      fc.asyncProperty(content, pieceSizes, fc.nat(), async (data, sizes, at) => {
        const { cid, leaves } = await computeCid(data, { chunkSize: CHUNK })
        const bit = at % (data.length * 8)
        const chunk = Math.floor(bit / 8 / CHUNK)
        const { bytes, error } = await drain(verifyStream(cid, split(flip(data, bit), sizes), { leaves }))
        expect(error).toMatchObject({
          code: 'SHOAL_ERR_INTEGRITY',
          message: expect.stringContaining(`chunk ${chunk} `),
        })
        expect(bytes).toEqual(data.subarray(0, chunk * CHUNK))
      }),
      RUNS,
    )
  })

  it('any flipped bit in the leaves or the root fails verifyLeaves', async () => {
    await fc.assert(
      fc.asyncProperty(content, fc.nat(), async (data, at) => {
        const { cid, leaves } = await computeCid(data, { chunkSize: CHUNK })
        const bit = at % (leaves.length * 8)
        await expect(verifyLeaves(cid, flip(leaves, bit))).rejects.toMatchObject({
          code: 'SHOAL_ERR_INVALID_LEAVES',
        })
        const wrongRoot = formatCid({ ...cid, root: flip(cid.root, at % 256) })
        await expect(verifyLeaves(wrongRoot, leaves.slice())).rejects.toMatchObject({
          code: 'SHOAL_ERR_INVALID_LEAVES',
        })
      }),
      RUNS,
    )
  })

  it('any flipped bit in a proof or its leaf fails verifyProof', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 2, max: 40 }),
        fc.nat(),
        fc.nat(),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        async (count, i, at, seed) => {
          // Distinct synthetic leaves: the seed xor-ed with each index.
          const leaves = new Uint8Array(count * 32)
          for (let k = 0; k < count; k++)
            leaves.set(
              seed.map((v) => v ^ k),
              k * 32,
            )
          const cid = formatCid({ chunkSize: CHUNK, size: count * CHUNK, root: merkleRoot(leaves) })
          const index = i % count
          const leaf = leaves.slice(index * 32, index * 32 + 32)
          const proof = createProof(leaves, index)
          await verifyProof(cid, index, leaf, proof)
          const bit = at % (proof.length * 256)
          const bad = proof.map((h, k) => (k === bit >>> 8 ? flip(h, bit & 255) : h))
          await expect(verifyProof(cid, index, leaf, bad)).rejects.toMatchObject({
            code: 'SHOAL_ERR_INVALID_PROOF',
          })
          await expect(verifyProof(cid, index, flip(leaf, at % 256), proof)).rejects.toMatchObject({
            code: 'SHOAL_ERR_INVALID_PROOF',
          })
        },
      ),
      RUNS,
    )
  })
})
