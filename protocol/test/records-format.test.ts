import { describe, expect, it } from 'vitest'
import { SAMPLE_MESSAGES, TEST_ACCOUNTS } from '../scripts/records-vectors.ts'
import {
  comparePaths,
  type ManifestEntry,
  pathProblem,
  RECORD_LIMITS,
  validateBandwidthReceipt,
  validateNodeRecord,
  validatePurgeRequest,
  validateSiteManifest,
  validateTicket,
} from '../src/index.ts'

const manifest = SAMPLE_MESSAGES.SiteManifest
const entry = manifest.entries[1] as ManifestEntry
const nodeRecord = SAMPLE_MESSAGES.NodeRecord
const ticket = SAMPLE_MESSAGES.Ticket
const receipt = SAMPLE_MESSAGES.BandwidthReceipt
const purge = SAMPLE_MESSAGES.PurgeRequest

/** Asserts that `run` throws InvalidFormatError whose message contains every one of `parts` (field, reason). */
function refused(run: () => unknown, ...parts: string[]): void {
  let thrown: unknown
  try {
    run()
  } catch (err) {
    thrown = err
  }
  expect(thrown).toMatchObject({ code: 'SHOAL_ERR_INVALID_FORMAT' })
  for (const part of parts) expect((thrown as Error).message).toContain(part)
}

const withPath = (path: string) => ({ ...manifest, entries: [{ ...entry, path }] })

describe('paths', () => {
  it.each([
    ['/a/../b', '".."'],
    ['/./x', '"."'],
    ['/x/.', '"."'],
    ['/..', '".."'],
    ['//x', '"//"'],
    ['/a//b', '"//"'],
    ['/a/', 'end with'],
    ['/', 'end with'],
    ['a/b', 'start with'],
    ['', 'start with'],
    ['/a\\b', 'backslash'],
    ['/\\..\\x', 'backslash'],
    ['/a\u0000b', 'control'],
    ['/a\nb', 'control'],
    ['/a\u007f', 'control'],
    ['/a\u0085', 'control'],
    ['/\ud800x', 'surrogate'],
    ['/e\u0301', 'NFC'],
    [`/${'a'.repeat(1024)}`, '1024'],
    [`/${'é'.repeat(512)}`, '1024'],
  ])('refuses %j in a manifest entry', (path, reason) => {
    expect(pathProblem(path)).toContain(reason)
    refused(() => validateSiteManifest(withPath(path)), `entries[0].path ${pathProblem(path)}`)
  })

  it.each([
    '/index.html',
    '/a b/c%2Fd.txt',
    '/.well-known/security.txt',
    '/a..b/...',
    '/caf\u00e9',
    '/\u{1f600}',
    `/${'a'.repeat(1023)}`,
    `/${'é'.repeat(511)}a`,
  ])('accepts %j', (path) => {
    expect(pathProblem(path)).toBeUndefined()
    expect(validateSiteManifest(withPath(path)).entries[0]?.path).toBe(path)
  })

  it('lets prefixes end with "/" and be "/", but not contain "//" or ".."', () => {
    expect(validatePurgeRequest({ ...purge, prefixes: ['/'] }).prefixes).toEqual(['/'])
    expect(validatePurgeRequest({ ...purge, prefixes: ['/img/', '/js'] }).prefixes).toEqual(['/img/', '/js'])
    refused(() => validatePurgeRequest({ ...purge, prefixes: ['/img//'] }), 'prefixes[0]')
    refused(() => validatePurgeRequest({ ...purge, prefixes: ['/img/../'] }), 'prefixes[0]')
    refused(() => validatePurgeRequest({ ...purge, paths: ['/img/'] }), 'paths[0]')
  })

  it('compares by code point, which differs from UTF-16 order above U+FFFF', () => {
    expect(comparePaths('/\uff5a', '/\u{1f600}')).toBeLessThan(0)
    expect('/\uff5a' < '/\u{1f600}').toBe(false)
    expect(comparePaths('/a', '/b')).toBeLessThan(0)
    expect(comparePaths('/a', '/a')).toBe(0)
    expect(comparePaths('/a', '/a/b')).toBeLessThan(0)
    expect(comparePaths('/\u{1f601}', '/\u{1f600}')).toBeGreaterThan(0)
    expect(comparePaths('/\ue000', '/\ud7ff')).toBeGreaterThan(0)
  })
})

