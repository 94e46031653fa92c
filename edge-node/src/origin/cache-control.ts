/**
 * `Cache-Control` parsing (RFC 9111 §5.2) for both directions.
 *
 * Directive names are case-insensitive and lowercased here; values may be tokens or
 * quoted strings (which may contain commas: `no-cache="set-cookie, x-id"`). When a
 * directive appears twice the first occurrence wins, which RFC 9111 §4.2.1 allows.
 */

/** Directive name → value (`true` for a directive without a value). */
export type Directives = Record<string, string | true>

const EMPTY: Directives = Object.freeze({}) as Directives

/**
 * Parses one `Cache-Control` field value (several field lines joined by `, `).
 *
 * @example
 * parseCacheControl('Public, max-age=60, no-cache="set-cookie, x-a"')
 * // { public: true, 'max-age': '60', 'no-cache': 'set-cookie, x-a' }
 */
export function parseCacheControl(value: string | undefined): Directives {
  if (value === undefined || value === '') return EMPTY
  const out: Directives = {}
  const n = value.length
  let i = 0
  while (i < n) {
    // name
    while (i < n && (value[i] === ' ' || value[i] === '\t' || value[i] === ',')) i++
    const nameStart = i
    while (i < n && value[i] !== '=' && value[i] !== ',') i++
    const name = value.slice(nameStart, i).trim().toLowerCase()
    let directiveValue: string | true = true
    if (i < n && value[i] === '=') {
      i++
      while (i < n && (value[i] === ' ' || value[i] === '\t')) i++
      if (value[i] === '"') {
        i++
        let text = ''
        while (i < n && value[i] !== '"') {
          if (value[i] === '\\' && i + 1 < n) i++
          text += value[i]
          i++
        }
        i++ // closing quote
        directiveValue = text
        while (i < n && value[i] !== ',') i++
      } else {
        const start = i
        while (i < n && value[i] !== ',') i++
        directiveValue = value.slice(start, i).trim()
      }
    }
    if (name !== '' && !Object.hasOwn(out, name)) out[name] = directiveValue
  }
  return out
}

/**
 * A delta-seconds value (`max-age=60`): a non-negative integer, or `undefined` when the
 * directive is absent. A malformed value counts as 0 (RFC 9111 §1.2.2: treat invalid
 * freshness information as stale).
 */
export function deltaSeconds(directives: Directives, name: string): number | undefined {
  const value = directives[name]
  if (value === undefined) return undefined
  if (value === true) return 0
  if (!/^\d+$/.test(value)) return 0
  const n = Number(value)
  return Number.isSafeInteger(n) ? n : 2 ** 31
}

/** True when the directive is present, with or without a value. */
export function has(directives: Directives, name: string): boolean {
  return directives[name] !== undefined
}
