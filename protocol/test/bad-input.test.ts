/**
 * Every kind of bad input issue #2 names — malformed CIDs (and non-CIDs where one belongs), truncated or oversized leaves,
 * wrong-length proofs, manifests with unknown fields, non-canonical encodings, bad
 * signatures, expired tickets — fed as arbitrary values: each is refused with its typed
 * error and stable code, never a bare TypeError or any other error.
 */
import fc from 'fast-check'
import { type Hex, toHex } from 'viem'
import { describe, expect, it } from 'vitest'
import { SAMPLE_MESSAGES, TEST_ACCOUNTS } from '../scripts/records-vectors.ts'
import {
  alignRange,
  chunkCount,
  chunkSpan,
  computeCid,
  createChunkVerifier,
  createProof,
  decodeProof,
  decodeRecord,
  decodeSiteManifest,
  encodeProof,
  encodeRecord,
  encodeSiteManifest,
  HASH_SIZE,
  isShoalError,
  parseCid,
  RECORD_KIND_NAMES,
  type RecordKind,
  signerOf,
  signRecord,
  signSiteManifest,
  signTicket,
  verifyChunk,
  verifyLeaves,
  verifyProof,
  verifyRecord,
  verifySiteManifest,
  verifyStream,
  verifyTicket,
} from '../src/index.ts'

/** Runs `fn`; if it throws, the error must be a Shoal error with one of `codes`. */
async function refusedWith(codes: string[], fn: () => unknown): Promise<boolean> {
  try {
    await fn()
    return false
  } catch (err) {
    expect(isShoalError(err), String(err)).toBe(true)
    expect(codes).toContain((err as { code: string }).code)
    return true
  }
}

/** Any value at all, JSON or not, including the strings and bytes parsers see most. */
const anyValue = fc.oneof(
  fc.anything({ withBigInt: true, withTypedArray: true, withNullPrototype: true, withBoxedValues: true }),
  fc.string(),
  fc.uint8Array(),
  fc.jsonValue(),
)

const CHUNK = 1024
const content = await computeCid(
  Uint8Array.from({ length: 7 * CHUNK + 5 }, (_, i) => (i * 7) & 0xff),
  { chunkSize: CHUNK },
)
const { cid, leaves } = content
const COUNT = leaves.length / HASH_SIZE

describe('malformed CIDs', () => {
  it('parseCid refuses any value that is not a canonical CID with SHOAL_ERR_INVALID_CID', async () => {
    await fc.assert(
      fc.asyncProperty(anyValue, async (value) => {
        if (!(await refusedWith(['SHOAL_ERR_INVALID_CID'], () => parseCid(value as string)))) {
          expect(parseCid(value as string).text).toBe(value)
        }
      }),
      { numRuns: 500 },
    )
  })
})

describe('a value that is not a parsed CID where one belongs', () => {
  it('is SHOAL_ERR_INVALID_CID in every function that takes a CID', async () => {
    const proof = createProof(leaves, 1)
    const leaf = leaves.subarray(HASH_SIZE, 2 * HASH_SIZE)
    const takers: Record<string, (cid: never) => unknown> = {
      chunkCount: (c) => chunkCount(c),
      chunkSpan: (c) => chunkSpan(c, 0),
      alignRange: (c) => alignRange(c, 0, 10),
      verifyLeaves: (c) => verifyLeaves(c, leaves),
      verifyProof: (c) => verifyProof(c, 1, leaf, proof),
      verifyChunk: (c) => verifyChunk(c, 0, new Uint8Array(CHUNK), createProof(leaves, 0)),
      createChunkVerifier: (c) => createChunkVerifier(c, leaves),
      verifyStream: async (c) => {
        for await (const _ of verifyStream(c, [new Uint8Array(8 * CHUNK)], { leaves })) {
          // nothing is released for a bad CID
        }
      },
    }
    const notObject = fc.oneof(
      fc.constantFrom(null, undefined),
      fc.string(),
      fc.double(),
      fc.boolean(),
      fc.bigInt(),
    )
    for (const [name, take] of Object.entries(takers)) {
      await fc.assert(
        fc.asyncProperty(notObject, async (value) => {
          expect(await refusedWith(['SHOAL_ERR_INVALID_CID'], () => take(value as never)), name).toBe(true)
        }),
        { numRuns: 30 },
      )
    }
    // and computeCid's options must be an object
    expect(
      await refusedWith(['SHOAL_ERR_INVALID_ARGUMENT'], () => computeCid(new Uint8Array(3), null as never)),
    ).toBe(true)
  })
})