describe('site manifests', () => {
  it('refuses unsorted and duplicate entries', () => {
    const [a, b] = manifest.entries as [ManifestEntry, ManifestEntry]
    refused(() => validateSiteManifest({ ...manifest, entries: [b, a] }), 'entries[1].path must be sorted')
    refused(() => validateSiteManifest({ ...manifest, entries: [a, a] }), 'entries[1].path')
    refused(
      () => validateSiteManifest({ ...manifest, entries: [b, { ...b, cid: a.cid }] }),
      'entries[1].path must be sorted',
    )
  })

  it('refuses entries sorted in UTF-16 order instead of code point order', () => {
    const emoji = { ...entry, path: '/\u{1f600}' }
    const fullwidth = { ...entry, path: '/\uff5a' }
    refused(() => validateSiteManifest({ ...manifest, entries: [emoji, fullwidth] }), 'entries[1].path')
    expect(validateSiteManifest({ ...manifest, entries: [fullwidth, emoji] }).entries).toHaveLength(2)
  })

  it('accepts an empty manifest and refuses more than the entry limit', () => {
    expect(validateSiteManifest({ ...manifest, entries: [] }).entries).toEqual([])
    const many = Array.from({ length: RECORD_LIMITS.manifestEntries + 1 }, (_, i) => ({
      ...entry,
      path: `/${i.toString(36).padStart(4, '0')}`,
    }))
    refused(
      () => validateSiteManifest({ ...manifest, entries: many }),
      'entries must have at most 100000 items',
    )
  })

  it.each([
    ['Blog', 'site'],
    ['-blog', 'site'],
    ['my_blog', 'site'],
    ['', 'site'],
    ['a'.repeat(64), 'site'],
  ])('refuses site name %j', (site, field) => {
    refused(() => validateSiteManifest({ ...manifest, site }), field)
    refused(() => validatePurgeRequest({ ...purge, site }), field)
  })

  it('accepts the longest site name', () => {
    expect(validateSiteManifest({ ...manifest, site: `a${'-'.repeat(62)}` }).site).toHaveLength(63)
  })

  it.each([
    ['ftp://origin.example/', 'http(s)'],
    ['https://origin.example', 'canonical form (https://origin.example/)'],
    ['HTTPS://Origin.Example/', 'canonical form'],
    ['https://origin.example:443/', 'canonical form'],
    ['https://user:pw@origin.example/', 'credentials'],
    ['https://origin.example/?v=1', 'query'],
    ['https://origin.example/#x', 'fragment'],
    ['https://origin.example/?', 'query'],
    ['/relative', 'absolute'],
    [`https://origin.example/${'a'.repeat(2048)}`, 'at most 2048'],
  ])('refuses origin %j', (origin, reason) => {
    refused(() => validateSiteManifest({ ...manifest, origin }), 'origin', reason)
  })

  it('accepts no origin and canonical http(s) origins', () => {
    for (const origin of ['', 'http://127.0.0.1:8080/', 'https://origin.example/assets/', 'https://[::1]/']) {
      expect(validateSiteManifest({ ...manifest, origin }).origin).toBe(origin)
    }
  })

  it.each([
    ['cid', 'bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi'],
    ['cid', 'sAEJA'],
    ['cid', 's'],
    ['cid', ''],
    ['cid', `s${'a'.repeat(128)}`],
    ['cid', 'saeja1'],
    ['contentType', ''],
    ['contentType', ' text/html'],
    ['contentType', 'text/html '],
    ['contentType', 'text/h\u00e9'],
    ['contentType', 'text/html\r\nX-Injected: 1'],
    ['contentType', `text/${'x'.repeat(251)}`],
    ['cacheControl', ' '],
    ['cacheControl', 'max-age=1\n'],
    ['cacheControl', 'x'.repeat(256)],
  ])('refuses entry %s %j', (field, value) => {
    refused(
      () => validateSiteManifest({ ...manifest, entries: [{ ...entry, [field]: value }] }),
      `entries[0].${field}`,
    )
  })

  it.each([
    ['sequence', -1, 'must not be negative'],
    ['sequence', 1.5, 'must be an integer'],
    ['sequence', 2 ** 53, 'safe integer'],
    ['sequence', -0, '-0'],
    ['timestamp', Number.NaN, 'timestamp'],
    ['timestamp', Number.POSITIVE_INFINITY, 'timestamp'],
    ['timestamp', '1', 'must be of type number'],
    ['entries', {}, 'must be of type array'],
    ['publisher', '0x0000000000000000000000000000000000000000', 'non-zero'],
    ['publisher', TEST_ACCOUNTS.publisher.address.toLowerCase(), 'checksum'],
    ['publisher', TEST_ACCOUNTS.publisher.address.slice(0, 41), 'checksum'],
  ])('refuses %s = %j', (field, value, reason) => {
    refused(() => validateSiteManifest({ ...manifest, [field]: value }), field, reason)
  })

  it('refuses a bigint where a number belongs', () => {
    refused(() => validateSiteManifest({ ...manifest, timestamp: 10n }), 'timestamp must be of type number')
  })

  it('accepts the largest safe integer', () => {
    expect(validateSiteManifest({ ...manifest, sequence: Number.MAX_SAFE_INTEGER }).sequence).toBe(
      2 ** 53 - 1,
    )
  })
})

