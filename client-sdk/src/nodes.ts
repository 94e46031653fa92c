/**
 * Which nodes may serve a CID: the static list, or the tracker's selection (cached per
 * CID for `selectTtlMs`; asked again, excluding the nodes that failed, when every
 * selected node has failed). Candidates are handed out in the client's preference order
 * (`NodeStats.rank`), skipping the nodes that already failed during this fetch.
 */

import type { Hex } from 'viem'
import type { NodeStats } from './node-stats.ts'
import type { StaticNode } from './options.ts'
import type { Source } from './pipeline/dispatch.ts'
import type { TrackerClient } from './tracker-client.ts'

export interface NodeDirectoryInit {
  nodes: readonly StaticNode[] | undefined
  selectCount: number
  selectTtlMs: number
  region: string | undefined
  /** Also select nodes reachable only through the mesh (the client can dial them). */
  mesh?: boolean
}

/** The name a mesh-only node goes by in stats and events (never fetched over HTTP). */
export const meshSourceUrl = (peerId: string): string => `shoal-mesh://${peerId}/`

export interface NodeDirectoryComponents {
  tracker: TrackerClient | undefined
  stats: NodeStats
  clock?: () => number
}

export interface NodeDirectory {
  /** The nodes for a CID (from the cache, the static list or the tracker). Tracker errors are thrown as they are. */
  nodesFor(cid: string, options?: { signal?: AbortSignal; ticket?: Hex }): Source[] | Promise<Source[]>
  /**
   * A candidate supplier for one race: ranked nodes not in `failed`, then (tracker only,
   * once per fetch) a fresh selection excluding the failed ones.
   */
  candidates(
    cid: string,
    failed: ReadonlyMap<string, Source>,
    state: { reselected: boolean },
    options?: { signal?: AbortSignal; ticket?: Hex },
  ): (why?: 'first' | 'hedge' | 'failover') => Source | undefined | Promise<Source | undefined>
  clear(): void
}

const MAX_CACHED_SELECTIONS = 10_000

const urlOf = (n: Source) => n.url

/**
 * @example
 * const directory = createNodeDirectory({ nodes: undefined, selectCount: 3, selectTtlMs: 30000, region: undefined },
 *   { tracker, stats })
 */
export function createNodeDirectory(
  init: NodeDirectoryInit,
  components: NodeDirectoryComponents,
): NodeDirectory {
  const { tracker, stats } = components
  const clock = components.clock ?? Date.now
  const fixed: Source[] | undefined = init.nodes?.map((n) => ({
    kind: 'node',
    url: n.url,
    ...(n.address === undefined ? {} : { address: n.address }),
  }))
  const cache = new Map<string, { nodes: Source[]; expires: number }>()

  /** Selections are cached per (CID, ticket): the tracker records which nodes a ticket was handed. */
  const keyOf = (cid: string, ticket: Hex | undefined) => (ticket === undefined ? cid : `${cid} ${ticket}`)

  const select = async (
    cid: string,
    exclude: readonly string[],
    signal?: AbortSignal,
    ticket?: Hex,
  ): Promise<Source[]> => {
    if (tracker === undefined) return []
    const picked = await tracker.select(cid, {
      count: init.selectCount,
      ...(ticket === undefined ? {} : { ticket }),
      ...(init.region === undefined ? {} : { region: init.region }),
      ...(exclude.length === 0 ? {} : { exclude }),
      ...(init.mesh === true ? { mesh: true } : {}),
      ...(signal === undefined ? {} : { signal }),
    })
    return picked.map((n) =>
      n.httpUrl !== undefined
        ? { kind: 'node', url: n.httpUrl, address: n.node }
        : {
            kind: 'node',
            url: meshSourceUrl(n.peerId),
            address: n.node,
            mesh: { peerId: n.peerId, multiaddrs: n.multiaddrs },
          },
    )
  }

  // synchronous when the answer is at hand (static nodes, a cached selection): a warm fetch waits on nothing here
  const nodesFor = (
    cid: string,
    options: { signal?: AbortSignal; ticket?: Hex } = {},
  ): Source[] | Promise<Source[]> => {
    if (fixed !== undefined) return fixed
    const hit = cache.get(keyOf(cid, options.ticket))
    if (hit !== undefined && hit.expires > clock()) return hit.nodes
    return selectAndCache(cid, options.signal, options.ticket)
  }

  const selectAndCache = async (
    cid: string,
    signal: AbortSignal | undefined,
    ticket: Hex | undefined,
  ): Promise<Source[]> => {
    const nodes = await select(cid, [], signal, ticket)
    const key = keyOf(cid, ticket)
    if (cache.size >= MAX_CACHED_SELECTIONS) cache.delete(cache.keys().next().value as string)
    cache.delete(key)
    // an empty selection is not cached: nodes may register any moment
    if (nodes.length > 0 && init.selectTtlMs > 0)
      cache.set(key, { nodes, expires: clock() + init.selectTtlMs })
    return nodes
  }

  return {
    nodesFor,
    candidates(cid, failed, state, options = {}) {
      let queue: Source[] | undefined
      const handed = new Set<string>()
      const order = (nodes: Source[]) => {
        const ranked = stats.rank(nodes, urlOf)
        return failed.size === 0 ? ranked : ranked.filter((n) => !failed.has(n.url))
      }
      const pick = (
        why: 'first' | 'hedge' | 'failover' | undefined,
      ): Source | undefined | Promise<Source | undefined> => {
        const q = queue as Source[]
        while (q[0] !== undefined && (failed.has(q[0].url) || handed.has(q[0].url))) q.shift()
        const head = q[0]
        if (head !== undefined) {
          // a hedge is speculative: never to a node that is cooling off
          if (why === 'hedge' && stats.coolingOff(head.url)) return undefined
          q.shift()
          handed.add(head.url)
          return head
        }
        if (why === 'hedge') return undefined
        if (fixed !== undefined || tracker === undefined || state.reselected) return undefined
        state.reselected = true
        return reselect().then(() => pick(why))
      }
      const reselect = async () => {
        const exclude = [...failed.values()].flatMap((n) => (n.address === undefined ? [] : [n.address]))
        const more = await select(cid, exclude, options.signal, options.ticket)
        // the fresh selection replaces the cached one: later fetches start on it
        const key = keyOf(cid, options.ticket)
        cache.delete(key)
        if (more.length > 0 && init.selectTtlMs > 0)
          cache.set(key, { nodes: more, expires: clock() + init.selectTtlMs })
        queue = stats.rank(more, urlOf)
      }
      return (why) => {
        if (queue !== undefined) return pick(why)
        const listed = nodesFor(cid, options)
        if (listed instanceof Promise) {
          return listed.then((nodes) => {
            queue = order(nodes)
            return pick(why)
          })
        }
        queue = order(listed)
        return pick(why)
      }
    },
    clear() {
      cache.clear()
    },
  }
}
