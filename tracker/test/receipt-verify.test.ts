import {
  type BandwidthReceipt,
  hashBandwidthReceipt,
  RECEIPT_KIND,
  signBandwidthReceipt,
} from '@shoal/protocol'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { describe, expect, it } from 'vitest'
import { createReceiptDigester, digestHex } from '../src/receipts/digest.ts'
import { recoverSigner, recoveryBackend } from '../src/receipts/recover.ts'

const client = privateKeyToAccount(generatePrivateKey())
const node = privateKeyToAccount(generatePrivateKey())

const receipt = (over: Partial<BandwidthReceipt> = {}): BandwidthReceipt => ({
  node: node.address,
  client: client.address,
  session: `0x${'ab'.repeat(32)}`,
  bytes: 5_242_880,
  epoch: 491_234,
  ticket: `0x${'cd'.repeat(32)}`,
  kind: RECEIPT_KIND.content,
  ...over,
})

describe('fast receipt digest and recovery', () => {
  it('matches viem hashTypedData over edge values', () => {
    const d = createReceiptDigester()
    const cases = [
      receipt(),
      receipt({ bytes: 0, epoch: 0, kind: RECEIPT_KIND.relay }),
      receipt({ bytes: Number.MAX_SAFE_INTEGER, epoch: 2 ** 32 + 7 }),
      receipt({ session: `0x${'00'.repeat(32)}`, ticket: `0x${'ff'.repeat(32)}` }),
    ]
    for (const r of cases) expect(digestHex(d.digest(r))).toBe(hashBandwidthReceipt(r))
    expect(() => d.digest(receipt({ session: '0x12' }))).toThrow(
      expect.objectContaining({ code: 'SHOAL_ERR_INVALID_FORMAT' }),
    )
    expect(() => d.digest(receipt({ bytes: -1 }))).toThrow(
      expect.objectContaining({ code: 'SHOAL_ERR_INVALID_FORMAT' }),
    )
  })

  it('recovers the client of a signed receipt and nothing from a tampered one', async () => {
    expect(recoveryBackend()).toBe('native')
    const d = createReceiptDigester()
    const signed = await signBandwidthReceipt(client, receipt())
    expect(recoverSigner(d.digest(signed.message), signed.signature)).toBe(client.address.toLowerCase())
    // another message: another signer
    expect(recoverSigner(d.digest(receipt({ bytes: 1 })), signed.signature)).not.toBe(
      client.address.toLowerCase(),
    )
    // malformed, bad v, high-s
    expect(recoverSigner(d.digest(signed.message), '0x12')).toBeUndefined()
    expect(recoverSigner(d.digest(signed.message), `${signed.signature.slice(0, 130)}1d`)).toBeUndefined()
    const n = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n
    const s = BigInt(`0x${signed.signature.slice(66, 130)}`)
    const v = signed.signature.endsWith('1b') ? '1c' : '1b'
    const high = `${signed.signature.slice(0, 66)}${(n - s).toString(16).padStart(64, '0')}${v}`
    expect(recoverSigner(d.digest(signed.message), high)).toBeUndefined()
  })
})

describe('receipt verifier pool', () => {
  it('recovers every signer across worker threads, in order, and flags forged ones', async () => {
    const { createReceiptVerifier } = await import('../src/receipts/verifier.ts')
    const verifier = createReceiptVerifier({ threads: 2, chunk: 3 })
    try {
      const signed = []
      for (let i = 0; i < 10; i++) signed.push(await signBandwidthReceipt(client, receipt({ bytes: i })))
      // receipt 4 claims more bytes than were signed
      signed[4] = { ...signed[4]!, message: { ...signed[4]!.message, bytes: 999 } }
      const { digests, signers } = await verifier.verify(signed)
      expect(digests).toEqual(signed.map((s) => hashBandwidthReceipt(s.message)))
      const me = client.address.toLowerCase()
      expect(signers.map((s) => s === me)).toEqual([
        true,
        true,
        true,
        true,
        false,
        true,
        true,
        true,
        true,
        true,
      ])
      // from stored digests: the same signers
      const again = await verifier.recover(
        signed.map((s, i) => ({ digest: digests[i]!, signature: s.signature })),
      )
      expect(again).toEqual(signers)
      expect(await verifier.recover([{ digest: digests[0]!, signature: '0x12' }])).toEqual([''])
    } finally {
      await verifier.close()
    }
  })
})