describe('truncated or oversized leaves', () => {
  it('verifyLeaves refuses any other bytes or value with SHOAL_ERR_INVALID_LEAVES', async () => {
    const cut = fc.integer({ min: 0, max: leaves.length - 1 }).map((n) => leaves.slice(0, n))
    const grown = fc.uint8Array({ minLength: 1, maxLength: 64 }).map((extra) => {
      const out = new Uint8Array(leaves.length + extra.length)
      out.set(leaves)
      out.set(extra, leaves.length)
      return out
    })
    const flipped = fc.nat(leaves.length * 8 - 1).map((bit) => {
      const out = leaves.slice()
      out[bit >> 3]! ^= 1 << (bit & 7)
      return out
    })
    await fc.assert(
      fc.asyncProperty(fc.oneof(cut, grown, flipped, anyValue), async (value) => {
        expect(
          await refusedWith(['SHOAL_ERR_INVALID_LEAVES'], () => verifyLeaves(cid, value as Uint8Array)),
        ).toBe(true)
      }),
      { numRuns: 300 },
    )
  })
})

describe('wrong-length proofs', () => {
  it('decodeProof refuses any value but whole hashes, and verifyProof any proof of another length', async () => {
    await fc.assert(
      fc.asyncProperty(anyValue, async (value) => {
        if (!(await refusedWith(['SHOAL_ERR_INVALID_PROOF'], () => decodeProof(value as Uint8Array)))) {
          expect((value as Uint8Array).length % HASH_SIZE).toBe(0)
        }
      }),
      { numRuns: 300 },
    )
    await fc.assert(
      fc.asyncProperty(
        fc.nat(COUNT - 1),
        fc.integer({ min: -3, max: 3 }).filter((d) => d !== 0),
        async (index, delta) => {
          const right = createProof(leaves, index)
          const proof =
            delta < 0
              ? right.slice(0, Math.max(0, right.length + delta))
              : [...right, ...Array.from({ length: delta }, () => new Uint8Array(HASH_SIZE))]
          fc.pre(proof.length !== right.length)
          const leaf = leaves.subarray(index * HASH_SIZE, (index + 1) * HASH_SIZE)
          expect(
            await refusedWith(['SHOAL_ERR_INVALID_PROOF'], () =>
              verifyProof(cid, index, leaf, decodeProof(encodeProof(proof))),
            ),
          ).toBe(true)
        },
      ),
      { numRuns: 200 },
    )
  })
})

const { publisher, issuer } = TEST_ACCOUNTS

/** The fixed test account that signs the sample message of `kind`. */
function signerAccount(kind: RecordKind) {
  const address = signerOf(kind, SAMPLE_MESSAGES[kind] as never)
  return Object.values(TEST_ACCOUNTS).find((a) => a.address === address)!
}

