/**
 * Relay directory: which registered nodes run a relay, and where clients reach it.
 *
 * A node announces its relay (docs/relay.md) in its signed node record, as a multiaddr
 * ending in `/http`: `/ip4/<a>/tcp/<port>/http`, `/ip6/…`, `/dns/<name>/…`. The record's
 * layout is unchanged (multiaddrs are already signed), so the announcement is as
 * authentic as the rest of the record. The directory holds only relay nodes, so picking
 * relays costs O(relays), not O(nodes).
 */
import { InvalidArgumentError } from '@shoal/protocol'
import type { NodeMeta } from '../registry/registry.ts'
import { checkNodeUrl } from '../registry/url-policy.ts'
import type { NodeIndex } from '../selection/index.ts'

const RELAY_MULTIADDR = /^\/(ip4|ip6|dns|dns4|dns6)\/([^/]+)\/tcp\/(\d{1,5})\/http$/

/**
 * The relay URL a node record announces, or `undefined` when it announces none.
 *
 * @example
 * relayUrlOf(['/ip4/127.0.0.1/tcp/4001', '/ip4/203.0.113.7/tcp/7481/http']) // 'http://203.0.113.7:7481'
 */
export function relayUrlOf(multiaddrs: readonly string[]): string | undefined {
  for (const ma of multiaddrs) {
    const m = RELAY_MULTIADDR.exec(ma)
    if (m === null) continue
    const port = Number(m[3])
    if (port < 1 || port > 65535) continue
    const host = m[1] === 'ip6' ? `[${m[2]}]` : m[2]!
    try {
      return new URL(`http://${host}:${port}`).origin
    } catch {}
  }
  return undefined
}

export interface RelayPick {
  node: string
  region: string
  score: number
  relayUrl: string
}

export interface RelayDirectory {
  /** Records (or forgets, with `undefined`) a node's relay URL. */
  set(node: string, relayUrl: string | undefined): void
  delete(node: string): void
  readonly size: number
  /** Up to `count` eligible relays: the client's region first, then by score. */
  pick(query: { count: number; region?: string; exclude?: readonly string[] }): RelayPick[]
}

/**
 * @example
 * const relays = createRelayDirectory({ allowPrivateUrls: false }, { index })
 * relays.set(address, relayUrlOf(record.multiaddrs))
 * relays.pick({ count: 3, region: 'eu-west' })
 */
export function createRelayDirectory(
  init: { allowPrivateUrls: boolean },
  components: { index: NodeIndex<NodeMeta> },
): RelayDirectory {
  const relays = new Map<string, string>()
  return {
    set(node, relayUrl) {
      const key = node.toLowerCase()
      if (relayUrl === undefined) {
        relays.delete(key)
        return
      }
      try {
        // the same rule as edge URLs: clients are never sent into private networks
        checkNodeUrl(relayUrl, init.allowPrivateUrls)
        relays.set(key, relayUrl)
      } catch {
        relays.delete(key)
      }
    },
    delete(node) {
      relays.delete(node.toLowerCase())
    },
    get size() {
      return relays.size
    },
    pick({ count, region, exclude = [] }) {
      if (!Number.isSafeInteger(count) || count < 1) throw new InvalidArgumentError('count must be ≥ 1')
      const excluded = new Set(exclude.map((a) => a.toLowerCase()))
      const out: RelayPick[] = []
      for (const [key, relayUrl] of relays) {
        if (excluded.has(key)) continue
        const view = components.index.get(key)
        if (view === undefined || !view.eligible) continue
        out.push({ node: view.node, region: view.region, score: view.score, relayUrl })
      }
      out.sort((a, b) => Number(b.region === region) - Number(a.region === region) || b.score - a.score)
      return out.slice(0, count)
    },
  }
}
