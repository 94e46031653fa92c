import type { IncomingHttpHeaders } from 'node:http'
import { describe, expect, it } from 'vitest'
import { deltaSeconds, parseCacheControl } from '../src/origin/cache-control.ts'
import { ifRangeAllows, noneMatchHits, notModified } from '../src/origin/conditional.ts'
import { createFillRegistry } from '../src/origin/fills.ts'
import {
  endToEndResponseHeaders,
  forwardRequestHeaders,
  normalizeAcceptEncoding,
  normalizeVaryValue,
  parseVary,
} from '../src/origin/headers.ts'
import { baseKey, purgeMatcher, variantKey } from '../src/origin/keys.ts'
import {
  createPolicyClass,
  evaluate,
  type PolicyHeaders,
  preparePolicy,
  requestDirectives,
  staleIfErrorAllows,
} from '../src/origin/policy.ts'

describe('Cache-Control parsing', () => {
  it('lowercases names, keeps quoted commas, and lets the first occurrence win', () => {
    expect(parseCacheControl('Public, Max-Age=60, no-cache="set-cookie, x-a", max-age=5')).toEqual({
      public: true,
      'max-age': '60',
      'no-cache': 'set-cookie, x-a',
    })
    expect(parseCacheControl('private="a\\"b", s-maxage = 10 ,,')).toEqual({
      private: 'a"b',
      's-maxage': '10',
    })
    expect(parseCacheControl(undefined)).toEqual({})
    expect(parseCacheControl('')).toEqual({})
  })

  it('reads delta-seconds, malformed as 0', () => {
    const cc = parseCacheControl('max-age=abc, s-maxage=-1, stale-if-error=30, max-stale')
    expect(deltaSeconds(cc, 'max-age')).toBe(0)
    expect(deltaSeconds(cc, 's-maxage')).toBe(0)
    expect(deltaSeconds(cc, 'stale-if-error')).toBe(30)
    expect(deltaSeconds(cc, 'max-stale')).toBe(0)
    expect(deltaSeconds(cc, 'min-fresh')).toBeUndefined()
  })

  it('reads request directives, Pragma only without Cache-Control', () => {
    expect(requestDirectives(undefined, 'no-cache').noCache).toBe(true)
    expect(requestDirectives('max-age=5', 'no-cache').noCache).toBe(false)
    expect(requestDirectives('max-stale', undefined).maxStale).toBe(Number.POSITIVE_INFINITY)
    expect(requestDirectives('max-stale=7, min-fresh=3, only-if-cached, no-store', undefined)).toEqual({
      noCache: false,
      noStore: true,
      onlyIfCached: true,
      maxStale: 7,
      minFresh: 3,
    })
  })
})

