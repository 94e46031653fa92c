/**
 * Store keys of origin responses.
 *
 * ```
 * origin\n<site>\n<decoded path>                 a response, or the vary marker of the path
 * origin\n<site>\n<decoded path>\n?<raw query>   the same for a path with a query
 * <base>\n#<gen>\n<field>…                       one variant of a response that varies
 * ```
 *
 * Paths are keyed percent-decoded, as purge requests name them (`/café/a b.txt`).
 * A decoded path never holds a control character (the router refuses them), so `\n`
 * separates the parts unambiguously; if one ever did, the raw path is used instead.
 */
import { createHash } from 'node:crypto'

const ROOT = 'origin\n'
/** Variant keys longer than this carry a hash of the selecting values instead of the values. */
const MAX_LITERAL_VARIANT = 512

function hasControl(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c < 0x20 || c === 0x7f) return true
  }
  return false
}

/** The prefix of every key of a site. */
export function siteKeyPrefix(site: string): string {
  return `${ROOT}${site}\n`
}

/** The key of a site path without its query: what a purge of that path matches. */
export function pathKey(site: string, decodedPath: string): string {
  return `${ROOT}${site}\n${decodedPath}`
}

/**
 * The base key of a request target (`path` as appended to the origin URL: encoded
 * path, then `?query`).
 *
 * @example
 * baseKey('blog', '/caf%C3%A9?x=1') // 'origin\nblog\n/café\n?x=1'
 */
export function baseKey(site: string, target: string): string {
  const q = target.indexOf('?')
  const rawPath = q < 0 ? target : target.slice(0, q)
  let path = rawPath
  // Without a '%' there is nothing to decode (the common case, on every fast-path hit).
  if (rawPath.includes('%')) {
    try {
      path = decodeURIComponent(rawPath)
    } catch {
      // keep the raw form
    }
    if (hasControl(path)) path = rawPath
  }
  const key = pathKey(site, path)
  return q < 0 ? key : `${key}\n?${target.slice(q + 1)}`
}

/**
 * The key of one variant, from the marker's generation and the normalised values of
 * the fields named by `Vary`. `Accept-Encoding` (already reduced to a few codings) is
 * kept readable; every other value is hashed, so cookies or tokens a response varies
 * on never appear in keys (which the disk tier writes down).
 */
export function variantKey(
  base: string,
  gen: string,
  fields: readonly string[],
  values: readonly string[],
): string {
  let selector = ''
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i] as string
    const value = values[i] ?? ''
    selector +=
      field === 'accept-encoding'
        ? `\n${field}=${value}`
        : `\n${field}~${createHash('sha256').update(value).digest('base64url').slice(0, 22)}`
  }
  if (selector.length > MAX_LITERAL_VARIANT) {
    selector = `\nsha256=${createHash('sha256').update(selector).digest('base64url')}`
  }
  return `${base}\n#${gen}${selector}`
}

/** True when `key` is a variant key under `base`. */
export function isVariantOf(key: string, base: string): boolean {
  return key.startsWith(`${base}\n#`)
}

/**
 * A predicate over keys for a purge: every key of the exact `paths` (with any query
 * and every variant) and every key under the `prefixes` (string prefixes of the
 * decoded path, so `/img` also matches `/imgx`, as the protocol defines).
 */
export function purgeMatcher(
  site: string,
  paths: readonly string[],
  prefixes: readonly string[],
): (key: string) => boolean {
  const root = siteKeyPrefix(site)
  const exact = new Set(paths.map((path) => pathKey(site, path)))
  const under = prefixes.map((prefix) => pathKey(site, prefix))
  return (key) => {
    if (!key.startsWith(root)) return false
    for (const prefix of under) if (key.startsWith(prefix)) return true
    if (exact.size === 0) return false
    const end = key.indexOf('\n', root.length)
    return exact.has(end < 0 ? key : key.slice(0, end))
  }
}
