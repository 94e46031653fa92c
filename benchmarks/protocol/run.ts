/**
 * `npm run bench -- protocol`: hashing cost of Shoal's content layer against raw SHA-256.
 *
 * Over one 256 MiB buffer, in one process, alternating each repetition:
 * - raw: `createHash('sha256').update(buffer).digest()`, the floor any verifier pays;
 * - cid: `computeCid(buffer)`, leaf hashes plus the tree;
 * - verify: `verifyStream` over the same bytes fed as 64 KiB pieces from an async
 *   generator (the shape of a socket), every verified piece consumed;
 * - push: `createChunkVerifier`, the edge node's path, written the same 64 KiB pieces;
 * - cidPieces: `computeCid` over the 64 KiB pieces (publishing from a stream).
 * Figures are medians of REPS repetitions after one warm-up; `verify_ratio` is the median
 * of the per-repetition ratios verify ÷ raw, so drift between repetitions cancels out.
 */
import { createHash, randomFillSync } from 'node:crypto'
import { computeCid, createChunkVerifier, verifyStream } from '@shoal/protocol'
import { median, printResult, round, writeResult } from '../src/results.ts'

const SIZE = 256 * 2 ** 20
const PIECE = 64 * 1024
const REPS = 5 // after one warm-up round
const GIB = 2 ** 30

const buffer = new Uint8Array(SIZE)
for (let at = 0; at < SIZE; at += 2 ** 16) randomFillSync(buffer, at, 2 ** 16)

async function* socketLike(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.length; at += PIECE) yield bytes.subarray(at, at + PIECE)
}

function seconds(since: bigint): number {
  return Number(process.hrtime.bigint() - since) / 1e9
}

async function raw(): Promise<number> {
  const t = process.hrtime.bigint()
  createHash('sha256').update(buffer).digest()
  return seconds(t)
}

async function cid(): Promise<number> {
  const t = process.hrtime.bigint()
  await computeCid(buffer)
  return seconds(t)
}

const { cid: id, leaves } = await computeCid(buffer)

async function verify(): Promise<number> {
  const t = process.hrtime.bigint()
  let seen = 0
  for await (const bytes of verifyStream(id, socketLike(buffer), { leaves })) seen += bytes.length
  const s = seconds(t)
  if (seen !== SIZE) throw new Error(`verifyStream yielded ${seen} bytes, expected ${SIZE}`)
  return s
}

async function push(): Promise<number> {
  const t = process.hrtime.bigint()
  const verifier = createChunkVerifier(id, leaves)
  let seen = 0
  for await (const piece of socketLike(buffer)) {
    for (const chunk of await verifier.write(piece)) seen += chunk.length
  }
  await verifier.end()
  const s = seconds(t)
  if (seen !== SIZE) throw new Error(`the chunk verifier returned ${seen} bytes, expected ${SIZE}`)
  return s
}

async function cidPieces(): Promise<number> {
  const t = process.hrtime.bigint()
  await computeCid(socketLike(buffer))
  return seconds(t)
}

const variants = { raw, cid, verify, push, cidPieces }
type Variant = keyof typeof variants
const names = Object.keys(variants) as Variant[]

// Warm-up: JIT, OpenSSL tables, page faults on the buffer.
for (const name of names) await variants[name]()

const times = Object.fromEntries(names.map((name) => [name, [] as number[]])) as Record<Variant, number[]>
const ratios: number[] = []
for (let rep = 0; rep < REPS; rep++) {
  // Rotate the order so no variant always runs first (A B C, B C A, C A B, …).
  const order = names.map((_, k) => names[(k + rep) % names.length]!)
  const lap = {} as Record<Variant, number>
  for (const name of order) {
    lap[name] = await variants[name]()
    times[name].push(lap[name])
  }
  ratios.push(lap.raw / lap.verify)
  console.log(
    `rep ${rep + 1}: ${names.map((name) => `${name} ${round(SIZE / GIB / lap[name])} GiB/s`).join(', ')}`,
  )
}

const gibS = (s: number) => round(SIZE / GIB / s)
const result = await writeResult('protocol', {
  verify_ratio: {
    value: round(median(ratios)),
    unit: 'ratio',
    goal: 0.8,
    goalKind: 'min',
    detail: {
      verify_gib_s: gibS(median(times.verify)),
      raw_sha256_gib_s: gibS(median(times.raw)),
      chunk_verifier_gib_s: gibS(median(times.push)),
      chunk_verifier_ratio: round(median(times.raw) / median(times.push)),
      ratios: ratios.map((r) => round(r)),
      verify_s: times.verify.map((s) => round(s, 4)),
      raw_s: times.raw.map((s) => round(s, 4)),
      piece_bytes: PIECE,
      size_bytes: SIZE,
      chunk_size: id.chunkSize,
      runs: REPS,
    },
  },
  cid_gib_s: {
    value: gibS(median(times.cid)),
    unit: 'GiB/s',
    detail: {
      raw_sha256_gib_s: gibS(median(times.raw)),
      cid_vs_raw: round(median(times.raw) / median(times.cid)),
      cid_64k_pieces_gib_s: gibS(median(times.cidPieces)),
      cid_s: times.cid.map((s) => round(s, 4)),
      size_bytes: SIZE,
      chunk_size: id.chunkSize,
      runs: REPS,
    },
  },
})
printResult(result)