describe('headers', () => {
  it('normalises Accept-Encoding to the codings the cache distinguishes', () => {
    expect(normalizeAcceptEncoding(undefined)).toBe('identity')
    expect(normalizeAcceptEncoding('')).toBe('identity')
    expect(normalizeAcceptEncoding('gzip')).toBe('gzip')
    expect(normalizeAcceptEncoding('GZIP, deflate, br;q=0.5')).toBe('br, gzip')
    expect(normalizeAcceptEncoding('gzip;q=0, br')).toBe('br')
    expect(normalizeAcceptEncoding('*')).toBe('br, gzip, zstd')
    expect(normalizeAcceptEncoding('*;q=0, gzip')).toBe('gzip')
    expect(normalizeAcceptEncoding('deflate, identity')).toBe('identity')
    expect(normalizeAcceptEncoding('zstd, gzip')).toBe('gzip, zstd')
  })

  it('normalises other Vary inputs and parses Vary', () => {
    expect(normalizeVaryValue('accept-language', '  en ,  fr ')).toBe('en,fr')
    expect(normalizeVaryValue('accept-language', undefined)).toBe('')
    expect(parseVary('Accept-Encoding, accept-language, Accept-Encoding')).toEqual([
      'accept-encoding',
      'accept-language',
    ])
    expect(parseVary('Origin, *')).toEqual(['*'])
    expect(parseVary(undefined)).toEqual([])
  })

  it('forwards end-to-end request fields only, and appends Via', () => {
    const out = forwardRequestHeaders(
      {
        host: 'edge.example',
        connection: 'keep-alive, X-Hop',
        'x-hop': '1',
        'keep-alive': 'timeout=5',
        'proxy-connection': 'keep-alive',
        te: 'trailers',
        trailer: 'x',
        'transfer-encoding': 'chunked',
        upgrade: 'h2c',
        'proxy-authorization': 'Basic x',
        expect: '100-continue',
        'if-none-match': '"a"',
        range: 'bytes=0-1',
        cookie: 'a=1',
        via: '1.0 a',
        'content-length': '3',
      },
      { viaName: 'n', fill: true, acceptEncoding: 'gzip' },
    )
    expect(out).toEqual({ cookie: 'a=1', via: '1.0 a, 1.1 n', 'accept-encoding': 'gzip' })
    const pass = forwardRequestHeaders(
      { 'if-none-match': '"a"', 'content-length': '3', 'x-forwarded-for': '10.0.0.1' },
      { viaName: 'n', fill: false, hasBody: true, clientIp: '192.0.2.1' },
    )
    expect(pass).toEqual({
      'if-none-match': '"a"',
      'content-length': '3',
      via: '1.1 n',
      'x-forwarded-for': '10.0.0.1, 192.0.2.1',
    })
  })

  it('drops hop-by-hop response fields and keeps Set-Cookie a list', () => {
    expect(
      endToEndResponseHeaders({
        connection: 'close, x-a',
        'x-a': '1',
        'transfer-encoding': 'chunked',
        'proxy-authenticate': 'Basic',
        'set-cookie': 'a=1',
        'x-list': ['1', '2'],
      } as unknown as IncomingHttpHeaders),
    ).toEqual({ 'set-cookie': ['a=1'], 'x-list': '1, 2' })
  })
})

describe('keys', () => {
  it('keys decoded paths, with the query apart', () => {
    expect(baseKey('s', '/caf%C3%A9')).toBe('origin\ns\n/café')
    expect(baseKey('s', '/a?x=%41')).toBe('origin\ns\n/a\n?x=%41')
    expect(baseKey('s', '/%E0%A4%A')).toBe('origin\ns\n/%E0%A4%A')
    expect(baseKey('s', '/a%0Ab')).toBe('origin\ns\n/a%0Ab')
  })

  it('hashes variant values other than Accept-Encoding', () => {
    const key = variantKey('origin\ns\n/a', 'g', ['accept-encoding', 'cookie'], ['gzip', 'session=secret'])
    expect(key.startsWith('origin\ns\n/a\n#g\naccept-encoding=gzip\ncookie~')).toBe(true)
    expect(key).not.toContain('secret')
    expect(variantKey('b', 'g', ['cookie'], ['x'.repeat(10_000)]).length).toBeLessThan(200)
  })

  it('matches purges by exact path (any query and variant) and by string prefix', () => {
    const matches = purgeMatcher('s', ['/a'], ['/img/'])
    expect(matches(baseKey('s', '/a'))).toBe(true)
    expect(matches(baseKey('s', '/a?x=1'))).toBe(true)
    expect(matches(`${baseKey('s', '/a')}\n#g\naccept-encoding=gzip`)).toBe(true)
    expect(matches(baseKey('s', '/ab'))).toBe(false)
    expect(matches(baseKey('s', '/img/x.png'))).toBe(true)
    expect(matches(baseKey('s', '/img'))).toBe(false)
    expect(matches(baseKey('t', '/a'))).toBe(false)
    expect(matches('other')).toBe(false)
  })
})

