import { type Hex, toHex } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { describe, expect, it } from 'vitest'
import { SAMPLE_MESSAGES, SAMPLE_TIME, TEST_ACCOUNTS } from '../scripts/records-vectors.ts'
import {
  decodeHealthProof,
  encodeHealthProof,
  type HealthProof,
  healthProofTypedData,
  healthProofTypes,
  signHealthProof,
  signNodeRecord,
  validateHealthProof,
  verifyHealthProof,
} from '../src/index.ts'

const { node } = TEST_ACCOUNTS
const proxy = privateKeyToAccount(`0x${'05'.repeat(32)}`)
const challenge = SAMPLE_MESSAGES.HealthProof.challenge
const other: Hex = `0x${'45'.repeat(32)}`
const t = SAMPLE_TIME
const sent = { now: t, expectedChallenge: challenge, expectedNode: node.address }

/** What a node answers `GET /health?challenge=…` with, and what the tracker reads from it. */
async function answer(message: HealthProof = SAMPLE_MESSAGES.HealthProof): Promise<string> {
  const signed = await signHealthProof(node, message)
  return `{"status":"ok","node":"${signed.message.node}","proof":${encodeHealthProof(signed)}}`
}
const proofOf = (body: string) => decodeHealthProof((JSON.parse(body) as { proof: unknown }).proof)

