/**
 * CORS for the node's public, content-addressed routes (`/c/<cid>`, `/c/<cid>/leaves`,
 * and site paths served from a manifest): a web page on any origin may read them with
 * `fetch` (the SDK in a browser verifies every byte itself, so nothing is trusted
 * because of where it came from). No credentials are ever allowed, so `*` is safe and
 * no `Vary: Origin` is needed. Operator routes (`/admin/*`, `/metrics`, pushes,
 * manifests) and origin-pull sites (whose origin decides its own CORS policy) get none.
 */
import type { ServerResponse } from 'node:http'

/** Request headers a page may send (beyond the CORS-safelisted ones). */
export const CORS_ALLOW_HEADERS = 'range, if-range, if-none-match, if-modified-since'
/** Response headers a page may read (beyond the safelisted ones). */
export const CORS_EXPOSE_HEADERS = 'content-range, content-length, accept-ranges, etag'
/** How long a browser may cache a preflight answer. */
export const CORS_MAX_AGE_SECONDS = 86_400

/** Headers every answer of a public route carries (errors included, so pages can read them). */
export const PUBLIC_CORS_HEADERS: Readonly<Record<string, string>> = {
  'access-control-allow-origin': '*',
  'access-control-expose-headers': CORS_EXPOSE_HEADERS,
}

/** Sets the public CORS headers on a response not yet started. */
export function allowCrossOrigin(res: ServerResponse): void {
  for (const [name, value] of Object.entries(PUBLIC_CORS_HEADERS)) res.setHeader(name, value)
}

/**
 * Answers `OPTIONS` on a public route: a CORS preflight (or a plain `OPTIONS`) gets
 * `204` with the methods the route allows.
 */
export function answerPreflight(res: ServerResponse, methods: string): void {
  res.writeHead(204, {
    ...PUBLIC_CORS_HEADERS,
    allow: `${methods}, OPTIONS`,
    'access-control-allow-methods': methods,
    'access-control-allow-headers': CORS_ALLOW_HEADERS,
    'access-control-max-age': String(CORS_MAX_AGE_SECONDS),
    'cache-control': `public, max-age=${CORS_MAX_AGE_SECONDS}`,
    'content-length': '0',
  })
  res.end()
}
