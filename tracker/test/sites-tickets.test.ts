import {
  decodeManifestEntryProof,
  decodeTicket,
  encodeSiteManifest,
  verifyManifestEntryProof,
  verifyTicket,
} from '@shoal/protocol'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { afterEach, describe, expect, it } from 'vitest'
import { makeContent, postJson, publishSite } from './helpers/test-node.ts'
import { startTracker, type TrackerFixture } from './helpers/tracker.ts'

let fixtures: TrackerFixture[] = []
afterEach(async () => {
  for (const f of fixtures) await f.close()
  fixtures = []
})

async function tracker(over = {}) {
  const t = await startTracker(over)
  fixtures.push(t)
  return t
}

const code = (r: { body: Record<string, unknown> }) => (r.body.error as { code: string } | undefined)?.code

describe('site manifests', () => {
  it('gives a site to its first publisher; higher sequences win; equal, lower and foreign ones are refused', async () => {
    const t = await tracker({ rateLimits: { sites: { rate: 100, burst: 100 } } })
    const owner = privateKeyToAccount(generatePrivateKey())
    const other = privateKeyToAccount(generatePrivateKey())
    const a = await makeContent(2000)
    const b = await makeContent(100)

    const first = await publishSite(t.url, owner, 'blog', 5, [{ path: '/index.html', content: a }])
    expect(first.status).toBe(201)
    expect(first.body).toEqual({
      site: 'blog',
      publisher: owner.address,
      sequence: 5,
      entryCount: 1,
      created: true,
    })
    const res = await fetch(`${t.url}/v1/sites/blog`)
    expect(res.headers.get('content-type')).toContain('application/json')
    expect(await res.text()).toBe(encodeSiteManifest(first.signed))

    let r = await publishSite(t.url, owner, 'blog', 5, [{ path: '/other', content: b }])
    expect([r.status, code(r)]).toEqual([409, 'SHOAL_ERR_STALE'])
    r = await publishSite(t.url, owner, 'blog', 4, [{ path: '/other', content: b }])
    expect([r.status, code(r)]).toEqual([409, 'SHOAL_ERR_STALE'])
    r = await publishSite(t.url, other, 'blog', 99, [{ path: '/evil', content: b }])
    expect([r.status, code(r)]).toEqual([403, 'SHOAL_ERR_FORBIDDEN'])
    expect(await (await fetch(`${t.url}/v1/sites/blog`)).text()).toBe(encodeSiteManifest(first.signed))

    const next = await publishSite(t.url, owner, 'blog', 6, [
      { path: '/index.html', content: a },
      { path: '/b.txt', content: b },
    ])
    expect(next.status).toBe(200)
    expect(await (await fetch(`${t.url}/v1/sites/blog`)).text()).toBe(encodeSiteManifest(next.signed))

    // a tampered manifest never gets in
    const tampered = JSON.parse(encodeSiteManifest(next.signed))
    tampered.message.sequence = 7
    let posted = await postJson(`${t.url}/v1/sites`, tampered)
    expect([posted.status, code(posted)]).toEqual([401, 'SHOAL_ERR_INVALID_SIGNATURE'])
    tampered.message.surprise = 1
    posted = await postJson(`${t.url}/v1/sites`, tampered)
    expect([posted.status, code(posted)]).toEqual([400, 'SHOAL_ERR_INVALID_FORMAT'])

    const missing = await fetch(`${t.url}/v1/sites/nope`)
    expect(missing.status).toBe(404)
    expect((await fetch(`${t.url}/v1/sites/Bad_Name`)).status).toBe(400)
  })

  it('serves one entry with its proof, which verifies against the publisher', async () => {
    const t = await tracker()
    const owner = privateKeyToAccount(generatePrivateKey())
    const a = await makeContent(10)
    const b = await makeContent(20)
    await publishSite(t.url, owner, 'docs', 1, [
      { path: '/café/menü.html', content: a },
      { path: '/z.txt', content: b },
    ])
    const res = await fetch(`${t.url}/v1/sites/docs/entries?path=${encodeURIComponent('/café/menü.html')}`)
    expect(res.status).toBe(200)
    const proof = decodeManifestEntryProof(await res.text())
    const { entry } = await verifyManifestEntryProof(proof, {
      site: 'docs',
      path: '/café/menü.html',
      publisher: owner.address,
    })
    expect(entry.cid).toBe(a.cid)
    expect((await fetch(`${t.url}/v1/sites/docs/entries?path=/none`)).status).toBe(404)
    expect((await fetch(`${t.url}/v1/sites/docs/entries?path=relative`)).status).toBe(400)
    expect((await fetch(`${t.url}/v1/sites/docs/entries?path=/z.txt&x=1`)).status).toBe(400)
    // a new sequence is proved from the new manifest
    await publishSite(t.url, owner, 'docs', 2, [{ path: '/z.txt', content: a }])
    const again = decodeManifestEntryProof(
      await (await fetch(`${t.url}/v1/sites/docs/entries?path=/z.txt`)).text(),
    )
    expect([again.header.sequence, again.entry.cid]).toEqual([2, a.cid])
  })
})

describe('tickets', () => {
  it('issues tickets signed by the tracker key, budget capped, stored, rate-limited per IP', async () => {
    const t = await tracker({
      ticketBudget: 1000,
      ticketMaxBudget: 5000,
      ticketTtlSeconds: 600,
      rateLimits: { tickets: { rate: 0.001, burst: 2 } },
    })
    const client = privateKeyToAccount(generatePrivateKey()).address
    const payer = privateKeyToAccount(generatePrivateKey()).address
    const r = await postJson(`${t.url}/v1/tickets`, { client: client.toLowerCase(), publisher: payer })
    expect(r.status).toBe(201)
    const ticket = await verifyTicket(decodeTicket(r.body.ticket))
    expect(ticket).toMatchObject({ issuer: t.account.address, client, budget: 1000 })
    expect(ticket.expiry).toBeGreaterThan(Date.now() / 1000 + 590)
    expect((await t.tracker.store.getTicket(r.body.id as string))?.client).toBe(client)
    const big = await postJson(`${t.url}/v1/tickets`, { client, budget: 10 ** 9, publisher: payer })
    expect((await verifyTicket(decodeTicket(big.body.ticket))).budget).toBe(5000)
    const limited = await postJson(`${t.url}/v1/tickets`, { client, publisher: payer })
    expect([limited.status, code(limited)]).toEqual([429, 'SHOAL_ERR_RATE_LIMITED'])
    expect((await t.tracker.store.getClient(client))?.tickets).toBe(2)
  })
})