describe('conditionals', () => {
  const validators = { etag: '"v1"', lastModified: Date.parse('Tue, 01 Jan 2030 00:00:00 GMT') }

  it('compares If-None-Match weakly', () => {
    expect(noneMatchHits('"a", W/"v1"', '"v1"')).toBe(true)
    expect(noneMatchHits('"a,b"', '"v1"')).toBe(false)
    expect(noneMatchHits('*', undefined)).toBe(true)
    expect(noneMatchHits('"v1"', undefined)).toBe(false)
  })

  it('uses If-Modified-Since only without If-None-Match', () => {
    expect(notModified({ ifModifiedSince: 'Tue, 01 Jan 2030 00:00:00 GMT' }, validators)).toBe(true)
    expect(notModified({ ifModifiedSince: 'Mon, 31 Dec 2029 00:00:00 GMT' }, validators)).toBe(false)
    expect(notModified({ ifModifiedSince: 'garbage' }, validators)).toBe(false)
    expect(
      notModified({ ifNoneMatch: '"x"', ifModifiedSince: 'Tue, 01 Jan 2030 00:00:00 GMT' }, validators),
    ).toBe(false)
  })

  it('honours If-Range only on a strong match', () => {
    expect(ifRangeAllows(undefined, validators)).toBe(true)
    expect(ifRangeAllows('"v1"', validators)).toBe(true)
    expect(ifRangeAllows('W/"v1"', validators)).toBe(false)
    expect(ifRangeAllows('"v1"', { etag: 'W/"v1"', lastModified: undefined })).toBe(false)
    expect(ifRangeAllows('Tue, 01 Jan 2030 00:00:00 GMT', validators)).toBe(true)
    expect(ifRangeAllows('Tue, 01 Jan 2030 00:00:01 GMT', validators)).toBe(false)
  })
})

