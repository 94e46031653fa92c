/**
 * Reachability as the tracker decides it: the probe is the truth for a node's URL; a node
 * whose URL does not answer is handed out over the mesh only while it heartbeats a
 * public or relayed claim and its record names libp2p addresses, never when penalized.
 */
import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { createReachability, type MeshMeta } from '../src/reachability/reachability.ts'
import { createNodeIndex } from '../src/selection/index.ts'

const T0 = 1_700_000_000_000
const addr = (i: number) => `0x${createHash('sha256').update(`node ${i}`).digest('hex').slice(0, 40)}`
const root = (i: number) => createHash('sha256').update(`cid ${i}`).digest()
const MESH: MeshMeta = { meshJson: '"peerId":"12D3KooWx","multiaddrs":["/ip4/203.0.113.9/tcp/7580"]' }

function setup() {
  const clock = { now: T0 }
  const index = createNodeIndex<MeshMeta>({}, { clock: () => clock.now })
  const reach = createReachability({}, { index, clock: () => clock.now })
  const add = (i: number, region = 'eu-west', meta: MeshMeta = MESH) => {
    index.upsert(addr(i), { region, capacity: 10_000_000, meta })
    return addr(i)
  }
  return { clock, index, reach, add }
}

describe('reachability', () => {
  it('trusts the probe for the URL, whatever the node claims', () => {
    const { index, reach, add } = setup()
    const a = add(1)
    reach.note(a, 'private')
    expect(reach.of(a)).toMatchObject({ via: 'none', url: false, mesh: 'private' })
    index.applyProbe(a, { answered: true, rttMs: 20 })
    expect(reach.of(a)).toMatchObject({ via: 'url', url: true })
    // a URL that answers is the way in even when the node says it is relayed
    reach.note(a, 'relayed')
    expect(reach.of(a).via).toBe('url')
    expect(reach.pickMesh({ root: root(1), count: 3 })).toEqual([])
  })

  it('hands out a node over the mesh only while its claim is fresh, public or relayed, with addresses, unpenalized', () => {
    const { clock, index, reach, add } = setup()
    const relayed = add(1)
    const noAddrs = add(2, 'eu-west', {})
    const priv = add(3)
    const flagged = add(4)
    for (const n of [relayed, noAddrs, flagged]) reach.note(n, 'relayed')
    reach.note(priv, 'private')
    index.setFlagged(flagged, true)
    expect(reach.of(relayed)).toMatchObject({ via: 'mesh', url: false, mesh: 'relayed', claimedAt: T0 })
    expect([noAddrs, priv, flagged].map((n) => reach.of(n).via)).toEqual(['none', 'none', 'none'])
    expect(reach.pickMesh({ root: root(1), count: 5 }).map((p) => p.node)).toEqual([relayed])
    // no heartbeat for longer than downAfterMs: not believed any more
    clock.now += index.options.scoring.downAfterMs + 1
    expect(reach.of(relayed).via).toBe('none')
    expect(reach.pickMesh({ root: root(1), count: 5 })).toEqual([])
    reach.note(relayed, 'public')
    expect(reach.of(relayed).via).toBe('mesh')
    // a heartbeat without a claim withdraws it
    reach.note(relayed, undefined)
    expect(reach.of(relayed)).toMatchObject({ via: 'none', mesh: null })
  })

  it('picks mesh nodes region first, in a stable order per CID, honouring exclude', () => {
    const { reach, add } = setup()
    const nodes = [1, 2, 3, 4, 5, 6].map((i) => add(i, i <= 3 ? 'eu-west' : 'us-east'))
    for (const n of nodes) reach.note(n, 'relayed')
    const picked = reach.pickMesh({ root: root(7), count: 4, region: 'us-east' }).map((p) => p.node)
    expect(picked).toHaveLength(4)
    expect(new Set(picked.slice(0, 3))).toEqual(new Set(nodes.slice(3)))
    expect(reach.pickMesh({ root: root(7), count: 4, region: 'us-east' }).map((p) => p.node)).toEqual(picked)
    const without = reach.pickMesh({ root: root(7), count: 6, exclude: [picked[0]!] }).map((p) => p.node)
    expect(without).toHaveLength(5)
    expect(without).not.toContain(picked[0])
    // another CID lands on another order (rendezvous), over the same candidates
    const orders = new Set(
      [1, 2, 3, 4, 5, 6, 8, 9].map((c) => reach.pickMesh({ root: root(c), count: 1 })[0]!.node),
    )
    expect(orders.size).toBeGreaterThan(1)
  })
})
