import { readFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { encodeAbiParameters, type Hex, keccak256, recoverAddress, toHex } from 'viem'
import { describe, expect, it } from 'vitest'
import { recordVectorsText, SAMPLE_MESSAGES, TEST_ACCOUNTS } from '../scripts/records-vectors.ts'
import {
  decodeRecord,
  encodeRecord,
  hashRecord,
  RECORD_KIND_NAMES,
  type RecordKind,
  recordTypes,
  ticketId,
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
}

interface InvalidVector {
  name: string
  kind: RecordKind
  stage: 'decode' | 'verify'
  code: string
  encoded: string
}

const file = JSON.parse(await readFile(FILE, 'utf8')) as {
  domainSeparator: Hex
  keys: { role: string; privateKey: Hex; address: string }[]
  vectors: Vector[]
  invalid: InvalidVector[]
}

// The type strings as the docs state them, written out by hand rather than derived.
const TYPE_STRINGS: Record<RecordKind, string> = {
  SiteManifest:
    'SiteManifest(address publisher,string site,uint64 sequence,string origin,uint64 timestamp,ManifestEntry[] entries)' +
    'ManifestEntry(string path,string cid,uint64 size,string contentType,string cacheControl)',
  NodeRecord:
    'NodeRecord(address node,string peerId,string[] multiaddrs,string httpUrl,string region,uint64 capacity,address payout,uint64 timestamp)',
  Ticket: 'Ticket(address issuer,address client,uint64 budget,uint64 expiry,bytes32 nonce)',
  BandwidthReceipt:
    'BandwidthReceipt(address node,address client,bytes32 session,uint64 bytes,uint64 epoch,bytes32 ticket,uint8 kind)',
  PurgeRequest:
    'PurgeRequest(address publisher,string site,string[] paths,string[] prefixes,uint64 timestamp,bytes32 nonce)',
}

const types = recordTypes as unknown as Record<string, readonly { name: string; type: string }[]>

function typeHashOf(type: string): Hex {
  const own = TYPE_STRINGS[type as RecordKind]
  if (own !== undefined) return keccak256(toHex(own))
  // ManifestEntry is only ever hashed as a dependency; its string is the tail of SiteManifest's.
  return keccak256(
    toHex(TYPE_STRINGS.SiteManifest.slice(TYPE_STRINGS.SiteManifest.indexOf('ManifestEntry('))),
  )
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
      const structHash = independentStructHash(vector.kind, message)
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

  it('gives a ticket id equal to the ticket struct hash, which the receipt carries', () => {
    const ticket = file.vectors.find((v) => v.kind === 'Ticket')
    expect(ticket?.ticketId).toBe(ticket?.structHash)
    expect(ticketId(SAMPLE_MESSAGES.Ticket)).toBe(ticket?.ticketId)
    expect(SAMPLE_MESSAGES.BandwidthReceipt.ticket).toBe(ticket?.ticketId)
  })

  describe.each(file.invalid)('refuses: $name', (vector) => {
    it(`at ${vector.stage} with ${vector.code}`, async () => {
      const run = async () => {
        const signed = decodeRecord(vector.kind, vector.encoded)
        if (vector.stage === 'verify') await verifyRecord(vector.kind, signed, { now: 1_767_225_600 })
      }
      await expect(run()).rejects.toMatchObject({ code: vector.code })
      if (vector.stage === 'verify') expect(() => decodeRecord(vector.kind, vector.encoded)).not.toThrow()
    })
  })
})
