import { execFile } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import * as node from '../src/hash/sha256-node.ts'
import * as web from '../src/hash/sha256-web.ts'
import type { Sha256Backend } from '../src/hash/types.ts'

// Both modules must fulfil the contract `#sha256` promises (checked by the type checker).
const backends: Sha256Backend[] = [node, web]

const sha256 = (...parts: Uint8Array[]) => {
  const h = createHash('sha256')
  for (const p of parts) h.update(p)
  return new Uint8Array(h.digest())
}

async function leafOf(backend: Sha256Backend, pieces: Uint8Array[], capacity?: number) {
  const hasher = backend.createLeafHasher(capacity)
  for (const piece of pieces) hasher.update(piece)
  return hasher.digest()
}

describe('#sha256 backends', () => {
  it('are the node one under Node and the web one elsewhere', () => {
    expect(backends.map((b) => b.SHA256_BACKEND)).toEqual(['node', 'web'])
  })

  it('agree on leaf hashes for any piece split, and equal SHA-256(0x00 ‖ bytes)', async () => {
    const data = new Uint8Array(randomBytes(300_000))
    const splits = [
      [data],
      [data.subarray(0, 1), data.subarray(1)],
      [new Uint8Array(), data, new Uint8Array()],
    ]
    for (const pieces of splits) {
      const expected = sha256(Uint8Array.of(0), data)
      expect(await leafOf(node, pieces)).toEqual(expected)
      // A capacity smaller than the chunk makes the web buffer grow.
      expect(await leafOf(web, pieces, 1024)).toEqual(expected)
      expect(await leafOf(web, pieces)).toEqual(expected)
    }
    expect(await leafOf(web, [])).toEqual(await leafOf(node, []))
  })

  it('return plain Uint8Arrays and reset after each digest', async () => {
    for (const backend of backends) {
      const hasher = backend.createLeafHasher(16)
      hasher.update(Uint8Array.of(1, 2, 3))
      const first = await hasher.digest()
      hasher.update(Uint8Array.of(4))
      const second = await hasher.digest()
      expect(Object.getPrototypeOf(first)).toBe(Uint8Array.prototype)
      expect(first).toEqual(sha256(Uint8Array.of(0, 1, 2, 3)))
      expect(second).toEqual(sha256(Uint8Array.of(0, 4)))
      expect(await hasher.digest()).toEqual(sha256(Uint8Array.of(0)))
    }
  })

  it('snapshot the chunk when digest() is called, before a web digest settles', async () => {
    const piece = Uint8Array.of(9, 9, 9)
    const hasher = web.createLeafHasher(8)
    hasher.update(piece)
    const pending = hasher.digest()
    piece.fill(0)
    hasher.update(Uint8Array.of(5))
    expect(await pending).toEqual(sha256(Uint8Array.of(0, 9, 9, 9)))
    expect(await hasher.digest()).toEqual(sha256(Uint8Array.of(0, 5)))
  })

  it('agree on text leaves SHA-256(0x00 ‖ UTF-8), ASCII or not, short or long', () => {
    for (const text of [
      '',
      '{"path":"/a"}',
      '/caf\u00e9/\u{1f600}/\uff5a',
      'x'.repeat(5000),
      '\u00e9'.repeat(3000),
    ]) {
      const expected = sha256(Uint8Array.of(0), new TextEncoder().encode(text))
      for (const backend of backends) expect(backend.hashTextLeaf(text)).toEqual(expected)
    }
    expect(Object.getPrototypeOf(node.hashTextLeaf('a'))).toBe(Uint8Array.prototype)
  })

  it('agree on interior nodes SHA-256(0x01 ‖ left ‖ right), pair by pair', () => {
    const pairs = new Uint8Array(randomBytes(5 * 64))
    const expected = new Uint8Array(5 * 32)
    for (let i = 0; i < 5; i++)
      expected.set(sha256(Uint8Array.of(1), pairs.subarray(i * 64, i * 64 + 64)), i * 32)
    for (const backend of backends) {
      const out = new Uint8Array(5 * 32)
      backend.hashPairs(pairs, out)
      expect(out).toEqual(expected)
    }
  })
})

const run = promisify(execFile)
const PROTOCOL = pathToFileURL(fileURLToPath(new URL('../src/index.ts', import.meta.url))).href

/**
 * Exercises the whole content API and prints what it saw. Run twice in child processes:
 * once as Node resolves the package, once with the `node` condition removed (what a
 * browser bundler does), where a resolve hook also records every builtin import.
 */
