/**
 * Reachability: how a client can reach each node (docs/tracker.md, "Reachability").
 *
 * - `url`: the tracker's own probe of the node's HTTP URL answers (the node is neither
 *   `unreachable` nor `down`). The probe is the truth for "URL reachable": what a node
 *   says of itself never makes its URL selectable.
 * - `mesh`: the URL does not answer, but the node keeps heartbeating (over its
 *   MAC'd heartbeat session, so it is alive), its AutoNAT view says peers reach its
 *   mesh addresses (`public`) or it holds a circuit relay reservation (`relayed`), and
 *   its signed record names libp2p multiaddrs. With the mesh probe on (`verify`), the
 *   tracker must also have dialled those addresses itself, reached the registered peer
 *   id and had a ping answered (`mesh-prober.ts`) within `verifiedForMs`. Such a node is
 *   handed only to clients that ask for mesh nodes (`GET /v1/select?…&mesh=1`), with its
 *   peer id and multiaddrs and no HTTP URL.
 * - `none`: neither.
 *
 * Only nodes that claim mesh reachability are kept here, so picking mesh nodes costs
 * O(claimants), not O(nodes).
 */
import { cidWords, fmix32, hashString, pairHash } from '../selection/hash.ts'
import type { NodeIndex } from '../selection/index.ts'
import type { MeshProbeOutcome } from './mesh-prober.ts'

/** What a node's heartbeat says of its own mesh addresses (libp2p AutoNAT and relay reservations). */
export const MESH_REACHABILITY = ['public', 'relayed', 'private', 'unknown'] as const
export type MeshReachability = (typeof MESH_REACHABILITY)[number]

export type Reachability = 'url' | 'mesh' | 'none'

export interface NodeReachability {
  /** How a client reaches the node. */
  via: Reachability
  /** The tracker's probe of the HTTP URL answers. */
  url: boolean
  /** The node's last mesh claim, or `null` when it sent none. */
  mesh: MeshReachability | null
  /** Unix ms of the heartbeat that carried the claim. */
  claimedAt: number | null
  /** The tracker's last mesh probe of the node's addresses (`null`: none, or the probe is off). */
  meshProbe: MeshProbeResult | null
}

/** A mesh probe's outcome and when it came. */
export type MeshProbeResult = MeshProbeOutcome & { at: number }

/** What the index's meta must offer for a node to be handed out over the mesh. */
export interface MeshMeta {
  /** `"peerId":…,"multiaddrs":[…]` — the record's libp2p addresses, pre-serialized. */
  meshJson?: string
}

export interface ReachabilityInit {
  /** A claim older than this is not believed (ms); the index's `downAfterMs` by default. */
  freshMs?: number
  /** Hand out mesh nodes only after the tracker's own mesh probe reached them (the mesh probe is on). */
  verify?: boolean
  /** With `verify`: a successful probe is believed this long (ms); `freshMs` by default. */
  verifiedForMs?: number
}

export interface ReachabilityComponents<M extends MeshMeta> {
  index: NodeIndex<M>
  clock: () => number
}

export interface MeshPick<M> {
  node: string
  region: string
  meta: M
}

export interface ReachabilityDirectory<M> {
  /** Records a heartbeat's mesh claim (`undefined`: the node sent none). */
  note(node: string, claim: MeshReachability | undefined): void
  /** The node's claim, when it is fresh (within `freshMs`). */
  claim(node: string): MeshReachability | undefined
  /** Records the tracker's mesh probe of the node. */
  noteProbe(node: string, outcome: MeshProbeOutcome): void
  /** Forgets the node's probe result (its addresses changed, or it withdrew its claim). */
  forgetProbe(node: string): void
  delete(node: string): void
  of(node: string): NodeReachability
  /**
   * Up to `count` nodes reachable only through the mesh for `cid`: the client's region
   * first, then a stable order per CID (rendezvous), so one CID keeps landing on the same
   * mesh nodes.
   */
  pickMesh(query: {
    root: Uint8Array
    count: number
    region?: string
    exclude?: readonly string[]
  }): MeshPick<M>[]
  readonly size: number
}

