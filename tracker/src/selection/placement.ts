/**
 * Placement structure: regions → a fixed number of buckets per region → nodes.
 *
 * A node lives in one bucket of its region, chosen by a hash of its address, so its
 * bucket never changes while its region does not. Each bucket keeps its nodes' entries
 * contiguously (`[slot, nodeHash, weight, hint]` as 32-bit words) plus two sums kept
 * exact because weights are integers: the bucket's weight (Σ placement weight of its
 * nodes, eligible or not) and its hint count (nodes eligible as far as events tell).
 * Every update is O(1).
 *
 * Selection for a CID in one region (docs/scoring.md):
 * 1. rank the region's buckets that hold an eligible node by weighted rendezvous on
 *    the bucket weight (`−ln u(cid, bucket) / W_b`, smallest first);
 * 2. from each bucket in that order take its best eligible node by weighted rendezvous
 *    on the nodes' own weights, until k are found (a second round takes each bucket's
 *    next best only if every bucket has given one).
 * A bucket is chosen with probability W_b / W_region and a node within it with
 * probability w / W_b, so a node is picked with probability ∝ w / W_region; taking one
 * node per bucket keeps that true for k > 1 (a light node is never dragged into a list
 * because it shares a bucket with a heavy one).
 */
import type { NodeTable } from '../scoring/table.ts'
import { fmix32, pairHash, rendezvousKey } from './hash.ts'

/** Words per bucket entry: slot, node hash, placement weight, eligibility hint. */
const STRIDE = 4
const INITIAL_ENTRIES = 4

export class Region {
  readonly id: number
  readonly name: string
  readonly hash: number
  readonly bucketHash: Uint32Array
  /** Σ placement weight of the bucket's nodes. */
  readonly weight: Float64Array
  /** Nodes of the bucket eligible as far as events tell. */
  readonly hint: Uint32Array
  readonly length: Uint32Array
  readonly entries: Uint32Array[]
  totalWeight = 0
  hintCount = 0
  nodes = 0

  constructor(id: number, name: string, hash: number, buckets: number) {
    this.id = id
    this.name = name
    this.hash = hash
    this.bucketHash = new Uint32Array(buckets)
    for (let i = 0; i < buckets; i++) this.bucketHash[i] = fmix32(Math.imul(i + 1, 0x9e3779b1) ^ hash)
    this.weight = new Float64Array(buckets)
    this.hint = new Uint32Array(buckets)
    this.length = new Uint32Array(buckets)
    this.entries = new Array<Uint32Array>(buckets)
    const empty = new Uint32Array(0)
    for (let i = 0; i < buckets; i++) this.entries[i] = empty
  }
}

function growU32(array: Uint32Array, length: number): Uint32Array {
  const next = new Uint32Array(length)
  next.set(array)
  return next
}

function growU16(array: Uint16Array, length: number): Uint16Array {
  const next = new Uint16Array(length)
  next.set(array)
  return next
}

export class Placement {
  readonly buckets: number
  readonly regions: Region[] = []
  readonly regionByName = new Map<string, Region>()
  nodeRegion: Uint16Array = new Uint16Array(0)
  nodeBucket: Uint16Array = new Uint16Array(0)
  nodePos: Uint32Array = new Uint32Array(0)
  /** Placement weight of each slot (also in its bucket entry). */
  nodeWeight: Uint32Array = new Uint32Array(0)
  size = 0
  private readonly seed: number
  // Scratch of one selection: bucket keys and indices (a binary heap), buckets that gave a node.
  private readonly heapKeys: Float64Array
  private readonly heapIdx: Uint32Array
  private readonly visited: Uint32Array

  constructor(buckets: number, seed: number, maxCount: number, initialSize: number) {
    this.buckets = buckets
    this.seed = seed
    this.heapKeys = new Float64Array(buckets)
    this.heapIdx = new Uint32Array(buckets)
    this.visited = new Uint32Array(Math.min(maxCount, buckets))
    this.resize(Math.max(1, initialSize))
  }

