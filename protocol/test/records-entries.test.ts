import { createHash } from 'node:crypto'
import fc from 'fast-check'
import { type Hex, hexToBytes, toHex } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { describe, expect, it } from 'vitest'
import { syntheticManifest } from '../scripts/manifest-timing.ts'
import { SAMPLE_MESSAGES, SAMPLE_TIME, TEST_ACCOUNTS } from '../scripts/records-vectors.ts'
import {
  comparePaths,
  createManifestEntryProof,
  createManifestEntryProver,
  createProof,
  decodeManifestEntryProof,
  decodeSiteManifest,
  encodeManifestEntryProof,
  encodeSiteManifest,
  hashSiteManifest,
  hashSiteManifestHeader,
  isShoalError,
  type ManifestEntry,
  type ManifestEntryProof,
  merkleRoot,
  pathProblem,
  RECORD_LIMITS,
  SHOAL_DOMAIN,
  type Signed,
  type SiteManifest,
  type SiteManifestHeader,
  signPurgeRequest,
  signSiteManifest,
  siteManifestHeader,
  siteManifestTypedData,
  siteManifestTypes,
  validateSiteManifest,
  verifyManifestEntryProof,
  verifySiteManifest,
} from '../src/index.ts'
import { entryLeaves } from '../src/records/manifestEntries.ts'

const { publisher } = TEST_ACCOUNTS
const stranger = privateKeyToAccount(`0x${'05'.repeat(32)}`)
const manifest = SAMPLE_MESSAGES.SiteManifest
const at = { now: SAMPLE_TIME }
const EMPTY_ROOT = '0x6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d'

const signed = await signSiteManifest(publisher, manifest)
const prover = createManifestEntryProver(signed)
const proofs = manifest.entries.map((entry) => prover.prove(entry.path))

async function codeOf(run: () => unknown): Promise<string> {
  try {
    await run()
  } catch (error) {
    return isShoalError(error) ? error.code : String(error)
  }
  return 'accepted'
}

const flipBit = (hex: Hex, bit: number): Hex => {
  const bytes = hexToBytes(hex)
  bytes[bit >> 3] = (bytes[bit >> 3] ?? 0) ^ (1 << (bit & 7))
  return toHex(bytes)
}

/** Signs a header as any EIP-712 signer would, whatever entries it commits to. */
const signHeader = (header: SiteManifestHeader, account = publisher) =>
  account.signTypedData({
    domain: SHOAL_DOMAIN,
    types: siteManifestTypes,
    primaryType: 'SiteManifest',
    message: {
      ...header,
      sequence: BigInt(header.sequence),
      timestamp: BigInt(header.timestamp),
      entryCount: BigInt(header.entryCount),
    },
  })

