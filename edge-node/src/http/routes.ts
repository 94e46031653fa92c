/**
 * Request-target parsing for the edge node. The raw target is split into a route
 * before anything else looks at it; paths are percent-decoded exactly once and then
 * checked with the same rules site manifests use, so `..`, `%2e%2e`, `%2f`, NUL and
 * backslashes can never reach a lookup or an origin URL.
 */

import type { Cid } from '@shoal/protocol'
import { InvalidArgumentError, parseCid, pathProblem } from '@shoal/protocol'

export type Route =
  | { kind: 'content'; cid: Cid }
  | { kind: 'leaves'; cid: Cid }
  | { kind: 'site'; site: string; path: string; query: string }
  | { kind: 'manifest'; site: string }
  | { kind: 'health' }
  | { kind: 'metrics' }
  | { kind: 'purge' }
  | { kind: 'dashboard'; path: string }
  | { kind: 'sessions' }
  | { kind: 'receipts' }
  | { kind: 'default-origin'; path: string; query: string }
  | { kind: 'not-found' }

const SITE_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/

/**
 * Decodes a raw URL path (percent-encoding, once) and checks it is a canonical site
 * path. An encoded slash is refused: it would let `a%2F..%2Fb` mean something else
 * to the origin than to us.
 *
 * @example
 * decodePath('/img/logo%20dark.png') // '/img/logo dark.png'
 * decodePath('/a/%2e%2e/b')          // throws InvalidArgumentError
 */
export function decodePath(raw: string): string {
  if (/%2f|%5c|%00/i.test(raw)) {
    throw new InvalidArgumentError('path must not contain an encoded "/", "\\" or NUL')
  }
  let path: string
  try {
    path = decodeURIComponent(raw)
  } catch {
    throw new InvalidArgumentError('path has malformed percent-encoding')
  }
  const problem = pathProblem(path)
  if (problem !== undefined) throw new InvalidArgumentError(`path ${problem}`)
  return path
}

/** Re-encodes a decoded, checked path for an origin URL (one segment at a time). */
export function encodePath(path: string): string {
  return path
    .split('/')
    .map((segment) => encodeURIComponent(segment).replace(/%40/g, '@').replace(/%3A/g, ':'))
    .join('/')
}

/**
 * Splits a request target into a route. Throws typed errors for malformed CIDs
 * (`SHOAL_ERR_INVALID_CID`) and paths (`SHOAL_ERR_INVALID_ARGUMENT`).
 *
 * @example
 * routeOf('/c/saejaz…')        // { kind: 'content', cid }
 * routeOf('/s/blog/index.html') // { kind: 'site', site: 'blog', path: '/index.html', query: '' }
 */
export function routeOf(target: string, options: { defaultOrigin: boolean }): Route {
  if (!target.startsWith('/')) throw new InvalidArgumentError('request target must be in origin form ("/…")')
  const q = target.indexOf('?')
  const rawPath = q < 0 ? target : target.slice(0, q)
  const query = q < 0 ? '' : target.slice(q)
  if (rawPath === '/health') return { kind: 'health' }
  if (rawPath === '/metrics') return { kind: 'metrics' }
  if (rawPath === '/admin/purge') return { kind: 'purge' }
  if (rawPath === '/dashboard' || rawPath.startsWith('/dashboard/'))
    return { kind: 'dashboard', path: rawPath }
  if (rawPath === '/v1/sessions') return { kind: 'sessions' }
  if (rawPath === '/v1/receipts') return { kind: 'receipts' }
  if (rawPath.startsWith('/c/')) {
    const rest = rawPath.slice(3)
    const slash = rest.indexOf('/')
    if (slash < 0) return { kind: 'content', cid: parseCid(rest) }
    if (rest.slice(slash) === '/leaves') return { kind: 'leaves', cid: parseCid(rest.slice(0, slash)) }
    return { kind: 'not-found' }
  }
  if (rawPath.startsWith('/manifests/')) {
    const site = rawPath.slice('/manifests/'.length)
    if (!SITE_NAME.test(site)) throw new InvalidArgumentError(`"${site}" is not a site name`)
    return { kind: 'manifest', site }
  }
  if (rawPath.startsWith('/s/')) {
    const rest = rawPath.slice(3)
    const slash = rest.indexOf('/')
    const site = slash < 0 ? rest : rest.slice(0, slash)
    if (!SITE_NAME.test(site)) throw new InvalidArgumentError(`"${site}" is not a site name`)
    const path = slash < 0 ? '/' : rest.slice(slash)
    return { kind: 'site', site, path: path === '/' ? '/' : decodePath(path), query }
  }
  if (options.defaultOrigin)
    return { kind: 'default-origin', path: rawPath === '/' ? '/' : decodePath(rawPath), query }
  return { kind: 'not-found' }
}