const SCENARIO = `
import { registerHooks, builtinModules } from 'node:module'
const browser = process.argv[2] === 'browser'
const builtins = []
const backends = []
registerHooks({
  resolve(specifier, context, next) {
    if (specifier.startsWith('node:') || builtinModules.includes(specifier)) builtins.push(specifier)
    const conditions = browser ? context.conditions.filter((c) => c !== 'node').concat('browser') : context.conditions
    const resolved = next(specifier, { ...context, conditions })
    if (specifier === '#sha256') backends.push(resolved.url.split('/').pop())
    return resolved
  },
})
const p = await import(${JSON.stringify(PROTOCOL)})
const hex = (b) => Buffer.from(b).toString('hex')
const data = Uint8Array.from({ length: 9 * 1024 + 77 }, (_, i) => (i * 131 + (i >> 9)) & 0xff)
const out = { builtins, backends: [...new Set(backends)] }
const { cid, leaves } = await p.computeCid(data, { chunkSize: 1024 })
const pieces = []
for (let at = 0; at < data.length; at += 700) pieces.push(data.subarray(at, at + 700))
const streamed = await p.computeCid((async function* () { yield* pieces })(), { chunkSize: 1024 })
out.cid = cid.text
out.streamed = streamed.cid.text
out.leaves = hex(leaves)
out.hashChunk = hex(await p.hashChunk(data.subarray(0, 1024)))
await p.verifyLeaves(cid, leaves.slice())
const proof = p.createProof(leaves, 8)
await p.verifyProof(cid, 8, leaves.subarray(8 * 32, 9 * 32), proof)
out.proof = hex(p.encodeProof(proof))
let seen = 0
for await (const b of p.verifyStream(cid, pieces, { leaves })) seen += b.length
out.verified = seen
const span = p.alignRange(cid, 2000, 5000)
const ranged = []
for await (const b of p.verifyStream(cid, [data.subarray(span.fetchStart, span.fetchEnd)], { leaves, start: 2000, end: 5000 })) ranged.push(...b)
out.range = ranged.length === 3000 && ranged.every((v, i) => v === data[2000 + i])
const bad = data.slice()
bad[3 * 1024 + 5] ^= 1
const got = []
try { for await (const b of p.verifyStream(cid, [bad.subarray(0, 4096), bad.subarray(4096)], { leaves })) got.push(b.length) } catch (e) { out.corrupt = e.code + ' ' + e.message.split(' of ')[0] }
out.beforeCorrupt = got.reduce((a, b) => a + b, 0)
const v = p.createChunkVerifier(cid, leaves)
const chunks = []
for (const piece of pieces) chunks.push(...(await v.write(piece)).map((c) => c.index))
await v.end()
out.chunks = chunks
await p.verifyChunk(cid, 9, data.subarray(9 * 1024), p.createProof(leaves, 9))
const empty = await p.computeCid(new Uint8Array())
out.empty = empty.cid.text
const entry = { path: '/caf\u00e9/\u{1f600}.png', cid: out.cid, size: 9 * 1024 + 77, contentType: 'image/png', cacheControl: '' }
const entries = [0, 1, 2].map((i) => ({ ...entry, path: entry.path + i }))
const manifest = { publisher: '0x1a642f0E3c3aF545E7AcBD38b07251B3990914F1', site: 'blog', sequence: 1, origin: '', timestamp: 1, entries }
out.entriesRoot = p.siteManifestHeader(manifest).entriesRoot
out.emptyEntriesRoot = p.siteManifestHeader({ ...manifest, entries: [] }).entriesRoot
const signed = { message: manifest, signature: '0x' + '11'.repeat(65) }
out.entryProof = p.encodeManifestEntryProof(p.createManifestEntryProof(signed, entries[2].path))
process.stdout.write(JSON.stringify(out))
`

describe('the content API on the browser build', () => {
  it('never imports a builtin, uses WebCrypto, and agrees with the Node build (manifest entry trees too)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shoal-content-'))
    try {
      const script = join(dir, 'scenario.mjs')
      await writeFile(script, SCENARIO)
      const [nodeRun, browserRun] = await Promise.all([
        run(process.execPath, [script, 'node'], { timeout: 20_000 }),
        run(process.execPath, [script, 'browser'], { timeout: 20_000 }),
      ])
      const onNode = JSON.parse(nodeRun.stdout)
      const inBrowser = JSON.parse(browserRun.stdout)
      expect(onNode.backends).toEqual(['sha256-node.ts'])
      expect(inBrowser.backends).toEqual(['sha256-web.ts'])
      expect(inBrowser.builtins).toEqual([])
      expect(onNode.builtins).toContain('node:crypto')
      expect(onNode.streamed).toBe(onNode.cid)
      expect(onNode.verified).toBe(9 * 1024 + 77)
      expect(onNode.range).toBe(true)
      expect(onNode.corrupt).toBe('SHOAL_ERR_INTEGRITY chunk 3')
      expect(onNode.beforeCorrupt).toBe(3 * 1024)
      expect(onNode.chunks).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
      expect(onNode.emptyEntriesRoot).toBe(
        '0x6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
      )
      const { builtins: _a, backends: _b, ...nodeResults } = onNode
      const { builtins: _c, backends: _d, ...browserResults } = inBrowser
      expect(browserResults).toEqual(nodeResults)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
