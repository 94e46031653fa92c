/**
 * docs/tracker.md is the API reference: its route table must name exactly the routes the
 * router serves, and its rate-limit table exactly the groups and defaults the code uses.
 */
import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { type ApiServices, createRoutes } from '../src/api/routes.ts'
import { DEFAULT_RATE_LIMITS } from '../src/options.ts'

const DOC = new URL('../../docs/tracker.md', import.meta.url)

/** The rows of the markdown table that follows `heading`, as cells. */
function tableAfter(text: string, heading: string): string[][] {
  const lines = text.slice(text.indexOf(heading)).split('\n')
  const start = lines.findIndex((l) => l.trimStart().startsWith('|'))
  const rows: string[][] = []
  for (const line of lines.slice(start + 2)) {
    if (!line.trimStart().startsWith('|')) break
    rows.push(
      line
        .trim()
        .slice(1, -1)
        .split('|')
        .map((c) => c.trim()),
    )
  }
  return rows
}

/** The routes createRoutes builds; the services are only called by handlers. */
const routes = createRoutes({
  index: { options: { maxCount: 20, maxExclude: 20 } },
} as unknown as ApiServices)

describe('docs/tracker.md', () => {
  it('documents every route the router serves, and no other', async () => {
    const text = await readFile(DOC, 'utf8')
    const documented = tableAfter(text, '## Routes').map(([route]) => {
      const m = /^`(GET|POST) ([^`?\s]+)/.exec(route!)
      expect(m, route).not.toBeNull()
      return `${m![1]} ${m![2]!.replace(/<[a-z]+>/g, ':param')}`
    })
    const served = [
      ...routes.map((r) => `${r.method} ${r.path.replace(/:[a-z]+/g, ':param')}`),
      // the dashboard's own routes (src/dashboard): the page and its figures
      'GET /dashboard',
      'GET /dashboard/data.json',
    ]
    expect(new Set(documented).size).toBe(documented.length)
    expect([...documented].sort()).toEqual([...served].sort())
  })

  it('lists every rate-limit group with its default rate and burst, and the routes in it', async () => {
    const text = await readFile(DOC, 'utf8')
    const rows = tableAfter(text, '| group | routes |')
    const groups = Object.fromEntries(
      rows.map(([group, routeCell, rate, burst]) => [group, { routeCell, rate, burst }]),
    )
    expect(Object.keys(groups).sort()).toEqual(Object.keys(DEFAULT_RATE_LIMITS).sort())
    for (const [group, limit] of Object.entries(DEFAULT_RATE_LIMITS)) {
      const row = groups[group]!
      const rate = row.rate!.includes('/') ? 1 / Number(row.rate!.split('/')[1]) : Number(row.rate)
      expect([group, rate, Number(row.burst)]).toEqual([group, limit.rate, limit.burst])
    }
    // a route outside `default` is named in its group's row
    for (const route of routes) {
      if (route.limit === 'default') continue
      const named = `\`${route.method} ${route.path.replace(/:[a-z]+/g, '<')}`
      expect(groups[route.limit]!.routeCell!.replace(/<[a-z]+>/g, '<'), named).toContain(named)
    }
  })
})