describe('health proofs', () => {
  it('round-trips a probe: the node signs the challenge, the tracker verifies what it sent', async () => {
    const body = await answer()
    expect(JSON.parse(body)).toMatchObject({
      status: 'ok',
      node: node.address,
      proof: { message: { challenge } },
    })
    expect(await verifyHealthProof(proofOf(body), sent)).toEqual(SAMPLE_MESSAGES.HealthProof)
    // Expectations are compared in canonical form: any-case hex and addresses are fine.
    const mixed: Hex = `0x${'aB'.repeat(32)}`
    const lettered = proofOf(
      await answer({ ...SAMPLE_MESSAGES.HealthProof, challenge: mixed.toLowerCase() as Hex }),
    )
    const anyCase = { now: t, expectedChallenge: mixed, expectedNode: node.address.toLowerCase() as Hex }
    expect(await verifyHealthProof(lettered, anyCase)).toMatchObject({ challenge: mixed.toLowerCase() })
  })

  it('signs the documented struct, and a wallet signature from the typed data verifies', async () => {
    const typed = healthProofTypedData(SAMPLE_MESSAGES.HealthProof)
    expect(typed.types).toBe(healthProofTypes)
    expect(typed.message).toEqual({ node: node.address, challenge, timestamp: BigInt(t) })
    const signature = await node.signTypedData(typed)
    expect(await verifyHealthProof({ message: SAMPLE_MESSAGES.HealthProof, signature }, sent)).toEqual(
      SAMPLE_MESSAGES.HealthProof,
    )
  })

  it('refuses a proof for another challenge (a proxy replaying an earlier answer)', async () => {
    const replayed = proofOf(await answer({ ...SAMPLE_MESSAGES.HealthProof, challenge: other }))
    await expect(verifyHealthProof(replayed, sent)).rejects.toMatchObject({
      code: 'SHOAL_ERR_INVALID_SIGNATURE',
      message: `HealthProof challenge is ${other}, not the expected ${challenge}`,
    })
    // The same proof is valid for the challenge it answers: only the expectation refuses it.
    expect(await verifyHealthProof(replayed, { ...sent, expectedChallenge: other })).toMatchObject({
      challenge: other,
    })
  })

  it('refuses a proof by another node, even one validly signed by that node', async () => {
    const own = await signHealthProof(proxy, { ...SAMPLE_MESSAGES.HealthProof, node: proxy.address })
    await expect(verifyHealthProof(own, sent)).rejects.toMatchObject({
      code: 'SHOAL_ERR_INVALID_SIGNATURE',
      message: expect.stringContaining(`not the expected ${node.address}`),
    })
    // Naming the probed node while signing with another key fails the signature itself.
    const signature = await proxy.signTypedData(healthProofTypedData(SAMPLE_MESSAGES.HealthProof))
    const forged = { message: SAMPLE_MESSAGES.HealthProof, signature }
    await expect(verifyHealthProof(forged, sent)).rejects.toMatchObject({
      code: 'SHOAL_ERR_INVALID_SIGNATURE',
      message: expect.stringContaining(`signed by ${proxy.address}`),
    })
    await expect(signHealthProof(proxy, SAMPLE_MESSAGES.HealthProof)).rejects.toMatchObject({
      code: 'SHOAL_ERR_INVALID_ARGUMENT',
    })
  })

  it('refuses a proof older than 60 s plus the skew, and honours maxAgeSeconds and maxSkewSeconds', async () => {
    const signed = proofOf(await answer())
    expect(await verifyHealthProof(signed, { ...sent, now: t + 360 })).toEqual(SAMPLE_MESSAGES.HealthProof)
    await expect(verifyHealthProof(signed, { ...sent, now: t + 361 })).rejects.toMatchObject({
      code: 'SHOAL_ERR_EXPIRED',
      message: 'HealthProof is 361 s old (max age 60 s)',
    })
    await expect(
      verifyHealthProof(signed, { ...sent, now: t + 11, maxAgeSeconds: 10, maxSkewSeconds: 0 }),
    ).rejects.toMatchObject({ code: 'SHOAL_ERR_EXPIRED' })
  })

  it('refuses a timestamp from the future beyond the skew', async () => {
    const signed = proofOf(await answer())
    expect(await verifyHealthProof(signed, { ...sent, now: t - 300 })).toEqual(SAMPLE_MESSAGES.HealthProof)
    await expect(verifyHealthProof(signed, { ...sent, now: t - 301 })).rejects.toMatchObject({
      code: 'SHOAL_ERR_EXPIRED',
      message: expect.stringContaining('future'),
    })
    await expect(verifyHealthProof(signed, { ...sent, now: t - 1, maxSkewSeconds: 0 })).rejects.toMatchObject(
      { code: 'SHOAL_ERR_EXPIRED' },
    )
  })

  it('refuses a signature with any one bit flipped', async () => {
    const signed = proofOf(await answer())
    const bytes = Uint8Array.from(Buffer.from(signed.signature.slice(2), 'hex'))
    for (const bit of [0, 255, 256, 511, 519]) {
      const flipped = Uint8Array.from(bytes)
      flipped[bit >> 3] = (flipped[bit >> 3] ?? 0) ^ (1 << (bit & 7))
      await expect(verifyHealthProof({ ...signed, signature: toHex(flipped) }, sent)).rejects.toMatchObject({
        code: 'SHOAL_ERR_INVALID_SIGNATURE',
      })
    }
  })

  it('refuses unknown fields in the proof and in its message', async () => {
    const text = encodeHealthProof(proofOf(await answer()))
    for (const bad of [
      text.replace('"timestamp":', '"status":"ok","timestamp":'),
      text.replace('"signature":', '"node":"0x5050A4F4b3f9338C3472dcC01A87C76A144b3c9c","signature":'),
    ]) {
      expect(() => decodeHealthProof(bad)).toThrow(
        expect.objectContaining({
          code: 'SHOAL_ERR_INVALID_FORMAT',
          message: expect.stringContaining('unknown field'),
        }),
      )
    }
  })

  it('accepts only a challenge of 0x + 64 lowercase hex, so the node answers 400 to any other', async () => {
    for (const bad of [`0x${'AB'.repeat(32)}`, `0x${'ab'.repeat(32)}`.slice(0, 64), 'hello', '']) {
      const message = { ...SAMPLE_MESSAGES.HealthProof, challenge: bad as Hex }
      expect(() => validateHealthProof(message)).toThrow(
        expect.objectContaining({
          code: 'SHOAL_ERR_INVALID_FORMAT',
          message: expect.stringContaining('challenge'),
        }),
      )
      await expect(signHealthProof(node, message)).rejects.toMatchObject({ code: 'SHOAL_ERR_INVALID_FORMAT' })
    }
  })

  it('refuses malformed expectations with InvalidArgumentError before reading the proof', async () => {
    for (const options of [
      { expectedChallenge: challenge.slice(0, 64) },
      { expectedChallenge: 42 },
      { expectedChallenge: null },
      { expectedNode: 'node-1' },
      { expectedNode: `${node.address}00` },
    ]) {
      await expect(
        verifyHealthProof('not a proof' as never, { now: t, ...options } as never),
      ).rejects.toMatchObject({
        code: 'SHOAL_ERR_INVALID_ARGUMENT',
      })
    }
  })

  it('does not accept the node’s record signature as a health proof', async () => {
    const record = await signNodeRecord(node, SAMPLE_MESSAGES.NodeRecord)
    await expect(
      verifyHealthProof({ message: SAMPLE_MESSAGES.HealthProof, signature: record.signature }, sent),
    ).rejects.toMatchObject({ code: 'SHOAL_ERR_INVALID_SIGNATURE' })
  })
})
