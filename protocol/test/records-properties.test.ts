import fc from 'fast-check'
import { getAddress, type Hex, toHex } from 'viem'
import { describe, expect, it } from 'vitest'
import { SAMPLE_MESSAGES, TEST_ACCOUNTS } from '../scripts/records-vectors.ts'
import {
  type BandwidthReceipt,
  comparePaths,
  decodeRecord,
  encodeRecord,
  type HealthProof,
  isShoalError,
  type ManifestEntry,
  type NodeRecord,
  type PurgeRequest,
  pathProblem,
  RECORD_KIND_NAMES,
  type ReceiptBatch,
  type RecordKind,
  type RecordMessages,
  type SiteManifest,
  signBandwidthReceipt,
  signRecord,
  type Ticket,
  validateRecord,
  verifyBandwidthReceipt,
  verifyRecord,
} from '../src/index.ts'

const { publisher, node, issuer, client } = TEST_ACCOUNTS

const address = fc
  .uint8Array({ minLength: 20, maxLength: 20 })
  .filter((bytes) => bytes.some((byte) => byte !== 0))
  .map((bytes) => getAddress(toHex(bytes)))
const bytes32 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((bytes) => toHex(bytes) as Hex)
const uint = fc.maxSafeNat()
const site = fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,62}$/)
const headerValue = fc.stringMatching(/^[\x21-\x7e](?:[\x20-\x7e]{0,40}[\x21-\x7e])?$/)
const segment = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 8 })
const path = fc
  .array(segment, { minLength: 1, maxLength: 4 })
  .map((segments) => `/${segments.join('/')}`.normalize('NFC'))
  .filter((p) => pathProblem(p) === undefined)
const prefix = fc
  .tuple(path, fc.boolean())
  .map(([p, folder]) => (folder ? `${p}/` : p))
  .filter((p) => pathProblem(p, true) === undefined)
const sortedUnique = (items: fc.Arbitrary<string>, minLength = 0) =>
  fc.uniqueArray(items, { minLength, maxLength: 5 }).map((list) => [...list].sort(comparePaths))
const url = fc
  .webUrl({ validSchemes: ['http', 'https'], withQueryParameters: false, withFragments: false })
  .map((u) => new URL(u).href)
  .filter((u) => !u.includes('?') && !u.includes('#') && !u.includes('@') && u.length <= 2048)

const entry: fc.Arbitrary<ManifestEntry> = fc.record({
  path,
  cid: fc.stringMatching(/^s[a-z2-7]{1,100}$/),
  size: uint,
  contentType: headerValue,
  cacheControl: fc.oneof(fc.constant(''), headerValue),
})

const ARBITRARIES: { [K in RecordKind]: fc.Arbitrary<RecordMessages[K]> } = {
  SiteManifest: fc.record({
    publisher: fc.constant(publisher.address),
    site,
    sequence: uint,
    origin: fc.oneof(fc.constant(''), url),
    timestamp: uint,
    entries: fc
      .uniqueArray(entry, { selector: (e) => e.path, maxLength: 5 })
      .map((list) => [...list].sort((a, b) => comparePaths(a.path, b.path))),
  }) satisfies fc.Arbitrary<SiteManifest>,
  NodeRecord: fc.record({
    node: fc.constant(node.address),
    peerId: fc.oneof(
      fc.stringMatching(/^[1-9A-HJ-NP-Za-km-z]{1,60}$/),
      fc.stringMatching(/^b[a-z2-7]{1,60}$/),
    ),
    multiaddrs: fc.uniqueArray(fc.stringMatching(/^\/[\x21-\x7e]{0,40}$/), { maxLength: 16 }),
    httpUrl: url,
    region: fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,31}$/),
    capacity: uint,
    payout: address,
    timestamp: uint,
  }) satisfies fc.Arbitrary<NodeRecord>,
  Ticket: fc.record({
    issuer: fc.constant(issuer.address),
    client: address,
    budget: uint,
    expiry: uint,
    nonce: bytes32,
  }) satisfies fc.Arbitrary<Ticket>,
  BandwidthReceipt: fc.record({
    node: address,
    client: fc.constant(client.address),
    session: bytes32,
    bytes: uint,
    epoch: uint,
    ticket: bytes32,
    kind: fc.constantFrom(0 as const, 1 as const),
  }) satisfies fc.Arbitrary<BandwidthReceipt>,
  PurgeRequest: fc
    .record({
      publisher: fc.constant(publisher.address),
      site,
      paths: sortedUnique(path),
      prefixes: sortedUnique(prefix),
      timestamp: uint,
      nonce: bytes32,
    })
    .filter(
      (request) => request.paths.length + request.prefixes.length > 0,
    ) satisfies fc.Arbitrary<PurgeRequest>,
  HealthProof: fc.record({
    node: fc.constant(node.address),
    challenge: bytes32,
    timestamp: uint,
  }) satisfies fc.Arbitrary<HealthProof>,
  ReceiptBatch: fc.record({
    node: fc.constant(node.address),
    epoch: uint,
    count: fc.nat({ max: 1_000_000 }),
    receiptsHash: bytes32,
    timestamp: uint,
  }) satisfies fc.Arbitrary<ReceiptBatch>,
}

