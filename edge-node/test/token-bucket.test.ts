import { describe, expect, it } from 'vitest'
import { createTokenBucket, throttle } from '../src/limits/token-bucket.ts'

describe('token bucket', () => {
  it('refuses nonsense rates with a typed error', () => {
    expect(() => createTokenBucket({ rate: 0 })).toThrow(
      expect.objectContaining({ code: 'SHOAL_ERR_INVALID_ARGUMENT' }),
    )
    expect(() => createTokenBucket({ rate: Number.NaN })).toThrow(
      expect.objectContaining({ code: 'SHOAL_ERR_INVALID_ARGUMENT' }),
    )
  })

  it('grants a burst, then refills at the rate on a virtual clock', () => {
    let t = 0
    const bucket = createTokenBucket({ rate: 1000, burst: 500, now: () => t })
    expect(bucket.tryTake(800)).toBe(500)
    expect(bucket.tryTake(1)).toBe(0)
    t += 100 // 100 ms → 100 bytes
    expect(bucket.tryTakeAll(101)).toBe(false)
    expect(bucket.tryTakeAll(100)).toBe(true)
    t += 10_000 // never above the burst
    expect(bucket.tryTake(10_000)).toBe(500)
  })

  it('throttle yields every byte in order, split no larger than the burst', async () => {
    const bucket = createTokenBucket({ rate: 10_000_000, burst: 4096 })
    const input = [new Uint8Array(10_000).fill(1), new Uint8Array(3).fill(2)]
    const out: Uint8Array[] = []
    for await (const p of throttle(input, [bucket])) out.push(p)
    expect(out.every((p) => p.length <= 4096)).toBe(true)
    expect(Buffer.concat(out)).toEqual(Buffer.concat(input))
  })

  it('take waits for tokens and honours abort', async () => {
    const bucket = createTokenBucket({ rate: 1000, burst: 10 })
    bucket.tryTake(10)
    const ac = new AbortController()
    const waiting = bucket.take(10, { signal: ac.signal })
    ac.abort()
    await expect(waiting).rejects.toMatchObject({ code: 'SHOAL_ERR_ABORTED' })
    await expect(bucket.take(5)).resolves.toBeUndefined()
  })
})