describe('node records', () => {
  it.each([
    ['peerId', ''],
    ['peerId', '12D3KooW0OIl'],
    ['peerId', 'x'.repeat(129)],
    ['httpUrl', ''],
    ['httpUrl', 'https://node.example:8443'],
    ['region', ''],
    ['region', 'EU'],
    ['region', 'r'.repeat(33)],
    ['capacity', -1],
    ['payout', '0x0000000000000000000000000000000000000000'],
  ])('refuses %s = %j', (field, value) => {
    refused(() => validateNodeRecord({ ...nodeRecord, [field]: value }), field)
  })

  it('refuses bad, duplicate, oversized or too many multiaddrs and keeps their order', () => {
    refused(() => validateNodeRecord({ ...nodeRecord, multiaddrs: ['ip4/1.2.3.4'] }), 'multiaddrs[0]')
    refused(() => validateNodeRecord({ ...nodeRecord, multiaddrs: ['/ip4/1.2.3.4 /tcp/1'] }), 'multiaddrs[0]')
    refused(() => validateNodeRecord({ ...nodeRecord, multiaddrs: ['/a', '/b', '/a'] }), 'multiaddrs[2]')
    refused(() => validateNodeRecord({ ...nodeRecord, multiaddrs: [`/${'a'.repeat(256)}`] }), 'multiaddrs[0]')
    const many = Array.from({ length: 17 }, (_, i) => `/ip4/10.0.0.${i}/tcp/4001`)
    refused(() => validateNodeRecord({ ...nodeRecord, multiaddrs: many }), 'multiaddrs must have at most 16')
    expect(validateNodeRecord({ ...nodeRecord, multiaddrs: ['/z', '/a'] }).multiaddrs).toEqual(['/z', '/a'])
    expect(validateNodeRecord({ ...nodeRecord, peerId: `b${'a'.repeat(58)}l` }).peerId).toHaveLength(60)
  })
})

describe('tickets and receipts', () => {
  it.each([
    ['nonce', `0x${'AB'.repeat(32)}`],
    ['nonce', `0x${'ab'.repeat(31)}`],
    ['nonce', 'ab'.repeat(32)],
    ['budget', -1],
    ['expiry', 1.25],
    ['client', TEST_ACCOUNTS.client.address.toUpperCase()],
  ])('refuses ticket %s = %j', (field, value) => {
    refused(() => validateTicket({ ...ticket, [field]: value }), field)
  })

  it.each([
    ['kind', 2, 'kind must be 0 (content) or 1 (relay)'],
    ['kind', '0', 'kind'],
    ['session', `0x${'2'.repeat(63)}`, 'session'],
    ['ticket', '0x', 'ticket'],
    ['bytes', 2 ** 53, 'bytes must be a safe integer'],
    ['epoch', -1, 'epoch must not be negative'],
  ])('refuses receipt %s = %j', (field, value, reason) => {
    refused(() => validateBandwidthReceipt({ ...receipt, [field]: value }), reason)
  })

  it('accepts a relay receipt', () => {
    expect(validateBandwidthReceipt({ ...receipt, kind: 1 }).kind).toBe(1)
  })
})

describe('purge requests', () => {
  it('needs at least one path or prefix', () => {
    refused(() => validatePurgeRequest({ ...purge, paths: [], prefixes: [] }), 'at least one path or prefix')
    expect(validatePurgeRequest({ ...purge, prefixes: [] }).paths).toEqual(['/index.html'])
    expect(validatePurgeRequest({ ...purge, paths: [] }).prefixes).toEqual(['/img/'])
  })

  it('refuses unsorted, duplicate and too many paths', () => {
    refused(() => validatePurgeRequest({ ...purge, paths: ['/b', '/a'] }), 'paths[1] must be sorted')
    refused(() => validatePurgeRequest({ ...purge, prefixes: ['/a/', '/a/'] }), 'prefixes[1]')
    const many = Array.from({ length: 1001 }, (_, i) => `/${String(i).padStart(4, '0')}`)
    refused(() => validatePurgeRequest({ ...purge, paths: many }), 'paths must have at most 1000')
  })
})
