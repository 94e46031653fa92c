/**
 * Writes protocol/test-vectors/content.json: CIDs, leaf lists, roots and proofs for a few
 * inputs, so another implementation can check itself against this one.
 *
 *   npx node protocol/scripts/content-vectors.ts
 *
 * Inputs are prefixes of one deterministic byte pattern (xorshift32, below), so the file
 * stores recipes, never the 10 MiB of bytes. `protocol/test/vectors-content.test.ts`
 * regenerates every input and checks every figure.
 */
import { createHash } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chunkCount, computeCid, createProof, DEFAULT_CHUNK_SIZE, HASH_SIZE } from '../src/index.ts'

const SEED = 2463534242
const OUT = join(dirname(fileURLToPath(import.meta.url)), '..', 'test-vectors', 'content.json')

/**
 * The first `length` bytes of the xorshift32 stream: state = seed; per 4 output bytes,
 * state ^= state << 13; state ^= state >>> 17; state ^= state << 5 (all mod 2^32), then
 * emit state little-endian. The last word is cut to fit.
 */
function pattern(length: number, seed = SEED): Uint8Array {
  const out = new Uint8Array(length)
  const view = new DataView(out.buffer)
  let x = seed >>> 0
  for (let at = 0; at < length; at += 4) {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    if (at + 4 <= length) view.setUint32(at, x, true)
    else for (let k = 0; at + k < length; k++) out[at + k] = (x >>> (8 * k)) & 0xff
  }
  return out
}

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex')

const CASES = [
  { name: 'empty', length: 0, chunkSize: DEFAULT_CHUNK_SIZE, proofs: [0] },
  { name: 'one byte', length: 1, chunkSize: DEFAULT_CHUNK_SIZE, proofs: [0] },
  { name: 'exactly one chunk', length: DEFAULT_CHUNK_SIZE, chunkSize: DEFAULT_CHUNK_SIZE, proofs: [0] },
  {
    name: 'one chunk plus one byte',
    length: DEFAULT_CHUNK_SIZE + 1,
    chunkSize: DEFAULT_CHUNK_SIZE,
    proofs: [0, 1],
  },
  {
    name: 'five 1 KiB chunks, last one short',
    length: 4 * 1024 + 100,
    chunkSize: 1024,
    proofs: [0, 1, 2, 3, 4],
  },
  { name: '10 MiB', length: 10 * 1024 * 1024, chunkSize: DEFAULT_CHUNK_SIZE, proofs: [7, 39] },
]

const vectors = []
for (const c of CASES) {
  const input = pattern(c.length)
  const { cid, leaves } = await computeCid(input, { chunkSize: c.chunkSize })
  const leafList = Array.from({ length: chunkCount(cid) }, (_, i) =>
    hex(leaves.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE)),
  )
  vectors.push({
    name: c.name,
    input: { pattern: 'xorshift32', seed: SEED, length: c.length },
    inputHead: hex(input.subarray(0, 16)),
    inputSha256: createHash('sha256').update(input).digest('hex'),
    chunkSize: c.chunkSize,
    size: cid.size,
    cid: cid.text,
    cidBinary: hex(binaryOf(cid)),
    root: hex(cid.root),
    leaves: leafList,
    proofs: c.proofs.map((index) => ({
      index,
      leaf: leafList[index],
      proof: createProof(leaves, index).map(hex),
    })),
  })
}

function binaryOf(cid: { chunkSize: number; size: number; root: Uint8Array }): Uint8Array {
  const varint: number[] = []
  let rest = cid.size
  while (rest >= 0x80) {
    varint.push((rest % 0x80) | 0x80)
    rest = Math.floor(rest / 0x80)
  }
  varint.push(rest)
  return Uint8Array.from([1, Math.log2(cid.chunkSize), ...varint, ...cid.root])
}

const file = {
  description:
    'Shoal content id test vectors. Each input is the first `length` bytes of the xorshift32 pattern with the given seed; see docs/protocol.md ("Content", "Test vectors").',
  pattern: {
    name: 'xorshift32',
    algorithm:
      'x = seed (uint32); for every 4 output bytes: x ^= x << 13; x ^= x >>> 17; x ^= x << 5 (mod 2^32); emit x as 4 bytes little-endian; cut the last word to the length',
    seed: SEED,
  },
  vectors,
}
await writeFile(OUT, `${JSON.stringify(file, null, 2)}\n`)
console.log(`wrote ${vectors.length} vectors to ${OUT}`)