describe('policy', () => {
  let clock = Date.parse('Tue, 01 Jan 2030 00:00:00 GMT')
  const Policy = createPolicyClass({ now: () => clock, heuristicFraction: 0.1, heuristicMaxSeconds: 86400 })
  const date = new Date(clock).toUTCString()
  const make = (headers: PolicyHeaders, status = 200, req: PolicyHeaders = {}) =>
    new Policy(
      { url: '/', method: 'GET', headers: { host: 'o', ...req } },
      { status, headers: { date, ...headers } },
    )
  const daysAgo = (n: number) => new Date(clock - n * 86400_000).toUTCString()

  it('computes freshness: s-maxage, max-age, Expires, heuristics', () => {
    expect(make({ 'cache-control': 'max-age=100, s-maxage=10' }).maxAge()).toBe(10)
    expect(make({ 'cache-control': 'MAX-AGE=100' }).maxAge()).toBe(100)
    expect(make({ expires: new Date(clock + 30_000).toUTCString() }).maxAge()).toBe(30)
    expect(make({ expires: '0' }).maxAge()).toBe(0)
    expect(make({ 'last-modified': daysAgo(5) }).maxAge()).toBe(43200)
    expect(make({ 'last-modified': daysAgo(100) }).maxAge()).toBe(86400)
    expect(make({ 'last-modified': daysAgo(5) }, 302).maxAge()).toBe(0)
    expect(make({ 'last-modified': daysAgo(5), 'cache-control': 'public' }, 302).maxAge()).toBe(43200)
    expect(make({ 'cache-control': 'immutable' }).maxAge()).toBe(0)
    expect(make({ 'cache-control': 'max-age=60, proxy-revalidate' }).maxAge()).toBe(60)
    expect(make({ 'cache-control': 'max-age=60, no-cache' }).maxAge()).toBe(0)
    expect(make({ pragma: 'no-cache', expires: new Date(clock + 30_000).toUTCString() }).maxAge()).toBe(0)
  })

  it('decides storability like a shared cache', () => {
    expect(make({ 'cache-control': 'private, max-age=60' }).storable()).toBe(false)
    expect(make({ 'cache-control': 'no-store' }).storable()).toBe(false)
    expect(make({ 'cache-control': 'max-age=60' }, 200, { authorization: 'x' }).storable()).toBe(false)
    expect(make({ 'cache-control': 's-maxage=60' }, 200, { authorization: 'x' }).storable()).toBe(true)
    expect(make({ 'cache-control': 'max-age=60' }, 206).storable()).toBe(false)
    expect(make({ 'cache-control': 'max-age=60' }, 500).storable()).toBe(false)
    expect(make({ 'cache-control': 'max-age=60' }, 200, { 'cache-control': 'no-store' }).storable()).toBe(
      false,
    )
  })

  it('survives a round trip through the stored form', () => {
    const policy = make({ 'cache-control': 'Max-Age=60, stale-while-revalidate=30', age: '10' })
    const back = Policy.fromObject(JSON.parse(JSON.stringify(policy.toObject())))
    expect(back.maxAge()).toBe(60)
    expect(back.age()).toBe(10)
    const prepared = preparePolicy(back, 'n')
    expect(prepared.staleWhileRevalidate).toBe(30)
    expect(prepared.freshUntil).toBe(clock + 50_000)
    expect(prepared.serveHeaders.via).toBe('1.1 n')
    expect(prepared.serveHeaders.age).toBeUndefined()
  })

  it('evaluates requests against stored responses', () => {
    const start = clock
    const at = (seconds: number) => start + seconds * 1000
    const p = preparePolicy(
      make({ 'cache-control': 'max-age=60, stale-while-revalidate=30, stale-if-error=100' }),
      'n',
    )
    const none = requestDirectives(undefined, undefined)
    expect(evaluate(p, none, at(10))).toBe('fresh')
    expect(evaluate(p, requestDirectives('no-cache', undefined), at(10))).toBe('revalidate')
    expect(evaluate(p, requestDirectives('max-age=5', undefined), at(10))).toBe('revalidate')
    expect(evaluate(p, requestDirectives('min-fresh=55', undefined), at(10))).toBe('revalidate')
    expect(evaluate(p, none, at(70))).toBe('stale-while-revalidate')
    expect(evaluate(p, none, at(100))).toBe('revalidate')
    expect(evaluate(p, requestDirectives('max-stale=50', undefined), at(100))).toBe('stale')
    expect(staleIfErrorAllows(p, none, at(150))).toBe(true)
    expect(staleIfErrorAllows(p, none, at(170))).toBe(false)
    expect(staleIfErrorAllows(p, requestDirectives('stale-if-error=200', undefined), at(170))).toBe(true)

    const shared = preparePolicy(make({ 'cache-control': 's-maxage=60, stale-while-revalidate=30' }), 'n')
    expect(evaluate(shared, requestDirectives('max-stale', undefined), at(70))).toBe('stale-while-revalidate')
    expect(evaluate(shared, requestDirectives('max-stale', undefined), at(100))).toBe('revalidate')

    const strict = preparePolicy(
      make({ 'cache-control': 'max-age=60, must-revalidate, stale-if-error=100' }),
      'n',
    )
    expect(evaluate(strict, none, at(10))).toBe('fresh')
    expect(evaluate(strict, requestDirectives('max-stale', undefined), at(70))).toBe('revalidate')
    expect(staleIfErrorAllows(strict, none, at(70))).toBe(false)
    clock = start
  })
})

describe('fill registry', () => {
  it('tells followers the outcome, or that the leader took too long', async () => {
    const fills = createFillRegistry()
    const a = fills.start('a')
    expect(fills.get('a')).toBe(a)
    const following = fills.follow(a, 1000)
    a.storing(true)
    a.finish({ kind: 'stored' })
    expect(await following).toEqual({ kind: 'stored' })
    expect(fills.has('a')).toBe(false)

    const b = fills.start('b')
    const error = new Error('down')
    const failing = fills.follow(b, 1000)
    b.finish({ kind: 'failed', error })
    expect(await failing).toEqual({ kind: 'failed', error })

    const c = fills.start('c')
    expect(await fills.follow(c, 20)).toEqual({ kind: 'timeout' })
    c.storing(false)
    expect(await fills.follow(c, 20)).toEqual({ kind: 'not-stored' })
    c.finish({ kind: 'not-stored' })
  })
})