  resize(length: number): void {
    if (length <= this.size) return
    this.nodeRegion = growU16(this.nodeRegion, length)
    this.nodeBucket = growU16(this.nodeBucket, length)
    this.nodePos = growU32(this.nodePos, length)
    this.nodeWeight = growU32(this.nodeWeight, length)
    this.size = length
  }

  /** The region named `name`, created on first use. */
  region(name: string, hash: number): Region {
    let region = this.regionByName.get(name)
    if (region === undefined) {
      region = new Region(this.regions.length, name, hash, this.buckets)
      this.regions.push(region)
      this.regionByName.set(name, region)
    }
    return region
  }

  /** Adds `slot` to its bucket in `region` with weight 0, not eligible. */
  insert(slot: number, region: Region, nodeHash: number): void {
    const bucket = fmix32(nodeHash ^ this.seed ^ 0x5bd1e995) % this.buckets
    const len = region.length[bucket]!
    let entries = region.entries[bucket]!
    if ((len + 1) * STRIDE > entries.length) {
      entries = growU32(entries, Math.max(INITIAL_ENTRIES, len * 2) * STRIDE)
      region.entries[bucket] = entries
    }
    const p = len * STRIDE
    entries[p] = slot
    entries[p + 1] = nodeHash
    entries[p + 2] = 0
    entries[p + 3] = 0
    region.length[bucket] = len + 1
    region.nodes++
    this.nodeRegion[slot] = region.id
    this.nodeBucket[slot] = bucket
    this.nodePos[slot] = len
    this.nodeWeight[slot] = 0
  }

  /** Sets `slot`'s placement weight and eligibility hint, keeping the sums exact. */
  update(slot: number, weight: number, hint: number): void {
    const region = this.regions[this.nodeRegion[slot]!]!
    const bucket = this.nodeBucket[slot]!
    const entries = region.entries[bucket]!
    const p = this.nodePos[slot]! * STRIDE
    const dw = weight - entries[p + 2]!
    if (dw !== 0) {
      entries[p + 2] = weight
      region.weight[bucket] = region.weight[bucket]! + dw
      region.totalWeight += dw
      this.nodeWeight[slot] = weight
    }
    const dh = hint - entries[p + 3]!
    if (dh !== 0) {
      entries[p + 3] = hint
      region.hint[bucket] = region.hint[bucket]! + dh
      region.hintCount += dh
    }
  }

  hintOf(slot: number): number {
    const region = this.regions[this.nodeRegion[slot]!]!
    return region.entries[this.nodeBucket[slot]!]![this.nodePos[slot]! * STRIDE + 3]!
  }

  /** Takes `slot` out of its bucket (swap with the bucket's last entry). */
  remove(slot: number): void {
    this.update(slot, 0, 0)
    const region = this.regions[this.nodeRegion[slot]!]!
    const bucket = this.nodeBucket[slot]!
    const entries = region.entries[bucket]!
    const last = region.length[bucket]! - 1
    const p = this.nodePos[slot]! * STRIDE
    const q = last * STRIDE
    if (p !== q) {
      entries.copyWithin(p, q, q + STRIDE)
      this.nodePos[entries[p]!] = p / STRIDE
    }
    region.length[bucket] = last
    region.nodes--
  }

