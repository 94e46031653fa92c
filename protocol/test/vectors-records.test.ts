import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { encodeAbiParameters, type Hex, keccak256, recoverAddress, toHex } from 'viem'
import { describe, expect, it } from 'vitest'
import { recordVectorsText, SAMPLE_MESSAGES, TEST_ACCOUNTS } from '../scripts/records-vectors.ts'
import {
  decodeManifestEntryProof,
  decodeRecord,
  encodeManifestEntryProof,
  encodeRecord,
  hashRecord,
  type ManifestEntry,
  RECORD_KIND_NAMES,
  type RecordKind,
  recordTypes,
  ticketId,
  verifyManifestEntryProof,
  verifyRecord,
} from '../src/index.ts'

const FILE = join(dirname(fileURLToPath(import.meta.url)), '..', 'test-vectors', 'records.json')

interface Vector {
  kind: RecordKind
  signer: keyof typeof TEST_ACCOUNTS
  signerAddress: string
  typeString: string
  typeHash: Hex
  structHash: Hex
  digest: Hex
  signature: Hex
  encoded: string
  ticketId?: Hex
  header?: Record<string, unknown>
  entryLeaves?: { path: string; leafInput: string; leaf: Hex }[]
  emptyEntriesRoot?: Hex
}

interface EntryProofVector {
  path: string
  index: number
  proof: Hex[]
  encoded: string
}

interface InvalidVector {
  name: string
  kind: RecordKind | 'ManifestEntryProof'
  stage: 'decode' | 'verify'
  code: string
  encoded: string
}

const file = JSON.parse(await readFile(FILE, 'utf8')) as {
  domainSeparator: Hex
  keys: { role: string; privateKey: Hex; address: string }[]
  vectors: Vector[]
  entryProofs: EntryProofVector[]
  invalid: InvalidVector[]
}

// The type strings as the docs state them, written out by hand rather than derived.
const TYPE_STRINGS: Record<RecordKind, string> = {
  SiteManifest:
    'SiteManifest(address publisher,string site,uint64 sequence,string origin,uint64 timestamp,uint64 entryCount,bytes32 entriesRoot)',
  NodeRecord:
    'NodeRecord(address node,string peerId,string[] multiaddrs,string httpUrl,string region,uint64 capacity,address payout,uint64 timestamp)',
  Ticket: 'Ticket(address issuer,address client,uint64 budget,uint64 expiry,bytes32 nonce)',
  BandwidthReceipt:
    'BandwidthReceipt(address node,address client,bytes32 session,uint64 bytes,uint64 epoch,bytes32 ticket,uint8 kind)',
  PurgeRequest:
    'PurgeRequest(address publisher,string site,string[] paths,string[] prefixes,uint64 timestamp,bytes32 nonce)',
  HealthProof: 'HealthProof(address node,bytes32 challenge,uint64 timestamp)',
  ReceiptBatch: 'ReceiptBatch(address node,uint64 epoch,uint64 count,bytes32 receiptsHash,uint64 timestamp)',
}

const types = recordTypes as unknown as Record<string, readonly { name: string; type: string }[]>

function typeHashOf(type: string): Hex {
  return keccak256(toHex(TYPE_STRINGS[type as RecordKind]))
}

// The entries tree as docs/protocol.md states it, written naively with node:crypto.
const sha256 = (...parts: (Uint8Array | string)[]) => {
  const h = createHash('sha256')
  for (const part of parts) h.update(part)
  return new Uint8Array(h.digest())
}
const hex = (bytes: Uint8Array) => `0x${Buffer.from(bytes).toString('hex')}` as Hex
const fromHex = (value: string) => new Uint8Array(Buffer.from(value.slice(2), 'hex'))

/** The leaf input: the entry's JSON with keys in manifest order, as JSON.stringify writes it. */
const leafInputOf = (e: ManifestEntry) =>
  `{"path":${JSON.stringify(e.path)},"cid":${JSON.stringify(e.cid)},"size":${e.size},` +
  `"contentType":${JSON.stringify(e.contentType)},"cacheControl":${JSON.stringify(e.cacheControl)}}`
const leafOf = (e: ManifestEntry) => sha256(Uint8Array.of(0), Buffer.from(leafInputOf(e), 'utf8'))

function independentEntriesRoot(entries: readonly ManifestEntry[]): Hex {
  if (entries.length === 0) return hex(sha256(Uint8Array.of(0)))
  let level: Uint8Array[] = entries.map(leafOf)
  while (level.length > 1) {
    const next: Uint8Array[] = []
    for (let i = 0; i < level.length; i += 2) {
      next.push(i + 1 < level.length ? sha256(Uint8Array.of(1), level[i]!, level[i + 1]!) : level[i]!)
    }
    level = next
  }
  return hex(level[0]!)
}

