/**
 * What `client.fetch` was asked for: `shoal://<cid>`, `shoal://<site>/<path>` or an
 * `http(s)://` URL.
 */
import { type Cid, InvalidArgumentError, isCidText, parseCid, pathProblem } from '@shoal/protocol'

export type Target =
  | { kind: 'cid'; cid: Cid }
  | { kind: 'site'; site: string; path: string }
  | { kind: 'http'; url: URL }

const SITE_RE = /^[a-z0-9][a-z0-9-]{0,62}$/
/** Longest site name; a longer host can only be a CID. */
const SITE_MAX = 63

/**
 * Parses the URL form. A site path is percent-decoded once and must be a valid site path
 * (`pathProblem`); a path ending in `/` (or none) means its `index.html`, as on an edge.
 *
 * @example
 * parseTarget('shoal://blog/img/logo.png') // { kind: 'site', site: 'blog', path: '/img/logo.png' }
 * parseTarget(`shoal://${cid.text}`)       // { kind: 'cid', cid }
 */
export function parseTarget(input: string): Target {
  let url: URL
  try {
    url = new URL(input)
  } catch {
    throw new InvalidArgumentError(`"${String(input).slice(0, 200)}" is not an absolute URL`)
  }
  if (url.protocol === 'http:' || url.protocol === 'https:') return { kind: 'http', url }
  if (url.protocol !== 'shoal:') throw new InvalidArgumentError(`unsupported URL scheme ${url.protocol}`)
  if (url.username !== '' || url.password !== '' || url.port !== '')
    throw new InvalidArgumentError('a shoal:// URL has no user, password or port')
  const host = url.hostname
  const bare = url.pathname === '' || url.pathname === '/'
  // too long for a site name: a content id, or the error saying what is wrong with it
  if (bare && host.length > SITE_MAX) return { kind: 'cid', cid: parseCid(host) }
  if (bare && isCidText(host)) return { kind: 'cid', cid: parseCid(host) }
  if (!SITE_RE.test(host)) throw new InvalidArgumentError(`"${host}" is neither a content id nor a site name`)
  let path: string
  try {
    path = decodeURIComponent(url.pathname === '' ? '/' : url.pathname)
  } catch {
    throw new InvalidArgumentError(`the path of ${input} is not valid percent-encoding`)
  }
  if (path.endsWith('/')) path = `${path}index.html`
  const problem = pathProblem(path)
  if (problem !== undefined) throw new InvalidArgumentError(`path ${problem}`)
  return { kind: 'site', site: host, path }
}
