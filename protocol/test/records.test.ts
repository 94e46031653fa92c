import { type Hex, hashTypedData, type LocalAccount, type TypedDataDefinition, verifyTypedData } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { describe, expect, it } from 'vitest'
import { SAMPLE_MESSAGES, SAMPLE_TIME, TEST_ACCOUNTS } from '../scripts/records-vectors.ts'
import {
  decodeBandwidthReceipt,
  decodeHealthProof,
  decodeNodeRecord,
  decodePurgeRequest,
  decodeReceiptBatch,
  decodeRecord,
  decodeSiteManifest,
  decodeTicket,
  encodeBandwidthReceipt,
  encodeHealthProof,
  encodeNodeRecord,
  encodePurgeRequest,
  encodeReceiptBatch,
  encodeRecord,
  encodeSiteManifest,
  encodeTicket,
  hashBandwidthReceipt,
  hashHealthProof,
  hashNodeRecord,
  hashPurgeRequest,
  hashReceiptBatch,
  hashRecord,
  hashSiteManifest,
  hashTicket,
  RECORD_KIND_NAMES,
  type RecordKind,
  recordTypedData,
  SHOAL_DOMAIN,
  type Signed,
  signBandwidthReceipt,
  signerOf,
  signHealthProof,
  signNodeRecord,
  signPurgeRequest,
  signReceiptBatch,
  signRecord,
  signSiteManifest,
  signTicket,
  siteManifestTypedData,
  siteManifestTypes,
  ticketId,
  validateBandwidthReceipt,
  validateHealthProof,
  validateNodeRecord,
  validatePurgeRequest,
  validateReceiptBatch,
  validateSiteManifest,
  validateTicket,
  verifyBandwidthReceipt,
  verifyHealthProof,
  verifyNodeRecord,
  verifyPurgeRequest,
  verifyReceiptBatch,
  verifyRecord,
  verifySiteManifest,
  verifyTicket,
} from '../src/index.ts'

const { publisher, node, issuer, client } = TEST_ACCOUNTS
const stranger = privateKeyToAccount(`0x${'05'.repeat(32)}`)
const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n
const at = { now: SAMPLE_TIME }

/** Every kind's public functions by name, so each is exercised, not only the generic ones. */
const API = {
  SiteManifest: {
    sign: signSiteManifest,
    verify: verifySiteManifest,
    encode: encodeSiteManifest,
    decode: decodeSiteManifest,
    validate: validateSiteManifest,
    hash: hashSiteManifest,
  },
  NodeRecord: {
    sign: signNodeRecord,
    verify: verifyNodeRecord,
    encode: encodeNodeRecord,
    decode: decodeNodeRecord,
    validate: validateNodeRecord,
    hash: hashNodeRecord,
  },
  Ticket: {
    sign: signTicket,
    verify: verifyTicket,
    encode: encodeTicket,
    decode: decodeTicket,
    validate: validateTicket,
    hash: hashTicket,
  },
  BandwidthReceipt: {
    sign: signBandwidthReceipt,
    verify: verifyBandwidthReceipt,
    encode: encodeBandwidthReceipt,
    decode: decodeBandwidthReceipt,
    validate: validateBandwidthReceipt,
    hash: hashBandwidthReceipt,
  },
  PurgeRequest: {
    sign: signPurgeRequest,
    verify: verifyPurgeRequest,
    encode: encodePurgeRequest,
    decode: decodePurgeRequest,
    validate: validatePurgeRequest,
    hash: hashPurgeRequest,
  },
  HealthProof: {
    sign: signHealthProof,
    verify: verifyHealthProof,
    encode: encodeHealthProof,
    decode: decodeHealthProof,
    validate: validateHealthProof,
    hash: hashHealthProof,
  },
  ReceiptBatch: {
    sign: signReceiptBatch,
    verify: verifyReceiptBatch,
    encode: encodeReceiptBatch,
    decode: decodeReceiptBatch,
    validate: validateReceiptBatch,
    hash: hashReceiptBatch,
  },
} as const