/** Folds a proof from the leaf up: the sibling is left at odd positions, none when promoted. */
function independentFold(leaf: Uint8Array, index: number, count: number, proof: readonly Hex[]): Hex {
  let node = leaf
  let k = 0
  for (let i = index, n = count; n > 1; i >>= 1, n = Math.ceil(n / 2)) {
    if ((i ^ 1) >= n) continue
    const sibling = fromHex(proof[k++]!)
    node = i % 2 === 0 ? sha256(Uint8Array.of(1), node, sibling) : sha256(Uint8Array.of(1), sibling, node)
  }
  expect(k).toBe(proof.length)
  return hex(node)
}

/** The EIP-712 struct of a message: a manifest's header is derived from its entries. */
function structOf(kind: RecordKind, message: Record<string, unknown>): Record<string, unknown> {
  if (kind !== 'SiteManifest') return message
  const { entries, ...rest } = message as { entries: ManifestEntry[] }
  return { ...rest, entryCount: entries.length, entriesRoot: independentEntriesRoot(entries) }
}

/** EIP-712 `hashStruct`, written from the spec with ABI primitives only (not viem's hashTypedData). */
function independentStructHash(type: string, data: Record<string, unknown>): Hex {
  const fields = types[type] ?? []
  const encoded = fields.map((field) => encodeValue(field.type, data[field.name]))
  return keccak256(
    encodeAbiParameters(
      [{ type: 'bytes32' }, ...encoded.map(([t]) => ({ type: t }))],
      [typeHashOf(type), ...encoded.map(([, v]) => v)],
    ),
  )
}

function encodeValue(type: string, value: unknown): [string, unknown] {
  if (type.endsWith('[]')) {
    const items = (value as unknown[]).map((item) => encodeValue(type.slice(0, -2), item))
    return [
      'bytes32',
      keccak256(
        encodeAbiParameters(
          items.map(([t]) => ({ type: t })),
          items.map(([, v]) => v),
        ),
      ),
    ]
  }
  if (types[type] !== undefined)
    return ['bytes32', independentStructHash(type, value as Record<string, unknown>)]
  if (type === 'string') return ['bytes32', keccak256(toHex(value as string))]
  if (type.startsWith('uint')) return [type, BigInt(value as number)]
  return [type, value]
}

const independentDomainSeparator = keccak256(
  encodeAbiParameters(
    [{ type: 'bytes32' }, { type: 'bytes32' }, { type: 'bytes32' }],
    [
      keccak256(toHex('EIP712Domain(string name,string version)')),
      keccak256(toHex('Shoal')),
      keccak256(toHex('1')),
    ],
  ),
)

