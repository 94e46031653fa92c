/**
 * Field rules shared by the record schemas. Every rule refuses non-canonical
 * input instead of repairing it: the value that is validated is the value that
 * was signed, so two encodings of "the same" record can never both verify.
 */
import { type Address, getAddress, type Hex } from 'viem'
import { z } from 'zod'
import { RECORD_LIMITS } from './limits.ts'

const ADDRESS_RE = /^0x[0-9a-fA-F]{40}$/
const ZERO_ADDRESS = '0x0000000000000000000000000000000000000000'
const BYTES32_RE = /^0x[0-9a-f]{64}$/
const SITE_RE = /^[a-z0-9][a-z0-9-]{0,62}$/
const CID_RE = /^s[a-z2-7]+$/
// Visible ASCII with inner spaces only: header-like values with no padding to normalize.
const HEADER_VALUE_RE = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/
const PEER_ID_RE = /^(?:[1-9A-HJ-NP-Za-km-z]+|b[a-z2-7]+)$/
const MULTIADDR_RE = /^\/[\x21-\x7e]*$/
const REGION_RE = /^[a-z0-9][a-z0-9-]{0,31}$/
// A lone surrogate would be hashed (UTF-8) as U+FFFD, so two different strings would sign alike.
const LONE_SURROGATE_RE = /\p{Cs}/u
const CONTROL_RE = /\p{Cc}/u

/** A checksummed (EIP-55), non-zero Ethereum address. */
export const addressField = z
  .string()
  .refine(
    (value): value is Address =>
      ADDRESS_RE.test(value) && value !== ZERO_ADDRESS && getAddress(value) === value,
    'must be a non-zero EIP-55 checksummed address',
  )

/** 32 bytes as lowercase 0x-hex. */
export const bytes32Field = z
  .string()
  .refine((value): value is Hex => BYTES32_RE.test(value), 'must be 32 bytes of lowercase 0x-hex')

/** A JS number that is a non-negative safe integer (it is signed as a uint64). */
export const uintField = z
  .int()
  .nonnegative()
  .refine((value) => !Object.is(value, -0), 'must not be -0')

/** A unix time in whole seconds. */
export const unixSecondsField = uintField

/** A site name: one lowercase DNS-label-like word. */
export const siteField = z
  .string()
  .max(RECORD_LIMITS.siteName)
  .regex(SITE_RE, 'must be a lowercase site name matching [a-z0-9][a-z0-9-]{0,62}')

/** Content id text; full parsing belongs to the content module, this checks alphabet and length. */
export const cidField = z
  .string()
  .max(RECORD_LIMITS.cid)
  .regex(CID_RE, 'must be a content id: "s" then lowercase base32 (a-z, 2-7)')

/** A header-like ASCII value: visible characters and inner spaces, no padding. */
export function headerValueField(max: number, allowEmpty: boolean) {
  const base = z.string().max(max)
  const message = 'must be visible ASCII with inner spaces only'
  return allowEmpty
    ? base.refine((value) => value === '' || HEADER_VALUE_RE.test(value), message)
    : base.regex(HEADER_VALUE_RE, message)
}

/** A libp2p peer id in text form (base58btc or base32 multibase); the mesh layer parses it fully. */
export const peerIdField = z
  .string()
  .max(RECORD_LIMITS.peerId)
  .regex(PEER_ID_RE, 'must be a peer id in base58btc or "b"-prefixed base32')

/** A multiaddr in text form; the mesh layer parses it fully. */
export const multiaddrField = z
  .string()
  .max(RECORD_LIMITS.multiaddr)
  .regex(MULTIADDR_RE, 'must be a multiaddr: "/" then visible ASCII')

/** A region name such as `eu-west` or `us-east-1`. */
export const regionField = z
  .string()
  .max(RECORD_LIMITS.region)
  .regex(REGION_RE, 'must match [a-z0-9][a-z0-9-]{0,31}')

/**
 * Why `url` is not a canonical http(s) base URL, or `undefined` when it is.
 * Canonical means `new URL(url).href === url`, so the signed text is exactly
 * what every URL parser (WHATWG) turns it into.
 */
function urlProblem(url: string): string | undefined {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return 'must be an absolute http(s) URL'
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return 'must be an http(s) URL'
  if (parsed.username !== '' || parsed.password !== '') return 'must not carry credentials'
  if (parsed.search !== '' || parsed.hash !== '' || url.includes('?') || url.includes('#')) {
    return 'must not carry a query or fragment'
  }
  if (parsed.href !== url) return `must be in canonical form (${parsed.href})`
  return undefined
}

