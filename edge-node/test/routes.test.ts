import { computeCid } from '@shoal/protocol'
import { describe, expect, it } from 'vitest'
import { decodePath, encodePath, routeOf } from '../src/http/routes.ts'

const { cid } = await computeCid(new TextEncoder().encode('route me'))

describe('routeOf', () => {
  it('routes content, leaves, sites, manifests and the operator surface', () => {
    expect(routeOf(`/c/${cid.text}`, { defaultOrigin: false })).toMatchObject({
      kind: 'content',
      cid: { text: cid.text },
    })
    expect(routeOf(`/c/${cid.text}/leaves`, { defaultOrigin: false })).toMatchObject({ kind: 'leaves' })
    expect(routeOf('/s/blog/a/b.css?v=1', { defaultOrigin: false })).toEqual({
      kind: 'site',
      site: 'blog',
      path: '/a/b.css',
      query: '?v=1',
    })
    expect(routeOf('/s/blog', { defaultOrigin: false })).toMatchObject({ kind: 'site', path: '/' })
    expect(routeOf('/manifests/blog', { defaultOrigin: false })).toEqual({ kind: 'manifest', site: 'blog' })
    expect(routeOf('/health?challenge=ab', { defaultOrigin: false })).toEqual({ kind: 'health' })
    expect(routeOf('/metrics', { defaultOrigin: false })).toEqual({ kind: 'metrics' })
    expect(routeOf('/anything', { defaultOrigin: false })).toEqual({ kind: 'not-found' })
    expect(routeOf('/anything/x?q', { defaultOrigin: true })).toEqual({
      kind: 'default-origin',
      path: '/anything/x',
      query: '?q',
    })
  })

  it.each([
    '/s/blog/../etc/passwd',
    '/s/blog/a/%2e%2e/b',
    '/s/blog/a/%2E%2E/b',
    '/s/blog/a%2f..%2fb',
    '/s/blog/a%5cb',
    '/s/blog/a%00b',
    '/s/blog/a//b',
    '/s/blog/%zz',
    '/s/blog/./x',
    '/s/Blog/x',
    '/s/bl_og/x',
    '/x/../y',
  ])('refuses traversal and malformed paths: %s', (target) => {
    expect(() => routeOf(target, { defaultOrigin: true })).toThrow(
      expect.objectContaining({ code: 'SHOAL_ERR_INVALID_ARGUMENT' }),
    )
  })

  it('refuses malformed CIDs with SHOAL_ERR_INVALID_CID', () => {
    for (const bad of ['/c/xyz', `/c/${cid.text.toUpperCase()}`, `/c/${cid.text}x`, '/c/'])
      expect(() => routeOf(bad, { defaultOrigin: false })).toThrow(
        expect.objectContaining({ code: 'SHOAL_ERR_INVALID_CID' }),
      )
  })

  it('refuses targets not in origin form', () => {
    expect(() => routeOf('http://evil/x', { defaultOrigin: true })).toThrow(
      expect.objectContaining({ code: 'SHOAL_ERR_INVALID_ARGUMENT' }),
    )
  })

  it('decodes once and re-encodes for origins', () => {
    expect(decodePath('/img/logo%20dark.png')).toBe('/img/logo dark.png')
    expect(decodePath('/%25252e')).toBe('/%252e')
    expect(encodePath('/img/logo dark.png')).toBe('/img/logo%20dark.png')
    expect(encodePath('/a?b#c')).toBe('/a%3Fb%23c')
  })
})