describe('site manifest header', () => {
  it('derives entryCount and entriesRoot from the entries; the signed digest is the header’s', () => {
    const header = siteManifestHeader(manifest)
    const { entries: _entries, ...rest } = manifest
    expect(header).toEqual({ ...rest, entryCount: 5, entriesRoot: expect.stringMatching(/^0x[0-9a-f]{64}$/) })
    expect(header.entriesRoot).toBe(toHex(merkleRoot(entryLeaves(manifest.entries))))
    expect(hashSiteManifestHeader(header)).toBe(hashSiteManifest(manifest))
    const typed = siteManifestTypedData(manifest)
    expect(typed.types).toEqual({ SiteManifest: expect.any(Array) })
    expect(typed.message).toEqual({ ...header, sequence: 7n, timestamp: BigInt(SAMPLE_TIME), entryCount: 5n })
  })

  it('changes entriesRoot when any field of any entry changes, and when an entry is added or removed', () => {
    const roots = new Set([siteManifestHeader(manifest).entriesRoot])
    manifest.entries.forEach((entry, i) => {
      const variants: Partial<ManifestEntry>[] = [
        { cid: `${entry.cid}a` },
        { size: entry.size + 1 },
        { contentType: `${entry.contentType}x` },
        { cacheControl: entry.cacheControl === '' ? 'no-store' : '' },
        { path: `${entry.path}x` },
      ]
      for (const change of variants) {
        const entries = manifest.entries.map((e, j) => (j === i ? { ...e, ...change } : e))
        if (entries.some((e, j) => j > 0 && comparePaths(entries[j - 1]!.path, e.path) >= 0)) continue
        roots.add(siteManifestHeader({ ...manifest, entries }).entriesRoot)
      }
    })
    roots.add(siteManifestHeader({ ...manifest, entries: manifest.entries.slice(1) }).entriesRoot)
    roots.add(siteManifestHeader({ ...manifest, entries: manifest.entries.slice(0, -1) }).entriesRoot)
    expect(roots.size).toBeGreaterThanOrEqual(1 + 5 * 4 + 2)
  })

  it('never reads entryCount or entriesRoot from a manifest: they are unknown fields there', () => {
    for (const extra of [{ entryCount: 5 }, { entriesRoot: siteManifestHeader(manifest).entriesRoot }]) {
      expect(() => validateSiteManifest({ ...manifest, ...extra })).toThrow(
        expect.objectContaining({
          code: 'SHOAL_ERR_INVALID_FORMAT',
          message: expect.stringContaining('unknown'),
        }),
      )
      expect(() => decodeSiteManifest({ ...signed, message: { ...signed.message, ...extra } })).toThrow(
        expect.objectContaining({ code: 'SHOAL_ERR_INVALID_FORMAT' }),
      )
    }
  })

  it('keeps the manifest document as it was: entries in the JSON, no header fields', () => {
    const text = encodeSiteManifest(signed)
    expect(text).toMatch(/^\{"message":\{"publisher":"0x[0-9a-fA-F]{40}","site":"blog","sequence":7,/)
    expect(text).toContain('"entries":[{"path":"/caf\u00e9/men\u00fc.html","cid":')
    expect(text).not.toContain('entryCount')
    expect(text).not.toContain('entriesRoot')
  })

  it('refuses a manifest whose entries changed after signing, whichever entry and field', async () => {
    for (let i = 0; i < manifest.entries.length; i++) {
      const entry = manifest.entries[i]!
      for (const change of [
        { size: entry.size + 1 },
        { cid: `${entry.cid}q` },
        { cacheControl: 'private' },
      ]) {
        const entries = manifest.entries.map((e, j) => (j === i ? { ...e, ...change } : e))
        const bad = { ...signed, message: { ...signed.message, entries } }
        expect(await codeOf(() => verifySiteManifest(bad, at))).toBe('SHOAL_ERR_INVALID_SIGNATURE')
      }
    }
    const fewer = { ...signed, message: { ...signed.message, entries: manifest.entries.slice(0, 4) } }
    expect(await codeOf(() => verifySiteManifest(fewer, at))).toBe('SHOAL_ERR_INVALID_SIGNATURE')
  })

  it('gives the empty manifest the root SHA-256(0x00); it signs, verifies and proves no path', async () => {
    const empty = { ...manifest, entries: [] }
    expect(siteManifestHeader(empty)).toMatchObject({ entryCount: 0, entriesRoot: EMPTY_ROOT })
    expect(EMPTY_ROOT).toBe(`0x${createHash('sha256').update(Uint8Array.of(0)).digest('hex')}`)
    const signedEmpty = await signSiteManifest(publisher, empty)
    expect(await verifySiteManifest(signedEmpty, at)).toEqual(empty)
    expect(createManifestEntryProver(signedEmpty).header.entriesRoot).toBe(EMPTY_ROOT)
    expect(await codeOf(() => createManifestEntryProof(signedEmpty, '/index.html'))).toBe(
      'SHOAL_ERR_NOT_FOUND',
    )
  })

  it('refuses a header that is not canonical', () => {
    const header = siteManifestHeader(manifest)
    for (const bad of [
      { ...header, entriesRoot: header.entriesRoot.toUpperCase().replace('0X', '0x') },
      { ...header, entryCount: RECORD_LIMITS.manifestEntries + 1 },
      { ...header, entryCount: -1 },
      { ...header, extra: 1 },
    ]) {
      expect(() => hashSiteManifestHeader(bad as never)).toThrow(
        expect.objectContaining({
          code: 'SHOAL_ERR_INVALID_FORMAT',
          message: expect.stringContaining('SiteManifestHeader'),
        }),
      )
    }
  })
})

describe('manifest entry proofs', () => {
  it('prove every path: encode → decode → verify gives the header and the entry', async () => {
    const header = siteManifestHeader(manifest)
    for (const [i, proof] of proofs.entries()) {
      expect(proof).toMatchObject({
        header,
        signature: signed.signature,
        index: i,
        entry: manifest.entries[i],
      })
      const decoded = decodeManifestEntryProof(encodeManifestEntryProof(proof))
      expect(decoded).toEqual(proof)
      const path = manifest.entries[i]!.path
      expect(
        await verifyManifestEntryProof(decoded, { ...at, site: 'blog', path, publisher: publisher.address }),
      ).toEqual({
        header,
        entry: manifest.entries[i],
      })
    }
    // Five leaves: the last is promoted twice, so its proof is one hash.
    expect(proofs.map((p) => p.proof.length)).toEqual([3, 3, 3, 3, 1])
  })

  it('gives the same proofs from a prover and one at a time, and the prover keeps its own copy', () => {
    const copy = structuredClone(signed) as Signed<SiteManifest>
    const own = createManifestEntryProver(copy)
    copy.message.entries[1]!.size = 1
    copy.message.entries.pop()
    for (const [i, entry] of manifest.entries.entries()) {
      expect(own.prove(entry.path)).toEqual(proofs[i])
      expect(createManifestEntryProof(signed, entry.path)).toEqual(proofs[i])
    }
    const proof = own.prove('/index.html')
    proof.proof[0] = `0x${'00'.repeat(32)}`
    proof.entry.size = 2
    expect(own.prove('/index.html')).toEqual(proofs[1])
  })

  it('answers NotFoundError for a path the manifest does not have, and refuses a path that is not a string', async () => {
    for (const path of [
      '/',
      '/index',
      '/index.html/',
      '/index.htm',
      '/robots.txt ',
      '/zzz',
      '',
      '/\u{1f601}.png',
    ]) {
      expect(await codeOf(() => prover.prove(path))).toBe('SHOAL_ERR_NOT_FOUND')
    }
    expect(() => prover.prove('/nope')).toThrow(/site blog \(sequence 7\) has no entry "\/nope"/)
    expect(await codeOf(() => prover.prove(3 as never))).toBe('SHOAL_ERR_INVALID_ARGUMENT')
    expect(
      await codeOf(() =>
        createManifestEntryProver({ message: { ...manifest, site: 'A' }, signature: signed.signature }),
      ),
    ).toBe('SHOAL_ERR_INVALID_FORMAT')
  })

  it('refuses a flipped bit in the entries root, in any proof hash or in the signature', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 4 }),
        fc.constantFrom('root', 'proof', 'signature'),
        fc.nat(),
        async (i, target, bit) => {
          const proof = structuredClone(proofs[i]!)
          if (target === 'root') proof.header.entriesRoot = flipBit(proof.header.entriesRoot, bit % 256)
          if (target === 'proof') {
            const k = bit % proof.proof.length
            proof.proof[k] = flipBit(proof.proof[k]!, (bit >> 4) % 256)
          }
          if (target === 'signature') proof.signature = flipBit(proof.signature, bit % 520)
          const expected = target === 'signature' ? 'SHOAL_ERR_INVALID_SIGNATURE' : 'SHOAL_ERR_INVALID_PROOF'
          expect(await codeOf(() => verifyManifestEntryProof(proof, at))).toBe(expected)
        },
      ),
      { numRuns: 150 },
    )
  })

  it('refuses a flipped bit in any field of the entry', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 4 }),
        fc.constantFrom('path', 'cid', 'size', 'contentType', 'cacheControl'),
        fc.nat(),
        async (i, field, bit) => {
          const proof = structuredClone(proofs[i]!)
          const value = proof.entry[field]
          if (typeof value === 'number') (proof.entry as { size: number }).size = value ^ (1 << (bit % 30))
          else if (value === '') (proof.entry as { cacheControl: string }).cacheControl = '!'
          else {
            const pos = bit % value.length
            const flipped = String.fromCodePoint((value.codePointAt(pos) ?? 0) ^ (1 << ((bit >> 8) % 7)))
            ;(proof.entry as unknown as Record<string, string>)[field] =
              value.slice(0, pos) + flipped + value.slice(pos + 1)
          }
          // Either the entry is no longer well formed, or it no longer matches its leaf.
          expect(['SHOAL_ERR_INVALID_PROOF', 'SHOAL_ERR_INVALID_FORMAT']).toContain(
            await codeOf(() => verifyManifestEntryProof(proof, at)),
          )
        },
      ),
      { numRuns: 200 },
    )
  })

  it('refuses a proof moved to any other index, and an index not below entryCount as a format error', async () => {
    for (const [i, proof] of proofs.entries()) {
      for (let index = 0; index < 5; index++) {
        if (index === i) continue
        expect(await codeOf(() => verifyManifestEntryProof({ ...proof, index }, at))).toBe(
          'SHOAL_ERR_INVALID_PROOF',
        )
      }
      for (const index of [5, 6, 2 ** 32]) {
        expect(await codeOf(() => verifyManifestEntryProof({ ...proof, index }, at))).toBe(
          'SHOAL_ERR_INVALID_FORMAT',
        )
      }
    }
    // Two entries swapped between proofs: each leaf is now at the other's position.
    const [a, b] = [proofs[0]!, proofs[1]!]
    expect(await codeOf(() => verifyManifestEntryProof({ ...a, entry: b.entry }, at))).toBe(
      'SHOAL_ERR_INVALID_PROOF',
    )
    expect(await codeOf(() => verifyManifestEntryProof({ ...a, proof: b.proof }, at))).toBe(
      'SHOAL_ERR_INVALID_PROOF',
    )
  })

  it('cannot be given another entryCount: either the shape or the signature gives it away', async () => {
    const codes = new Set<string>()
    for (const proof of proofs) {
      for (let count = proof.index + 1; count <= 64; count++) {
        if (count === 5) continue
        const code = await codeOf(() =>
          verifyManifestEntryProof({ ...proof, header: { ...proof.header, entryCount: count } }, at),
        )
        expect(['SHOAL_ERR_INVALID_PROOF', 'SHOAL_ERR_INVALID_SIGNATURE']).toContain(code)
        codes.add(code)
      }
    }
    // Some counts share the path's shape, so the proof folds to the root: the signature refuses them.
    expect([...codes].sort()).toEqual(['SHOAL_ERR_INVALID_PROOF', 'SHOAL_ERR_INVALID_SIGNATURE'])
  })

  it('cannot be re-rooted over other entries under the same signature', async () => {
    const extra = {
      path: '/zz-added.js',
      cid: manifest.entries[0]!.cid,
      size: 1,
      contentType: 'text/javascript',
      cacheControl: '',
    }
    const entries = [...manifest.entries, extra].sort((x, y) => comparePaths(x.path, y.path))
    const forged = createManifestEntryProof(
      { message: { ...manifest, entries }, signature: signed.signature },
      extra.path,
    )
    expect(forged.header.entryCount).toBe(6)
    expect(await codeOf(() => verifyManifestEntryProof(forged, at))).toBe('SHOAL_ERR_INVALID_SIGNATURE')
  })

  it('refuses a header signed by another key, or whose fields changed after signing', async () => {
    const proof = proofs[1]!
    const other = await signHeader(proof.header, stranger)
    expect(await codeOf(() => verifyManifestEntryProof({ ...proof, signature: other }, at))).toBe(
      'SHOAL_ERR_INVALID_SIGNATURE',
    )
    for (const change of [
      { site: 'blag' },
      { sequence: 8 },
      { origin: '' },
      { timestamp: SAMPLE_TIME - 1 },
      { publisher: stranger.address },
    ]) {
      const bad = { ...proof, header: { ...proof.header, ...change } }
      expect(await codeOf(() => verifyManifestEntryProof(bad, at))).toBe('SHOAL_ERR_INVALID_SIGNATURE')
    }
    // Another record kind's signature from the same key does not pass for a header.
    const purge = await signPurgeRequest(publisher, SAMPLE_MESSAGES.PurgeRequest)
    expect(await codeOf(() => verifyManifestEntryProof({ ...proof, signature: purge.signature }, at))).toBe(
      'SHOAL_ERR_INVALID_SIGNATURE',
    )
  })

  it('refuses a proof from a sequence below knownSequence and accepts the same sequence', async () => {
    const proof = proofs[0]!
    expect(await codeOf(() => verifyManifestEntryProof(proof, { ...at, knownSequence: 8 }))).toBe(
      'SHOAL_ERR_STALE',
    )
    expect(await codeOf(() => verifyManifestEntryProof(proof, { ...at, knownSequence: 1_000 }))).toBe(
      'SHOAL_ERR_STALE',
    )
    for (const knownSequence of [0, 6, 7]) {
      expect(await codeOf(() => verifyManifestEntryProof(proof, { ...at, knownSequence }))).toBe('accepted')
    }
    const newer = await signSiteManifest(publisher, { ...manifest, sequence: 8 })
    const fresh = createManifestEntryProof(newer, '/index.html')
    expect((await verifyManifestEntryProof(fresh, { ...at, knownSequence: 8 })).header.sequence).toBe(8)
  })

  it('applies the manifest clock: no age limit by default, none from the future, maxAgeSeconds when given', async () => {
    const proof = proofs[2]!
    expect(await codeOf(() => verifyManifestEntryProof(proof, { now: SAMPLE_TIME + 10 * 365 * 86400 }))).toBe(
      'accepted',
    )
    expect(await codeOf(() => verifyManifestEntryProof(proof, { now: SAMPLE_TIME - 301 }))).toBe(
      'SHOAL_ERR_EXPIRED',
    )
    expect(await codeOf(() => verifyManifestEntryProof(proof, { now: SAMPLE_TIME - 300 }))).toBe('accepted')
    expect(
      await codeOf(() =>
        verifyManifestEntryProof(proof, { now: SAMPLE_TIME + 1000, maxAgeSeconds: 600, maxSkewSeconds: 0 }),
      ),
    ).toBe('SHOAL_ERR_EXPIRED')
  })

  it('checks the site, path and publisher the caller asked for', async () => {
    const proof = proofs[1]!
    expect(await codeOf(() => verifyManifestEntryProof(proof, { ...at, site: 'shop' }))).toBe(
      'SHOAL_ERR_INVALID_PROOF',
    )
    expect(await codeOf(() => verifyManifestEntryProof(proof, { ...at, path: '/robots.txt' }))).toBe(
      'SHOAL_ERR_INVALID_PROOF',
    )
    await expect(verifyManifestEntryProof(proof, { ...at, path: '/about.html' })).rejects.toThrow(
      /the proof is for "\/index.html", not "\/about.html"/,
    )
    expect(await codeOf(() => verifyManifestEntryProof(proof, { ...at, publisher: stranger.address }))).toBe(
      'SHOAL_ERR_INVALID_SIGNATURE',
    )
    const lower = publisher.address.toLowerCase() as Hex
    expect(await codeOf(() => verifyManifestEntryProof(proof, { ...at, publisher: lower }))).toBe('accepted')
  })

  it('refuses bad options with InvalidArgumentError before anything else', async () => {
    for (const options of [
      null,
      'now',
      { now: -1 },
      { knownSequence: -1 },
      { knownSequence: Number.NaN },
      { site: 7 },
      { path: ['/a'] },
      { publisher: 'nobody' },
    ]) {
      expect(await codeOf(() => verifyManifestEntryProof({} as never, options as never))).toBe(
        'SHOAL_ERR_INVALID_ARGUMENT',
      )
    }
  })

  it('proves membership only: a header signed over unsorted, duplicate entries gives proofs that verify', async () => {
    // Only an implementation other than signSiteManifest can sign such a header; the proof
    // cannot show it, so an entry proof never says that a path is unique, or absent.
    const [a, b] = [manifest.entries[0]!, manifest.entries[1]!]
    const entries = [b, a, { ...b, size: 1 }]
    const leaves = entryLeaves(entries)
    const header = { ...siteManifestHeader(manifest), entryCount: 3, entriesRoot: toHex(merkleRoot(leaves)) }
    const signature = await signHeader(header)
    for (const index of [0, 2]) {
      const proof: ManifestEntryProof = {
        header,
        signature,
        index,
        entry: entries[index]!,
        proof: createProof(leaves, index).map((h) => toHex(h)),
      }
      expect((await verifyManifestEntryProof(proof, { ...at, path: b.path })).entry).toEqual(entries[index])
    }
    // The whole manifest is checked for order and uniqueness, and refused.
    expect(await codeOf(() => verifySiteManifest({ message: { ...manifest, entries }, signature }, at))).toBe(
      'SHOAL_ERR_INVALID_FORMAT',
    )
  })
})