describe('signed records', () => {
  const identifier = fc.string({ minLength: 1, maxLength: 12 })

  it('a manifest with an unknown field, in the message or beside it, is SHOAL_ERR_INVALID_FORMAT', async () => {
    const signed = await signSiteManifest(publisher, SAMPLE_MESSAGES.SiteManifest)
    const known = new Set([...Object.keys(signed.message), 'message', 'signature'])
    await fc.assert(
      fc.asyncProperty(
        identifier.filter((k) => !known.has(k)),
        fc.jsonValue(),
        fc.boolean(),
        async (key, value, inMessage) => {
          const bad = inMessage
            ? { ...signed, message: { ...signed.message, [key]: value } }
            : { ...signed, [key]: value }
          expect(
            await refusedWith(['SHOAL_ERR_INVALID_FORMAT'], () => decodeSiteManifest(JSON.stringify(bad))),
          ).toBe(true)
        },
      ),
      { numRuns: 200 },
    )
  })

  it('non-canonical values (case, padding, number forms) are SHOAL_ERR_INVALID_FORMAT, never accepted as another record', async () => {
    const signed = await signSiteManifest(publisher, SAMPLE_MESSAGES.SiteManifest)
    const text = encodeSiteManifest(signed)
    const edits = [
      (t: string) => t.replace(signed.message.publisher, signed.message.publisher.toLowerCase()),
      (t: string) => t.replace(signed.signature, signed.signature.toUpperCase().replace('0X', '0x')),
      (t: string) => t.replace(signed.signature, `${signed.signature}00`),
      (t: string) =>
        t.replace(`"sequence":${signed.message.sequence}`, `"sequence":"${signed.message.sequence}"`),
      (t: string) =>
        t.replace(`"sequence":${signed.message.sequence}`, `"sequence":${signed.message.sequence}.5`),
      (t: string) => t.replace(`"sequence":${signed.message.sequence}`, '"sequence":-1'),
    ]
    for (const edit of edits) {
      const edited = edit(text)
      expect(edited).not.toBe(text)
      expect(await refusedWith(['SHOAL_ERR_INVALID_FORMAT'], () => decodeSiteManifest(edited))).toBe(true)
    }
  })

  it('any value as a signature is refused as a format or signature error', async () => {
    const signed = await signSiteManifest(publisher, SAMPLE_MESSAGES.SiteManifest)
    const hexSignature = fc.uint8Array({ minLength: 65, maxLength: 65 }).map((b) => toHex(b) as Hex)
    await fc.assert(
      fc.asyncProperty(fc.oneof(hexSignature, anyValue), async (signature) => {
        fc.pre(signature !== signed.signature)
        expect(
          await refusedWith(['SHOAL_ERR_INVALID_FORMAT', 'SHOAL_ERR_INVALID_SIGNATURE'], () =>
            verifySiteManifest({ ...signed, signature: signature as Hex }),
          ),
        ).toBe(true)
      }),
      { numRuns: 200 },
    )
  })

  it('a ticket past its expiry plus the skew is SHOAL_ERR_EXPIRED, whatever the clock', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 2 ** 40 }),
        fc.integer({ min: 1, max: 2 ** 30 }),
        fc.integer({ min: 0, max: 3600 }),
        async (expiry, late, skew) => {
          const signed = await signTicket(issuer, { ...SAMPLE_MESSAGES.Ticket, expiry })
          expect(
            await refusedWith(['SHOAL_ERR_EXPIRED'], () =>
              verifyTicket(signed, { now: expiry + skew + late, maxSkewSeconds: skew }),
            ),
          ).toBe(true)
        },
      ),
      { numRuns: 30 },
    )
  })

  it.each(RECORD_KIND_NAMES)(
    'decode and verify of any value as a %s never throw anything but a Shoal error',
    async (kind) => {
      const signed = await signRecord(kind, signerAccount(kind), SAMPLE_MESSAGES[kind] as never)
      const text = encodeRecord(kind, signed as never)
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(
            anyValue,
            fc.nat(text.length).chain((at) => fc.string().map((s) => text.slice(0, at) + s)),
          ),
          async (value) => {
            await refusedWith(['SHOAL_ERR_INVALID_FORMAT'], () => decodeRecord(kind, value))
            await refusedWith(
              [
                'SHOAL_ERR_INVALID_FORMAT',
                'SHOAL_ERR_INVALID_SIGNATURE',
                'SHOAL_ERR_EXPIRED',
                'SHOAL_ERR_STALE',
              ],
              () => verifyRecord(kind, value as never),
            )
          },
        ),
        { numRuns: 150 },
      )
    },
  )
})
