/**
 * Client conditional requests answered by the cache (RFC 9110 §13): `If-None-Match`
 * (weak comparison) before `If-Modified-Since`, and `If-Range` (strong comparison).
 * `If-Match` and `If-Unmodified-Since` are left to the origin (the request bypasses
 * the cache).
 */

/** Opaque tag without its weakness prefix. */
function opaque(tag: string): string {
  const t = tag.trim()
  return t.startsWith('W/') ? t.slice(2) : t
}

/** True when an `If-None-Match` list matches `etag` by weak comparison (`*` matches any). */
export function noneMatchHits(ifNoneMatch: string, etag: string | undefined): boolean {
  const list = ifNoneMatch.trim()
  if (list === '*') return true
  if (etag === undefined) return false
  const want = opaque(etag)
  for (const candidate of splitTags(list)) if (opaque(candidate) === want) return true
  return false
}

/** Splits a list of entity tags, respecting commas inside quoted tags. */
function splitTags(list: string): string[] {
  const out: string[] = []
  let current = ''
  let quoted = false
  for (const ch of list) {
    if (ch === '"') quoted = !quoted
    if (ch === ',' && !quoted) {
      if (current.trim() !== '') out.push(current.trim())
      current = ''
    } else current += ch
  }
  if (current.trim() !== '') out.push(current.trim())
  return out
}

export interface Validators {
  etag: string | undefined
  /** `Last-Modified` in ms since the epoch. */
  lastModified: number | undefined
}

export interface ClientConditionals {
  ifNoneMatch?: string | undefined
  ifModifiedSince?: string | undefined
}

/**
 * True when a GET or HEAD may be answered `304 Not Modified` for a representation
 * with these validators. `If-Modified-Since` counts only without `If-None-Match`.
 */
export function notModified(conditionals: ClientConditionals, validators: Validators): boolean {
  if (conditionals.ifNoneMatch !== undefined) return noneMatchHits(conditionals.ifNoneMatch, validators.etag)
  if (conditionals.ifModifiedSince !== undefined && validators.lastModified !== undefined) {
    const since = Date.parse(conditionals.ifModifiedSince)
    return Number.isFinite(since) && validators.lastModified <= since
  }
  return false
}

/**
 * True when a `Range` may be honoured under `If-Range`: a strong entity tag equal to
 * the representation's, or a date equal to its `Last-Modified`.
 */
export function ifRangeAllows(ifRange: string | undefined, validators: Validators): boolean {
  if (ifRange === undefined) return true
  const value = ifRange.trim()
  if (value.startsWith('"')) {
    return validators.etag !== undefined && !validators.etag.startsWith('W/') && validators.etag === value
  }
  if (value.startsWith('W/')) return false
  const at = Date.parse(value)
  return Number.isFinite(at) && validators.lastModified !== undefined && at === validators.lastModified
}
