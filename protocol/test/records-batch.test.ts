import { concat, keccak256 } from 'viem'
import { describe, expect, it } from 'vitest'
import { SAMPLE_MESSAGES, TEST_ACCOUNTS } from '../scripts/records-vectors.ts'
import { hashBandwidthReceipt, receiptsHash, signReceiptBatch, verifyReceiptBatch } from '../src/index.ts'

describe('receipt batches', () => {
  it('receiptsHash is keccak over the receipts digests in order, and the batch binds it', async () => {
    const a = hashBandwidthReceipt(SAMPLE_MESSAGES.BandwidthReceipt)
    const b = hashBandwidthReceipt({ ...SAMPLE_MESSAGES.BandwidthReceipt, bytes: 1 })
    expect(receiptsHash([a, b])).toBe(keccak256(concat([a, b])))
    expect(receiptsHash([a, b])).not.toBe(receiptsHash([b, a]))
    expect(receiptsHash([])).toBe(keccak256('0x'))
    expect(() => receiptsHash(['0x12'])).toThrow(
      expect.objectContaining({ code: 'SHOAL_ERR_INVALID_FORMAT' }),
    )
    const now = SAMPLE_MESSAGES.ReceiptBatch.timestamp
    const signed = await signReceiptBatch(TEST_ACCOUNTS.node, SAMPLE_MESSAGES.ReceiptBatch)
    expect(await verifyReceiptBatch(signed, { now })).toEqual(SAMPLE_MESSAGES.ReceiptBatch)
    // signed by another key than the batch's node
    const forged = await signReceiptBatch(TEST_ACCOUNTS.client, {
      ...SAMPLE_MESSAGES.ReceiptBatch,
      node: TEST_ACCOUNTS.client.address,
    })
    await expect(
      verifyReceiptBatch({ message: SAMPLE_MESSAGES.ReceiptBatch, signature: forged.signature }, { now }),
    ).rejects.toMatchObject({ code: 'SHOAL_ERR_INVALID_SIGNATURE' })
    await expect(verifyReceiptBatch(signed, { now: now + 2 * 86_400 })).rejects.toMatchObject({
      code: 'SHOAL_ERR_EXPIRED',
    })
  })
})