/** A canonical http(s) URL without credentials, query or fragment; `''` too when `allowEmpty`. */
export function urlField(allowEmpty: boolean) {
  return z
    .string()
    .max(RECORD_LIMITS.url)
    .superRefine((value, ctx) => {
      if (allowEmpty && value === '') return
      const problem = urlProblem(value)
      if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem })
    })
}

/** Length of `text` in UTF-8 bytes, without allocating; `text` has no lone surrogates. */
export function utf8Length(text: string): number {
  let bytes = 0
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i)
    if (unit < 0x80) bytes += 1
    else if (unit < 0x800) bytes += 2
    else if (unit >= 0xd800 && unit <= 0xdbff) {
      bytes += 4
      i++
    } else bytes += 3
  }
  return bytes
}

/**
 * Why `path` is not a canonical site path, or `undefined` when it is. With
 * `prefix`, a trailing `/` (and the bare `/`) is allowed so a prefix can name
 * a folder. Edges use it on the percent-decoded request path before a lookup.
 *
 * @example
 * pathProblem('/a/../b') // 'must not contain "." or ".." segments'
 * pathProblem('/img/', true) // undefined
 */
export function pathProblem(path: string, prefix = false): string | undefined {
  if (!path.startsWith('/')) return 'must start with "/"'
  if (LONE_SURROGATE_RE.test(path)) return 'must be well-formed Unicode (no lone surrogates)'
  if (utf8Length(path) > RECORD_LIMITS.pathBytes)
    return `must be at most ${RECORD_LIMITS.pathBytes} UTF-8 bytes`
  if (CONTROL_RE.test(path)) return 'must not contain control characters'
  if (path.includes('\\')) return 'must not contain a backslash'
  if (path.normalize('NFC') !== path) return 'must be in Unicode NFC form'
  const segments = path.split('/')
  for (let i = 1; i < segments.length; i++) {
    const segment = segments[i]
    if (segment === '.' || segment === '..') return 'must not contain "." or ".." segments'
    if (segment === '' && !(prefix && i === segments.length - 1)) {
      return i === segments.length - 1 ? 'must not end with "/"' : 'must not contain "//"'
    }
  }
  return undefined
}

/** A canonical, percent-decoded site path (see `pathProblem`). */
export function pathField(prefix = false) {
  return z.string().superRefine((value, ctx) => {
    const problem = pathProblem(value, prefix)
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem })
  })
}

/**
 * Compares two strings by Unicode code point, which is also UTF-8 byte order.
 * JS's default `<` compares UTF-16 units and disagrees for characters above
 * U+FFFF, so sorting with it would not match other implementations.
 *
 * @example
 * entries.sort((a, b) => comparePaths(a.path, b.path))
 */
export function comparePaths(a: string, b: string): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i)
    let y = b.charCodeAt(i)
    if (x === y) continue
    // Surrogates (astral code points) sort above U+E000–U+FFFF in code point order.
    if (x >= 0xd800 && y >= 0xd800) {
      x += x <= 0xdfff ? 0x2000 : -0x800
      y += y <= 0xdfff ? 0x2000 : -0x800
    }
    return x - y
  }
  return a.length - b.length
}

/** Adds an issue for every item of `items` whose `key` is not strictly after the previous one. */
export function requireSortedUnique<T>(
  items: readonly T[],
  ctx: z.RefinementCtx,
  key: (item: T) => string,
  keyPath: readonly PropertyKey[] = [],
): void {
  for (let i = 1; i < items.length; i++) {
    if (comparePaths(key(items[i - 1] as T), key(items[i] as T)) >= 0) {
      ctx.addIssue({
        code: 'custom',
        message: 'must be sorted by code point and unique',
        path: [i, ...keyPath],
      })
      return
    }
  }
}

/** Adds an issue for the first item of `items` that repeats an earlier one. */
export function requireUnique(items: readonly string[], ctx: z.RefinementCtx): void {
  const seen = new Set<string>()
  for (const [i, item] of items.entries()) {
    if (seen.has(item)) {
      ctx.addIssue({ code: 'custom', message: 'must not repeat an earlier item', path: [i] })
      return
    }
    seen.add(item)
  }
}