describe('records test vectors', () => {
  it('the file is exactly what the generator derives (deterministic RFC 6979 signatures)', async () => {
    expect(await readFile(FILE, 'utf8')).toBe(await recordVectorsText())
  })

  it('covers every record kind and documents the well-known test keys', () => {
    expect(file.vectors.map((v) => v.kind)).toEqual([...RECORD_KIND_NAMES])
    for (const key of file.keys) {
      const account = TEST_ACCOUNTS[key.role as keyof typeof TEST_ACCOUNTS]
      expect(account.address).toBe(key.address)
      expect(key.privateKey).toMatch(/^0x(0[1-4])\1{31}$/)
    }
  })

  it('has the domain separator of { name: "Shoal", version: "1" }', () => {
    expect(file.domainSeparator).toBe(independentDomainSeparator)
  })

  describe.each(file.vectors)('$kind', (vector) => {
    const message = SAMPLE_MESSAGES[vector.kind] as unknown as Record<string, unknown>

    it('has the documented type string and its hash', () => {
      expect(vector.typeString).toBe(TYPE_STRINGS[vector.kind])
      expect(vector.typeHash).toBe(keccak256(toHex(TYPE_STRINGS[vector.kind])))
    })

    it('has the struct hash and digest an independent EIP-712 encoder computes', () => {
      const structHash = independentStructHash(vector.kind, structOf(vector.kind, message))
      expect(vector.structHash).toBe(structHash)
      expect(vector.digest).toBe(
        keccak256(`0x1901${independentDomainSeparator.slice(2)}${structHash.slice(2)}`),
      )
      expect(hashRecord(vector.kind, message as never)).toBe(vector.digest)
    })

    it('decodes, re-encodes byte for byte and verifies to its signer', async () => {
      const signed = decodeRecord(vector.kind, vector.encoded)
      expect(signed.message).toEqual(message)
      expect(signed.signature).toBe(vector.signature)
      expect(encodeRecord(vector.kind, signed)).toBe(vector.encoded)
      const verified = await verifyRecord(vector.kind, signed, { now: 1_767_225_600 })
      expect(verified).toEqual(message)
      expect(await recoverAddress({ hash: vector.digest, signature: vector.signature })).toBe(
        vector.signerAddress,
      )
      expect(TEST_ACCOUNTS[vector.signer].address).toBe(vector.signerAddress)
    })
  })

  describe('the site manifest entries tree', () => {
    const vector = file.vectors.find((v) => v.kind === 'SiteManifest')!
    const manifest = SAMPLE_MESSAGES.SiteManifest

    it('has the header (EIP-712 struct) with entryCount and the independently computed entriesRoot', () => {
      expect(vector.header).toEqual(structOf('SiteManifest', manifest as never))
      expect(vector.header?.entryCount).toBe(5)
    })

    it('has one leaf per entry: SHA-256(0x00 ‖ canonical entry JSON), the JSON as the manifest encodes it', () => {
      expect(vector.entryLeaves?.map((l) => l.path)).toEqual(manifest.entries.map((e) => e.path))
      manifest.entries.forEach((entry, i) => {
        const leaf = vector.entryLeaves?.[i]
        expect(leaf?.leafInput).toBe(leafInputOf(entry))
        expect(vector.encoded).toContain(leaf?.leafInput)
        expect(leaf?.leaf).toBe(hex(leafOf(entry)))
      })
    })

    it('gives the empty manifest the root SHA-256(0x00)', () => {
      expect(vector.emptyEntriesRoot).toBe(independentEntriesRoot([]))
      expect(vector.emptyEntriesRoot).toBe(
        '0x6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
      )
    })
  })

  describe.each(file.entryProofs)('entry proof of $path', (vector) => {
    const manifest = file.vectors.find((v) => v.kind === 'SiteManifest')!

    it('folds to entriesRoot with an independent verifier, and carries the manifest signature', () => {
      const entry = SAMPLE_MESSAGES.SiteManifest.entries[vector.index]!
      expect(entry.path).toBe(vector.path)
      expect(independentFold(leafOf(entry), vector.index, 5, vector.proof)).toBe(manifest.header?.entriesRoot)
      const decoded = decodeManifestEntryProof(vector.encoded)
      expect(decoded.header).toEqual(manifest.header)
      expect(decoded.signature).toBe(manifest.signature)
      expect(decoded.proof).toEqual(vector.proof)
    })

    it('decodes, re-encodes byte for byte and verifies', async () => {
      const decoded = decodeManifestEntryProof(vector.encoded)
      expect(encodeManifestEntryProof(decoded)).toBe(vector.encoded)
      const verified = await verifyManifestEntryProof(decoded, { now: 1_767_225_600, path: vector.path })
      expect(verified.entry).toEqual(SAMPLE_MESSAGES.SiteManifest.entries[vector.index])
    })
  })

  it('has the entry proof of every path; the promoted last leaf has a one-hash proof', () => {
    expect(file.entryProofs.map((p) => p.path)).toEqual(
      SAMPLE_MESSAGES.SiteManifest.entries.map((e) => e.path),
    )
    expect(file.entryProofs.map((p) => p.proof.length)).toEqual([3, 3, 3, 3, 1])
  })

  it('gives a ticket id equal to the ticket struct hash, which the receipt carries', () => {
    const ticket = file.vectors.find((v) => v.kind === 'Ticket')
    expect(ticket?.ticketId).toBe(ticket?.structHash)
    expect(ticketId(SAMPLE_MESSAGES.Ticket)).toBe(ticket?.ticketId)
    expect(SAMPLE_MESSAGES.BandwidthReceipt.ticket).toBe(ticket?.ticketId)
  })

  describe.each(file.invalid)('refuses: $name', (vector) => {
    it(`at ${vector.stage} with ${vector.code}`, async () => {
      const at = { now: 1_767_225_600 }
      const { kind } = vector
      const decode = () =>
        kind === 'ManifestEntryProof'
          ? decodeManifestEntryProof(vector.encoded)
          : decodeRecord(kind, vector.encoded)
      const run = async () => {
        const decoded = decode()
        if (vector.stage !== 'verify') return
        if (kind === 'ManifestEntryProof') await verifyManifestEntryProof(decoded as never, at)
        else await verifyRecord(kind, decoded as never, at)
      }
      await expect(run()).rejects.toMatchObject({ code: vector.code })
      if (vector.stage === 'verify') expect(decode).not.toThrow()
    })
  })
})
