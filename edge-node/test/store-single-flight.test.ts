import { describe, expect, it } from 'vitest'
import { createSingleFlight } from '../src/store/index.ts'

const code = (c: string) => expect.objectContaining({ code: c })

function deferred<T>() {
  let resolve!: (value: T) => void
  let reject!: (err: unknown) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

describe('single flight', () => {
  it('runs the work once for N concurrent callers and gives all the same value', async () => {
    const flights = createSingleFlight<string, { body: string }>()
    const gate = deferred<{ body: string }>()
    let calls = 0
    const work = () => {
      calls++
      return gate.promise
    }
    const waiters = Array.from({ length: 50 }, () => flights.run('cid', work))
    expect(flights.has('cid')).toBe(true)
    gate.resolve({ body: 'bytes' })
    const values = await Promise.all(waiters)
    expect(calls).toBe(1)
    expect(new Set(values).size).toBe(1)
    expect(flights.size).toBe(0)
  })

  it('keeps different keys apart', async () => {
    const flights = createSingleFlight<number, number>()
    let calls = 0
    const results = await Promise.all(
      [1, 2, 1, 2, 3].map((k) =>
        flights.run(k, async () => {
          calls++
          return k * 10
        }),
      ),
    )
    expect(results).toEqual([10, 20, 10, 20, 30])
    expect(calls).toBe(3)
  })

  it('propagates an error to every waiter and does not cache it', async () => {
    const flights = createSingleFlight<string, string>()
    const gate = deferred<string>()
    let calls = 0
    const waiters = Array.from({ length: 5 }, () =>
      flights.run('k', () => {
        calls++
        return gate.promise
      }),
    )
    const failure = new Error('upstream 502')
    gate.reject(failure)
    for (const w of waiters) await expect(w).rejects.toBe(failure)
    expect(calls).toBe(1)
    expect(flights.has('k')).toBe(false)
    await expect(flights.run('k', async () => 'ok')).resolves.toBe('ok')
    // A synchronous throw is an error like any other.
    await expect(
      flights.run('sync', () => {
        throw new Error('boom')
      }),
    ).rejects.toThrow('boom')
  })

  it('an aborting caller detaches without cancelling the work for the others', async () => {
    const flights = createSingleFlight<string, string>()
    const gate = deferred<string>()
    let shared: AbortSignal | undefined
    const quitter = new AbortController()
    const a = flights.run(
      'k',
      (signal) => {
        shared = signal
        return gate.promise
      },
      { signal: quitter.signal },
    )
    const b = flights.run('k', () => Promise.reject(new Error('not called')), {
      signal: AbortSignal.timeout(10_000),
    })
    quitter.abort(new Error('client went away'))
    await expect(a).rejects.toEqual(code('SHOAL_ERR_ABORTED'))
    expect(shared?.aborted).toBe(false)
    gate.resolve('done')
    await expect(b).resolves.toBe('done')
  })

  it('aborts the shared work when every caller has aborted, and starts afresh after', async () => {
    const flights = createSingleFlight<string, string>()
    let shared: AbortSignal | undefined
    const work = (signal: AbortSignal) => {
      shared = signal
      return new Promise<string>((_, reject) => {
        signal.addEventListener('abort', () => reject(signal.reason), { once: true })
      })
    }
    const waiters = [AbortSignal.timeout(10), AbortSignal.timeout(20)].map((signal) =>
      flights.run('k', work, { signal }),
    )
    for (const w of waiters) await expect(w).rejects.toEqual(code('SHOAL_ERR_ABORTED'))
    expect(shared?.aborted).toBe(true)
    expect(flights.has('k')).toBe(false)
    let fresh = 0
    await expect(
      flights.run('k', async () => {
        fresh++
        return 'again'
      }),
    ).resolves.toBe('again')
    expect(fresh).toBe(1)
  })

  it('a caller without a signal keeps the work alive', async () => {
    const flights = createSingleFlight<string, string>()
    const gate = deferred<string>()
    let shared: AbortSignal | undefined
    const steady = flights.run('k', (signal) => {
      shared = signal
      return gate.promise
    })
    const quitter = new AbortController()
    const leaving = flights.run('k', () => gate.promise, { signal: quitter.signal })
    quitter.abort()
    await expect(leaving).rejects.toEqual(code('SHOAL_ERR_ABORTED'))
    expect(shared?.aborted).toBe(false)
    gate.resolve('ok')
    await expect(steady).resolves.toBe('ok')
  })

  it('refuses an already aborted caller without starting any work', async () => {
    const flights = createSingleFlight<string, string>()
    let calls = 0
    await expect(
      flights.run(
        'k',
        async () => {
          calls++
          return 'x'
        },
        { signal: AbortSignal.abort() },
      ),
    ).rejects.toEqual(code('SHOAL_ERR_ABORTED'))
    expect(calls).toBe(0)
    expect(flights.has('k')).toBe(false)
  })
})
