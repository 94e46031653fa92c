import { describe, expect, it } from 'vitest'
import {
  ERROR_CODES,
  IntegrityError,
  InvalidCidError,
  isShoalError,
  parseErrorBody,
  ShoalError,
  throwIfAborted,
  toErrorResponse,
} from '../src/index.ts'

describe('errors', () => {
  it('runs on the pinned Node 22', () => {
    const major = Number(process.versions.node.split('.')[0])
    expect(major).toBeGreaterThanOrEqual(22)
  })

  it('gives each typed error a stable code, name and status', () => {
    const err = new IntegrityError('chunk 3 does not match', { cause: new Error('x') })
    expect(err.code).toBe('SHOAL_ERR_INTEGRITY')
    expect(err.name).toBe('IntegrityError')
    expect(err.status).toBe(502)
    expect(err).toBeInstanceOf(ShoalError)
    expect(err.cause).toBeInstanceOf(Error)
    expect(new InvalidCidError('bad').status).toBe(400)
  })

  it('maps Shoal errors to the shared JSON body and hides other errors', () => {
    expect(toErrorResponse(new InvalidCidError('not a cid'))).toEqual({
      status: 400,
      body: { error: { code: 'SHOAL_ERR_INVALID_CID', message: 'not a cid' } },
    })
    expect(toErrorResponse(new TypeError('secret internals'))).toEqual({
      status: 500,
      body: { error: { code: 'SHOAL_ERR_INTERNAL', message: 'internal error' } },
    })
    expect(JSON.parse(JSON.stringify(new IntegrityError('bad')))).toEqual({
      error: { code: 'SHOAL_ERR_INTEGRITY', message: 'bad' },
    })
  })

  it('recognises codes by value, not by class', () => {
    expect(isShoalError({ code: 'SHOAL_ERR_NOT_FOUND', message: 'x' })).toBe(true)
    expect(isShoalError({ code: 'ECONNRESET', message: 'x' })).toBe(false)
    expect(isShoalError(null)).toBe(false)
    for (const status of Object.values(ERROR_CODES)) expect(status).toBeGreaterThanOrEqual(400)
  })

  it('parses error bodies from services and refuses other shapes', () => {
    expect(parseErrorBody({ error: { code: 'SHOAL_ERR_STALE', message: 'm' } })?.error.code).toBe(
      'SHOAL_ERR_STALE',
    )
    expect(parseErrorBody({ error: 'nope' })).toBeUndefined()
    expect(parseErrorBody('x')).toBeUndefined()
  })

  it('turns an aborted signal into a typed AbortError', () => {
    const ac = new AbortController()
    expect(() => throwIfAborted(ac.signal)).not.toThrow()
    ac.abort(new Error('stop'))
    expect(() => throwIfAborted(ac.signal)).toThrow(expect.objectContaining({ code: 'SHOAL_ERR_ABORTED' }))
  })
})

describe('one error class per code', () => {
  it('has a class for every code a service answers with', async () => {
    const mod = await import('../src/errors.ts')
    const codes = new Set<string>()
    for (const value of Object.values(mod)) {
      if (typeof value === 'function' && value.prototype instanceof mod.ShoalError) {
        const err = new (value as new (m: string) => InstanceType<typeof mod.ShoalError>)('m')
        expect(err.name).toBe(value.name)
        codes.add(err.code)
      }
    }
    // every code but the generic internal one has its own class
    const missing = Object.keys(mod.ERROR_CODES).filter((c) => !codes.has(c) && c !== 'SHOAL_ERR_INTERNAL')
    expect(missing).toEqual([])
  })
})