  /**
   * Appends to `out` (from `count`) up to `need` eligible nodes of `region` for the CID
   * words `a`, `b`, best first; returns the new count. Buckets are walked in rendezvous
   * order and each gives its best eligible node; only when every bucket with an eligible
   * node has given one does a second round take each bucket's next best, and so on.
   * `excluded[0 … excludedCount)` are slots to skip. Time-driven eligibility (cool-off,
   * silence) is checked here, on the few candidates that would become a bucket's best.
   */
  fill(
    region: Region,
    a: number,
    b: number,
    need: number,
    out: Int32Array,
    count: number,
    table: NodeTable,
    now: number,
    excluded: Int32Array,
    excludedCount: number,
  ): number {
    if (region.hintCount === 0 || need <= 0) return count
    const keys = this.heapKeys
    const idx = this.heapIdx
    const hint = region.hint
    const weight = region.weight
    const bucketHash = region.bucketHash
    let m = 0
    for (let i = 0; i < this.buckets; i++) {
      if (hint[i] === 0) continue
      keys[m] = rendezvousKey(pairHash(bucketHash[i]!, a, b), weight[i]!)
      idx[m] = i
      m++
    }
    // Min-heap over (keys, idx): O(m) to build, O(log m) per bucket walked.
    for (let i = (m >> 1) - 1; i >= 0; i--) siftDown(keys, idx, i, m)
    const start = count
    const visited = this.visited
    let nv = 0
    while (need > 0 && m > 0) {
      const bucket = idx[0]!
      m--
      keys[0] = keys[m]!
      idx[0] = idx[m]!
      siftDown(keys, idx, 0, m)
      const slot = this.best(region, bucket, a, b, table, now, excluded, excludedCount, out, start, count)
      if (slot < 0) continue
      out[count++] = slot
      need--
      visited[nv++] = bucket
    }
    // Further rounds over the buckets that still gave a node, in the same order.
    while (need > 0 && nv > 0) {
      let kept = 0
      for (let i = 0; i < nv && need > 0; i++) {
        const bucket = visited[i]!
        const slot = this.best(region, bucket, a, b, table, now, excluded, excludedCount, out, start, count)
        if (slot < 0) continue
        out[count++] = slot
        need--
        visited[kept++] = bucket
      }
      nv = kept
    }
    return count
  }

  /**
   * The bucket's eligible node with the smallest rendezvous key, skipping excluded slots
   * and those already in `out[from … to)`; −1 when there is none.
   */
  private best(
    region: Region,
    bucket: number,
    a: number,
    b: number,
    table: NodeTable,
    now: number,
    excluded: Int32Array,
    excludedCount: number,
    out: Int32Array,
    from: number,
    to: number,
  ): number {
    const entries = region.entries[bucket]!
    const end = region.length[bucket]! * STRIDE
    const cool = table.coolOffUntil
    const answeredAt = table.lastAnsweredAt
    const floor = table.answeredFloor
    const downAfterMs = table.options.downAfterMs
    let bestKey = Infinity
    let bestSlot = -1
    for (let p = 0; p < end; p += STRIDE) {
      if (entries[p + 3] === 0) continue
      const key = rendezvousKey(pairHash(entries[p + 1]!, a, b), entries[p + 2]!)
      if (key >= bestKey) continue
      const slot = entries[p]!
      if (cool[slot]! > now || !(now - Math.max(answeredAt[slot]!, floor) <= downAfterMs)) continue
      if (excludedCount > 0 && contains(excluded, 0, excludedCount, slot)) continue
      if (to > from && contains(out, from, to, slot)) continue
      bestKey = key
      bestSlot = slot
    }
    return bestSlot
  }

  /** Rendezvous key of a whole region for a CID (used to order fallback regions). */
  regionKey(region: Region, a: number, b: number): number {
    return region.totalWeight > 0 ? rendezvousKey(pairHash(region.hash, a, b), region.totalWeight) : Infinity
  }
}

function contains(list: Int32Array, from: number, to: number, slot: number): boolean {
  for (let i = from; i < to; i++) if (list[i] === slot) return true
  return false
}

function siftDown(keys: Float64Array, idx: Uint32Array, i: number, m: number): void {
  const key = keys[i]!
  const id = idx[i]!
  for (;;) {
    let c = 2 * i + 1
    if (c >= m) break
    if (c + 1 < m && keys[c + 1]! < keys[c]!) c++
    if (keys[c]! >= key) break
    keys[i] = keys[c]!
    idx[i] = idx[c]!
    i = c
  }
  keys[i] = key
  idx[i] = id
}