const ACCOUNTS = {
  SiteManifest: publisher,
  NodeRecord: node,
  Ticket: issuer,
  BandwidthReceipt: client,
  PurgeRequest: publisher,
  HealthProof: node,
  ReceiptBatch: node,
}

/** A clock at which the message is fresh: its own timestamp, or 0 (before any ticket expiry). */
const freshAt = (message: object) => ({ now: (message as { timestamp?: number }).timestamp ?? 0 })

describe.each(RECORD_KIND_NAMES)('%s properties', (kind) => {
  it('any valid message validates to itself and round-trips sign → encode → decode → verify', async () => {
    await fc.assert(
      fc.asyncProperty(ARBITRARIES[kind] as fc.Arbitrary<RecordMessages[RecordKind]>, async (message) => {
        expect(validateRecord(kind, message)).toEqual(message)
        const signed = await signRecord(kind, ACCOUNTS[kind], message as never)
        const text = encodeRecord(kind, signed as never)
        const decoded = decodeRecord(kind, text)
        expect(decoded).toEqual(signed)
        expect(encodeRecord(kind, decoded)).toBe(text)
        expect(await verifyRecord(kind, decoded, freshAt(message))).toEqual(message)
      }),
      { numRuns: 40 },
    )
  })

  it('any JSON value in any field is either valid or refused with InvalidFormatError', async () => {
    const signed = await signRecord(kind, ACCOUNTS[kind], SAMPLE_MESSAGES[kind] as never)
    const fields = Object.keys(signed.message)
    await fc.assert(
      fc.property(fc.constantFrom(...fields), fc.jsonValue(), (field, value) => {
        const input = { ...signed, message: { ...signed.message, [field]: value } }
        try {
          decodeRecord(kind, JSON.stringify(input))
        } catch (err) {
          expect(isShoalError(err) && err.code).toBe('SHOAL_ERR_INVALID_FORMAT')
        }
      }),
      { numRuns: 200 },
    )
  })
})

describe('signature bit flips', () => {
  it('any single flipped bit in a receipt signature fails verification', async () => {
    await fc.assert(
      fc.asyncProperty(
        ARBITRARIES.BandwidthReceipt,
        fc.integer({ min: 0, max: 519 }),
        async (receipt, bit) => {
          const signed = await signBandwidthReceipt(client, receipt)
          const bytes = Uint8Array.from(Buffer.from(signed.signature.slice(2), 'hex'))
          bytes[bit >> 3] = (bytes[bit >> 3] ?? 0) ^ (1 << (bit & 7))
          const flipped = { ...signed, signature: toHex(bytes) }
          await expect(verifyBandwidthReceipt(flipped)).rejects.toMatchObject({
            code: 'SHOAL_ERR_INVALID_SIGNATURE',
          })
        },
      ),
      { numRuns: 150 },
    )
  })

  it('any single flipped bit fails verification for every kind', async () => {
    const signedByKind = new Map<RecordKind, { message: unknown; signature: Hex }>()
    for (const kind of RECORD_KIND_NAMES) {
      signedByKind.set(kind, await signRecord(kind, ACCOUNTS[kind], SAMPLE_MESSAGES[kind] as never))
    }
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...RECORD_KIND_NAMES),
        fc.integer({ min: 0, max: 519 }),
        async (kind, bit) => {
          const signed = signedByKind.get(kind)!
          const bytes = Uint8Array.from(Buffer.from(signed.signature.slice(2), 'hex'))
          bytes[bit >> 3] = (bytes[bit >> 3] ?? 0) ^ (1 << (bit & 7))
          const flipped = { ...signed, signature: toHex(bytes) }
          await expect(
            verifyRecord(kind, flipped as never, freshAt(SAMPLE_MESSAGES[kind])),
          ).rejects.toMatchObject({
            code: 'SHOAL_ERR_INVALID_SIGNATURE',
          })
        },
      ),
      { numRuns: 150 },
    )
  })
})

describe('path order', () => {
  it('comparePaths orders well-formed strings as their UTF-8 bytes do', () => {
    const text = fc.string({ unit: 'grapheme', maxLength: 6 })
    fc.assert(
      fc.property(text, text, (a, b) => {
        expect(Math.sign(comparePaths(a, b))).toBe(Math.sign(Buffer.compare(Buffer.from(a), Buffer.from(b))))
      }),
      { numRuns: 1000 },
    )
  })
})