// Loosely typed views of the table, so one test body runs over every kind.
type AnyApi = {
  sign: (account: LocalAccount, message: unknown) => Promise<Signed<Record<string, unknown>>>
  verify: (signed: unknown, options?: object) => Promise<unknown>
  encode: (signed: unknown) => string
  decode: (input: unknown) => Signed<Record<string, unknown>>
  validate: (message: unknown) => unknown
  hash: (message: unknown) => Hex
}
const api = (kind: RecordKind) => API[kind] as unknown as AnyApi
const signerAccount = (kind: RecordKind) =>
  [publisher, node, issuer, client].find((a) => a.address === signerOf(kind, SAMPLE_MESSAGES[kind] as never))!

async function signSample(kind: RecordKind) {
  return api(kind).sign(signerAccount(kind), SAMPLE_MESSAGES[kind])
}

function flipHexDigit(hex: Hex, index: number): Hex {
  const digit = Number.parseInt(hex[index] ?? '0', 16) ^ 1
  return `${hex.slice(0, index)}${digit.toString(16)}${hex.slice(index + 1)}` as Hex
}

describe.each(RECORD_KIND_NAMES)('%s', (kind) => {
  it('round-trips sign → encode → decode → verify', async () => {
    const signed = await signSample(kind)
    const text = api(kind).encode(signed)
    expect(text).not.toMatch(/\s(?=(?:[^"]*"[^"]*")*[^"]*$)/)
    const decoded = api(kind).decode(text)
    expect(decoded).toEqual(signed)
    expect(await api(kind).verify(decoded, at)).toEqual(SAMPLE_MESSAGES[kind])
    expect(api(kind).encode(decoded)).toBe(text)
  })

  it('signs deterministically and with a canonical low-s signature', async () => {
    const [a, b] = await Promise.all([signSample(kind), signSample(kind)])
    expect(a.signature).toBe(b.signature)
    expect(a.signature).toMatch(/^0x[0-9a-f]{128}(1b|1c)$/)
    expect(BigInt(`0x${a.signature.slice(66, 130)}`) <= N / 2n).toBe(true)
  })

  it('decodes an already parsed value and non-canonical whitespace or key order', async () => {
    const signed = await signSample(kind)
    const text = api(kind).encode(signed)
    const parsed = JSON.parse(text) as { message: Record<string, unknown>; signature: string }
    const reordered = {
      signature: parsed.signature,
      message: Object.fromEntries(Object.entries(parsed.message).reverse()),
    }
    expect(api(kind).decode(parsed)).toEqual(signed)
    expect(api(kind).encode(api(kind).decode(JSON.stringify(reordered, null, 2)))).toBe(text)
  })

  it('hashes to the EIP-712 digest viem computes and viem verifies the signature', async () => {
    const signed = await signSample(kind)
    // One body over every kind: viem's per-kind inference does not apply to the union.
    const typed = recordTypedData(kind, SAMPLE_MESSAGES[kind] as never) as TypedDataDefinition
    expect(api(kind).hash(SAMPLE_MESSAGES[kind])).toBe(hashTypedData(typed))
    expect(hashRecord(kind, SAMPLE_MESSAGES[kind] as never)).toBe(hashTypedData(typed))
    const ok = await verifyTypedData({
      ...typed,
      address: signerAccount(kind).address,
      signature: signed.signature,
    })
    expect(ok).toBe(true)
  })

  it('validate returns the typed message', () => {
    expect(api(kind).validate(SAMPLE_MESSAGES[kind])).toEqual(SAMPLE_MESSAGES[kind])
  })

  it('refuses a signature with one flipped byte', async () => {
    const signed = await signSample(kind)
    const bad = { ...signed, signature: flipHexDigit(signed.signature, 20) }
    await expect(api(kind).verify(bad, at)).rejects.toMatchObject({ code: 'SHOAL_ERR_INVALID_SIGNATURE' })
  })

  it('refuses a signature made by another key over the same record', async () => {
    const signature = await stranger.signTypedData(
      recordTypedData(kind, SAMPLE_MESSAGES[kind] as never) as never,
    )
    const bad = { message: SAMPLE_MESSAGES[kind], signature }
    await expect(api(kind).verify(bad, at)).rejects.toMatchObject({ code: 'SHOAL_ERR_INVALID_SIGNATURE' })
  })

  it('refuses a record whose signer field names someone else', async () => {
    const signed = await signSample(kind)
    const field = Object.keys(signed.message).find(
      (key) => signed.message[key] === signerAccount(kind).address,
    )!
    const bad = { ...signed, message: { ...signed.message, [field]: stranger.address } }
    await expect(api(kind).verify(bad, at)).rejects.toMatchObject({ code: 'SHOAL_ERR_INVALID_SIGNATURE' })
  })

  it('refuses a high-s signature (the other valid ECDSA form of the same signature)', async () => {
    const signed = await signSample(kind)
    const s = N - BigInt(`0x${signed.signature.slice(66, 130)}`)
    const v = signed.signature.endsWith('1b') ? '1c' : '1b'
    const highS = `${signed.signature.slice(0, 66)}${s.toString(16).padStart(64, '0')}${v}` as Hex
    await expect(api(kind).verify({ ...signed, signature: highS }, at)).rejects.toMatchObject({
      code: 'SHOAL_ERR_INVALID_SIGNATURE',
      message: expect.stringContaining('low'),
    })
  })

  it('refuses to sign with an account that is not the signer', async () => {
    await expect(api(kind).sign(stranger, SAMPLE_MESSAGES[kind])).rejects.toMatchObject({
      code: 'SHOAL_ERR_INVALID_ARGUMENT',
    })
  })

  it('refuses an unknown field in the message and beside it', async () => {
    const signed = await signSample(kind)
    expect(() => api(kind).decode({ ...signed, message: { ...signed.message, extra: 1 } })).toThrow(
      expect.objectContaining({
        code: 'SHOAL_ERR_INVALID_FORMAT',
        message: expect.stringContaining('"extra"'),
      }),
    )
    expect(() => api(kind).decode({ ...signed, chainId: 1 })).toThrow(
      expect.objectContaining({
        code: 'SHOAL_ERR_INVALID_FORMAT',
        message: expect.stringContaining('"chainId"'),
      }),
    )
  })

  it('refuses every missing field, naming it', async () => {
    const signed = await signSample(kind)
    for (const field of Object.keys(signed.message)) {
      const { [field]: _dropped, ...rest } = signed.message
      expect(() => api(kind).decode({ ...signed, message: rest })).toThrow(
        expect.objectContaining({
          code: 'SHOAL_ERR_INVALID_FORMAT',
          message: expect.stringContaining(`${field} is missing`),
        }),
      )
    }
    expect(() => api(kind).decode({ message: signed.message })).toThrow(
      expect.objectContaining({
        code: 'SHOAL_ERR_INVALID_FORMAT',
        message: expect.stringContaining('signature'),
      }),
    )
  })

  it('refuses a wrong type in every field', async () => {
    const signed = await signSample(kind)
    for (const [field, value] of Object.entries(signed.message)) {
      const wrong = typeof value === 'number' ? String(value) : typeof value === 'string' ? 7 : 'x'
      expect(() => api(kind).decode({ ...signed, message: { ...signed.message, [field]: wrong } })).toThrow(
        expect.objectContaining({
          code: 'SHOAL_ERR_INVALID_FORMAT',
          message: expect.stringContaining(field),
        }),
      )
    }
  })

  it('refuses a non-checksummed signer address', async () => {
    const signed = await signSample(kind)
    const field = Object.keys(signed.message).find(
      (key) => signed.message[key] === signerAccount(kind).address,
    )!
    const lower = {
      ...signed,
      message: { ...signed.message, [field]: signerAccount(kind).address.toLowerCase() },
    }
    expect(() => api(kind).decode(lower)).toThrow(
      expect.objectContaining({
        code: 'SHOAL_ERR_INVALID_FORMAT',
        message: expect.stringContaining('checksum'),
      }),
    )
  })

  it('refuses an uppercase or short signature as a format error', async () => {
    const signed = await signSample(kind)
    for (const signature of [
      signed.signature.toUpperCase().replace('0X', '0x'),
      signed.signature.slice(0, 130),
    ]) {
      expect(() => api(kind).decode({ ...signed, signature })).toThrow(
        expect.objectContaining({
          code: 'SHOAL_ERR_INVALID_FORMAT',
          message: expect.stringContaining('signature'),
        }),
      )
    }
  })
})

describe('signatures', () => {
  it('refuses v other than 27/28 and out-of-range r or s', async () => {
    const signed = await signBandwidthReceipt(client, SAMPLE_MESSAGES.BandwidthReceipt)
    const sig = signed.signature
    const zeros = '0'.repeat(64)
    for (const signature of [
      `${sig.slice(0, 130)}00`,
      `${sig.slice(0, 130)}01`,
      `0x${zeros}${sig.slice(66)}`,
      `0x${sig.slice(2, 66)}${zeros}${sig.slice(130)}`,
      `0x${N.toString(16)}${sig.slice(66)}`,
    ]) {
      await expect(verifyBandwidthReceipt({ ...signed, signature: signature as Hex })).rejects.toMatchObject({
        code: 'SHOAL_ERR_INVALID_SIGNATURE',
      })
    }
  })

  it('refuses an r that is no curve point x-coordinate as an invalid signature, not a crash', async () => {
    const signed = await signBandwidthReceipt(client, SAMPLE_MESSAGES.BandwidthReceipt)
    // x = 5 is not on secp256k1 (5^3 + 7 = 132 is a non-residue mod p).
    const signature = `0x${5n.toString(16).padStart(64, '0')}${signed.signature.slice(66)}` as Hex
    await expect(verifyBandwidthReceipt({ ...signed, signature })).rejects.toMatchObject({
      code: 'SHOAL_ERR_INVALID_SIGNATURE',
    })
  })

  it('normalizes a signer that returns high-s, v 0/1 or uppercase hex', async () => {
    const wallet = {
      address: client.address,
      async signTypedData(typed: Parameters<LocalAccount['signTypedData']>[0]) {
        const sig = await client.signTypedData(typed)
        const s = N - BigInt(`0x${sig.slice(66, 130)}`)
        const v = sig.endsWith('1b') ? '01' : '00'
        return `0x${sig.slice(2, 66).toUpperCase()}${s.toString(16).padStart(64, '0')}${v}` as Hex
      },
    } as unknown as LocalAccount
    const signed = await signBandwidthReceipt(wallet, SAMPLE_MESSAGES.BandwidthReceipt)
    const reference = await signBandwidthReceipt(client, SAMPLE_MESSAGES.BandwidthReceipt)
    expect(signed.signature).toBe(reference.signature)
    expect(await verifyBandwidthReceipt(signed)).toEqual(SAMPLE_MESSAGES.BandwidthReceipt)
  })

  it('refuses a signer that returns garbage', async () => {
    const broken = { address: client.address, signTypedData: async () => '0x1234' } as unknown as LocalAccount
    await expect(signBandwidthReceipt(broken, SAMPLE_MESSAGES.BandwidthReceipt)).rejects.toMatchObject({
      code: 'SHOAL_ERR_INVALID_SIGNATURE',
    })
  })

  it('refuses something that is not an account', async () => {
    await expect(signTicket({} as LocalAccount, SAMPLE_MESSAGES.Ticket)).rejects.toMatchObject({
      code: 'SHOAL_ERR_INVALID_ARGUMENT',
    })
  })

  it('accepts a signature made by a wallet from the exported typed data', async () => {
    const typed = siteManifestTypedData(SAMPLE_MESSAGES.SiteManifest)
    expect(typed.domain).toEqual(SHOAL_DOMAIN)
    expect(typed.types).toBe(siteManifestTypes)
    expect(typed.message.sequence).toBe(7n)
    // The wallet signs the header: the entries are committed to by their count and tree root.
    expect(Object.keys(typed.message)).toEqual([
      'publisher',
      'site',
      'sequence',
      'origin',
      'timestamp',
      'entryCount',
      'entriesRoot',
    ])
    expect(typed.message.entryCount).toBe(5n)
    expect(typed.message.entriesRoot).toMatch(/^0x[0-9a-f]{64}$/)
    const signature = await publisher.signTypedData(typed)
    expect(await verifySiteManifest({ message: SAMPLE_MESSAGES.SiteManifest, signature }, at)).toEqual(
      SAMPLE_MESSAGES.SiteManifest,
    )
  })

  it('does not accept one kind’s signature for another kind with the same signer', async () => {
    const purge = await signPurgeRequest(publisher, SAMPLE_MESSAGES.PurgeRequest)
    const manifest = { message: SAMPLE_MESSAGES.SiteManifest, signature: purge.signature }
    await expect(verifySiteManifest(manifest, at)).rejects.toMatchObject({
      code: 'SHOAL_ERR_INVALID_SIGNATURE',
    })
  })
})

describe('ticket ids', () => {
  it('is the struct hash, distinct from the signed digest, and changes with every field', () => {
    const ticket = SAMPLE_MESSAGES.Ticket
    const id = ticketId(ticket)
    expect(id).toMatch(/^0x[0-9a-f]{64}$/)
    expect(id).not.toBe(hashTicket(ticket))
    expect(ticketId({ ...ticket, budget: ticket.budget + 1 })).not.toBe(id)
    expect(ticketId({ ...ticket, nonce: `0x${'12'.repeat(32)}` })).not.toBe(id)
  })

  it('refuses an invalid ticket', () => {
    expect(() => ticketId({ ...SAMPLE_MESSAGES.Ticket, budget: -1 })).toThrow(
      expect.objectContaining({ code: 'SHOAL_ERR_INVALID_FORMAT' }),
    )
  })
})

describe('freshness', () => {
  const ticketSigned = () => signTicket(issuer, SAMPLE_MESSAGES.Ticket)
  const expiry = SAMPLE_MESSAGES.Ticket.expiry

  it('accepts a ticket through its expiry plus the skew, and refuses it after', async () => {
    const signed = await ticketSigned()
    expect(await verifyTicket(signed, { now: expiry + 300 })).toEqual(SAMPLE_MESSAGES.Ticket)
    await expect(verifyTicket(signed, { now: expiry + 301 })).rejects.toMatchObject({
      code: 'SHOAL_ERR_EXPIRED',
    })
    await expect(verifyTicket(signed, { now: expiry + 1, maxSkewSeconds: 0 })).rejects.toMatchObject({
      code: 'SHOAL_ERR_EXPIRED',
    })
  })

  it('checks expiry with the real clock by default', async () => {
    // The sample ticket expired on 2026-01-01; a clock that far on is past it.
    const signed = await signTicket(issuer, { ...SAMPLE_MESSAGES.Ticket, expiry: 1 })
    await expect(verifyTicket(signed)).rejects.toMatchObject({ code: 'SHOAL_ERR_EXPIRED' })
  })

  it('refuses an old node record (default 3600 s) and one from the future (default skew 300 s)', async () => {
    const signed = await signNodeRecord(node, SAMPLE_MESSAGES.NodeRecord)
    const t = SAMPLE_MESSAGES.NodeRecord.timestamp
    expect(await verifyNodeRecord(signed, { now: t + 3900 })).toEqual(SAMPLE_MESSAGES.NodeRecord)
    await expect(verifyNodeRecord(signed, { now: t + 3901 })).rejects.toMatchObject({
      code: 'SHOAL_ERR_EXPIRED',
    })
    await expect(verifyNodeRecord(signed, { now: t - 301 })).rejects.toMatchObject({
      code: 'SHOAL_ERR_EXPIRED',
      message: expect.stringContaining('future'),
    })
    await expect(
      verifyNodeRecord(signed, { now: t + 100, maxAgeSeconds: 10, maxSkewSeconds: 0 }),
    ).rejects.toMatchObject({
      code: 'SHOAL_ERR_EXPIRED',
    })
  })

  it('refuses a purge request older than 300 s (plus skew)', async () => {
    const signed = await signPurgeRequest(publisher, SAMPLE_MESSAGES.PurgeRequest)
    const t = SAMPLE_MESSAGES.PurgeRequest.timestamp
    expect(await verifyPurgeRequest(signed, { now: t + 600 })).toEqual(SAMPLE_MESSAGES.PurgeRequest)
    await expect(verifyPurgeRequest(signed, { now: t + 601 })).rejects.toMatchObject({
      code: 'SHOAL_ERR_EXPIRED',
    })
  })

  it('keeps a manifest valid at any age but refuses a future one and a stale sequence', async () => {
    const signed = await signSiteManifest(publisher, SAMPLE_MESSAGES.SiteManifest)
    const t = SAMPLE_MESSAGES.SiteManifest.timestamp
    expect(await verifySiteManifest(signed, { now: t + 10 * 365 * 86400 })).toEqual(
      SAMPLE_MESSAGES.SiteManifest,
    )
    await expect(verifySiteManifest(signed, { now: t - 1000 })).rejects.toMatchObject({
      code: 'SHOAL_ERR_EXPIRED',
    })
    await expect(verifySiteManifest(signed, { ...at, knownSequence: 7 })).rejects.toMatchObject({
      code: 'SHOAL_ERR_STALE',
    })
    await expect(verifySiteManifest(signed, { ...at, knownSequence: 8 })).rejects.toMatchObject({
      code: 'SHOAL_ERR_STALE',
    })
    expect(await verifySiteManifest(signed, { ...at, knownSequence: 6 })).toEqual(
      SAMPLE_MESSAGES.SiteManifest,
    )
  })

  it('puts no clock on receipts', async () => {
    const signed = await signBandwidthReceipt(client, SAMPLE_MESSAGES.BandwidthReceipt)
    expect(await verifyBandwidthReceipt(signed, { now: 0 })).toEqual(SAMPLE_MESSAGES.BandwidthReceipt)
  })

  it('refuses bad options with InvalidArgumentError', async () => {
    const signed = await signNodeRecord(node, SAMPLE_MESSAGES.NodeRecord)
    for (const options of [
      { now: -1 },
      { now: Number.NaN },
      { now: Number.POSITIVE_INFINITY },
      { maxSkewSeconds: -5 },
      { maxAgeSeconds: Number.NaN },
      { now: '1' as unknown as number },
      null,
      'soon',
    ]) {
      await expect(verifyNodeRecord(signed, options as never)).rejects.toMatchObject({
        code: 'SHOAL_ERR_INVALID_ARGUMENT',
      })
    }
    const manifest = await signSiteManifest(publisher, SAMPLE_MESSAGES.SiteManifest)
    await expect(verifySiteManifest(manifest, { ...at, knownSequence: -1 })).rejects.toMatchObject({
      code: 'SHOAL_ERR_INVALID_ARGUMENT',
    })
  })
})

describe('generic record functions', () => {
  it('work for every kind by name and refuse an unknown kind', async () => {
    for (const kind of RECORD_KIND_NAMES) {
      const signed = await signRecord(kind, signerAccount(kind), SAMPLE_MESSAGES[kind] as never)
      const text = encodeRecord(kind, signed)
      expect(await verifyRecord(kind, decodeRecord(kind, text), at)).toEqual(SAMPLE_MESSAGES[kind])
    }
    expect(() => decodeRecord('Receipt' as RecordKind, '{}')).toThrow(
      expect.objectContaining({ code: 'SHOAL_ERR_INVALID_ARGUMENT' }),
    )
    expect(() => decodeRecord('toString' as RecordKind, '{}')).toThrow(
      expect.objectContaining({ code: 'SHOAL_ERR_INVALID_ARGUMENT' }),
    )
  })

  it('refuse input that is not JSON or not an object', () => {
    for (const input of ['', '{', 'null', '[]', '42', '"x"', null, 42, [], undefined]) {
      expect(() => decodeTicket(input)).toThrow(expect.objectContaining({ code: 'SHOAL_ERR_INVALID_FORMAT' }))
    }
  })

  it('refuse a __proto__ key instead of letting it through', async () => {
    const signed = await signTicket(issuer, SAMPLE_MESSAGES.Ticket)
    const text = encodeTicket(signed).replace('"budget"', '"__proto__":{"x":1},"budget"')
    expect(() => decodeTicket(text)).toThrow(
      expect.objectContaining({
        code: 'SHOAL_ERR_INVALID_FORMAT',
        message: expect.stringContaining('__proto__'),
      }),
    )
  })

  it('encode refuses an invalid signed record instead of writing it', () => {
    expect(() =>
      encodeTicket({
        message: { ...SAMPLE_MESSAGES.Ticket, budget: 1.5 },
        signature: `0x${'ab'.repeat(65)}`,
      }),
    ).toThrow(expect.objectContaining({ code: 'SHOAL_ERR_INVALID_FORMAT' }))
  })
})