const UNREACHABLE_URL = new Set(['unreachable', 'down'])
/** Statuses a mesh node must not have besides URL ones: penalized nodes stay out. */
const OUT = new Set(['flagged', 'cooling-off'])

/**
 * @example
 * const reach = createReachability({}, { index, clock: Date.now })
 * reach.note(address, 'relayed')             // from a heartbeat
 * reach.of(address)                          // { via: 'mesh', url: false, mesh: 'relayed', … }
 */
export function createReachability<M extends MeshMeta>(
  init: ReachabilityInit,
  components: ReachabilityComponents<M>,
): ReachabilityDirectory<M> {
  const { index, clock } = components
  const claims = new Map<string, { claim: MeshReachability; at: number }>()
  const probes = new Map<string, MeshProbeResult>()
  const freshMs = () => init.freshMs ?? index.options.scoring.downAfterMs
  const verifiedForMs = () => init.verifiedForMs ?? freshMs()
  /** Without `verify`, a fresh claim is believed; with it, only a recent successful probe. */
  const verified = (key: string): boolean => {
    if (init.verify !== true) return true
    const p = probes.get(key)
    return p?.reachable === true && clock() - p.at <= verifiedForMs()
  }

  /** The probes answer: one answered within `downAfterMs`, fewer than `downAfterMisses` missed since. */
  const urlAnswers = (node: string): boolean => {
    const { figures } = index.explain(node)
    const { downAfterMs, downAfterMisses } = index.options.scoring
    return (
      figures.lastAnsweredAt !== null &&
      clock() - figures.lastAnsweredAt <= downAfterMs &&
      figures.consecutiveMisses < downAfterMisses
    )
  }

  const viaOf = (key: string, status: string | undefined, meta: M | undefined): NodeReachability => {
    const c = claims.get(key)
    const url = status !== undefined && !UNREACHABLE_URL.has(status) && urlAnswers(key)
    const meshOk =
      !url &&
      c !== undefined &&
      (c.claim === 'public' || c.claim === 'relayed') &&
      clock() - c.at <= freshMs() &&
      status !== undefined &&
      !OUT.has(status) &&
      meta?.meshJson !== undefined &&
      verified(key)
    return {
      via: url ? 'url' : meshOk ? 'mesh' : 'none',
      url,
      mesh: c?.claim ?? null,
      claimedAt: c?.at ?? null,
      meshProbe: probes.get(key) ?? null,
    }
  }

  return {
    note(node, claim) {
      const key = node.toLowerCase()
      if (claim === undefined) claims.delete(key)
      else claims.set(key, { claim, at: clock() })
    },
    claim(node) {
      const c = claims.get(node.toLowerCase())
      return c !== undefined && clock() - c.at <= freshMs() ? c.claim : undefined
    },
    noteProbe(node, outcome) {
      probes.set(node.toLowerCase(), { ...outcome, at: clock() })
    },
    forgetProbe(node) {
      probes.delete(node.toLowerCase())
    },
    delete(node) {
      claims.delete(node.toLowerCase())
      probes.delete(node.toLowerCase())
    },
    of(node) {
      const view = index.get(node)
      return viaOf(node.toLowerCase(), view?.status, view?.meta)
    },
    pickMesh({ root, count, region, exclude }) {
      const [a, b] = cidWords(root, 0x5ea1)
      const skip = new Set((exclude ?? []).map((x) => x.toLowerCase()))
      const found: { pick: MeshPick<M>; local: boolean; key: number }[] = []
      for (const key of claims.keys()) {
        if (skip.has(key)) continue
        const view = index.get(key)
        if (view === undefined || view.meta === undefined) continue
        if (viaOf(key, view.status, view.meta).via !== 'mesh') continue
        found.push({
          pick: { node: view.node, region: view.region, meta: view.meta },
          local: region !== undefined && view.region === region,
          key: pairHash(fmix32(hashString(key, 0)), a, b),
        })
      }
      found.sort((x, y) => Number(y.local) - Number(x.local) || x.key - y.key)
      return found.slice(0, count).map((f) => f.pick)
    },
    get size() {
      return claims.size
    },
  }
}