describe('entry proof format', () => {
  const proof = proofs[1]!
  const text = encodeManifestEntryProof(proof)

  it('is canonical JSON: header, signature, index, entry, proof, keys in fixed order, no whitespace', () => {
    const h = proof.header
    expect(text).toBe(
      `{"header":{"publisher":"${h.publisher}","site":"blog","sequence":7,"origin":"https://origin.example/assets/",` +
        `"timestamp":${SAMPLE_TIME},"entryCount":5,"entriesRoot":"${h.entriesRoot}"},"signature":"${proof.signature}",` +
        `"index":1,"entry":{"path":"/index.html","cid":"${proof.entry.cid}","size":4196,` +
        `"contentType":"text/html; charset=utf-8","cacheControl":""},"proof":${JSON.stringify(proof.proof)}}`,
    )
  })

  it('decodes any whitespace and key order to the same proof', () => {
    const parsed = JSON.parse(text) as Record<string, unknown>
    const reordered = Object.fromEntries(Object.entries(parsed).reverse())
    expect(decodeManifestEntryProof(JSON.stringify(reordered, null, 2))).toEqual(proof)
    expect(encodeManifestEntryProof(decodeManifestEntryProof(parsed))).toBe(text)
  })

  it('refuses anything not canonical, naming the field', () => {
    const cases: [unknown, string][] = [
      ['{', 'not JSON'],
      [null, 'ManifestEntryProof'],
      [[], 'ManifestEntryProof'],
      [{ ...proof, extra: 1 }, '"extra"'],
      [{ ...proof, header: { ...proof.header, extra: 1 } }, 'header has unknown field'],
      [{ ...proof, entry: { ...proof.entry, extra: 1 } }, 'entry has unknown field'],
      [{ ...proof, header: { ...proof.header, entryCount: undefined } }, 'header.entryCount is missing'],
      [{ ...proof, proof: undefined }, 'proof is missing'],
      [{ ...proof, proof: [proof.proof[0]!.toUpperCase().replace('0X', '0x')] }, 'proof[0]'],
      [{ ...proof, proof: Array(18).fill(proof.proof[0]) }, 'proof must have at most 17 items'],
      [{ ...proof, index: 5 }, 'index must be below header.entryCount (5)'],
      [{ ...proof, index: '1' }, 'index'],
      [
        { ...proof, header: { ...proof.header, entryCount: 100_001, entriesRoot: proof.header.entriesRoot } },
        'header.entryCount must be at most 100000',
      ],
      [
        { ...proof, header: { ...proof.header, publisher: proof.header.publisher.toLowerCase() } },
        'header.publisher',
      ],
      [{ ...proof, entry: { ...proof.entry, path: '/a/../index.html' } }, 'entry.path'],
      [{ ...proof, signature: proof.signature.slice(0, 20) }, 'signature'],
    ]
    for (const [input, part] of cases) {
      expect(() =>
        decodeManifestEntryProof(typeof input === 'string' ? input : JSON.stringify(input)),
      ).toThrow(
        expect.objectContaining({ code: 'SHOAL_ERR_INVALID_FORMAT', message: expect.stringContaining(part) }),
      )
    }
    expect(() => encodeManifestEntryProof({ ...proof, index: 1.5 })).toThrow(
      expect.objectContaining({ code: 'SHOAL_ERR_INVALID_FORMAT' }),
    )
  })

  it('refuses a proof of the wrong length at verification, as a proof error', async () => {
    const short = { ...proof, proof: proof.proof.slice(1) }
    await expect(verifyManifestEntryProof(short, at)).rejects.toMatchObject({
      code: 'SHOAL_ERR_INVALID_PROOF',
      message: expect.stringContaining('must have 3 hashes, got 2'),
    })
    const long = { ...proof, proof: [...proof.proof, proof.proof[0]!] }
    expect(await codeOf(() => verifyManifestEntryProof(long, at))).toBe('SHOAL_ERR_INVALID_PROOF')
  })
})

