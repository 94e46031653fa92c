/** The `contentType` a published file gets in its manifest entry. */
import mime from 'mime'

const TEXTUAL = /^(text\/|application\/(javascript|json|xml|manifest\+json|ld\+json)|image\/svg\+xml)/

/**
 * The media type of a site path by its extension (the `mime` package's table), with
 * `charset=utf-8` on textual types; `application/octet-stream` when unknown.
 *
 * @example
 * contentTypeOf('/index.html') // 'text/html; charset=utf-8'
 * contentTypeOf('/logo.png')   // 'image/png'
 */
export function contentTypeOf(path: string): string {
  const type = mime.getType(path)
  if (type === null) return 'application/octet-stream'
  return TEXTUAL.test(type) ? `${type}; charset=utf-8` : type
}