describe('entry proof properties', () => {
  const entry: fc.Arbitrary<ManifestEntry> = fc.record({
    path: fc
      .array(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 3 })
      .map((segments) => `/${segments.join('/')}`.normalize('NFC'))
      .filter((p) => pathProblem(p) === undefined),
    cid: fc.stringMatching(/^s[a-z2-7]{1,60}$/),
    size: fc.maxSafeNat(),
    contentType: fc.constantFrom('text/html', 'image/png', 'application/octet-stream'),
    cacheControl: fc.constantFrom('', 'no-cache', 'public, max-age=60'),
  })
  const entries = fc
    .uniqueArray(entry, { selector: (e) => e.path, minLength: 1, maxLength: 40 })
    .map((list) => [...list].sort((a, b) => comparePaths(a.path, b.path)))

  it('for any manifest, every path proves, to its own index only, and agrees with the whole manifest', async () => {
    await fc.assert(
      fc.asyncProperty(entries, fc.nat(), async (list, pick) => {
        const message = { ...manifest, entries: list }
        const signedMessage = await signSiteManifest(publisher, message)
        const own = createManifestEntryProver(signedMessage)
        expect(own.header).toEqual(siteManifestHeader(message))
        const i = pick % list.length
        const proof = own.prove(list[i]!.path)
        const verified = await verifyManifestEntryProof(
          decodeManifestEntryProof(encodeManifestEntryProof(proof)),
          at,
        )
        expect(verified.entry).toEqual(list[i])
        if (list.length > 1) {
          const other = (i + 1 + (pick % (list.length - 1))) % list.length
          expect(await codeOf(() => verifyManifestEntryProof({ ...proof, index: other }, at))).toBe(
            'SHOAL_ERR_INVALID_PROOF',
          )
        }
      }),
      { numRuns: 40 },
    )
  })
})

describe('large manifests', () => {
  it('signs, verifies and proves a 10 000-entry manifest with proofs of at most 14 hashes', async () => {
    const large = syntheticManifest(10_000)
    const signedLarge = await signSiteManifest(publisher, large)
    expect(await verifySiteManifest(decodeSiteManifest(encodeSiteManifest(signedLarge)), at)).toEqual(large)
    const own = createManifestEntryProver(signedLarge)
    expect(own.header.entryCount).toBe(10_000)
    for (const i of [0, 1, 4_999, 9_998, 9_999]) {
      const proof = own.prove(large.entries[i]!.path)
      expect(proof.proof.length).toBeLessThanOrEqual(14)
      const text = encodeManifestEntryProof(proof)
      expect(text.length).toBeLessThan(2_000)
      expect((await verifyManifestEntryProof(decodeManifestEntryProof(text), at)).entry).toEqual(
        large.entries[i],
      )
    }
  })
})
