/**
 * The tracker's in-memory node index: every registered node's live state (scoring),
 * placement by region and bucket, and content-aware selection. No I/O: the HTTP layer
 * feeds it probe results, heartbeats, reports and audit outcomes, asks it to select,
 * and persists `row(node)` / `snapshot()` through its storage, rebuilding with `restore`.
 */
import { type Cid, InvalidArgumentError, InvalidCidError, NotFoundError, parseCid } from '@shoal/protocol'
import { MAX_RATE, MAX_RTT_MS, NODE_STATUSES, type NodeStatus } from '../scoring/constants.ts'
import { computeScore, SCORE_FORMULA, type ScoreComponents } from '../scoring/score.ts'
import { NODE_FLAG, type NodeFigures, NodeTable } from '../scoring/table.ts'
import { ringFromString, ringToString } from '../scoring/uptime.ts'
import { cidWords, hashString } from './hash.ts'
import {
  checkRegionName,
  type NodeIndexInit,
  type ResolvedNodeIndexOptions,
  resolveNodeIndexOptions,
} from './options.ts'
import { Placement, type Region } from './placement.ts'
import { ADDRESS_RE, checkRow, type NodeStateRow } from './rows.ts'

export interface NodeIndexComponents {
  /** Milliseconds since the epoch; `Date.now` by default. Tests pass a fake clock. */
  clock?: () => number
}

/** What a node's signed record tells the index. */
export interface NodeFields<M> {
  region: string
  /** Egress bytes/s the node offers. */
  capacity: number
  /** Opaque data handed back by `select` and `get` (e.g. URL, peer id, multiaddrs). */
  meta?: M
}

/** The outcome of one challenge–response probe. */
export type ProbeResult = { answered: true; rttMs: number } | { answered: false }

export interface Heartbeat {
  /** Current egress, bytes/s. */
  load: number
}

/** A client's observation of a node, weighted by the reporter's standing. */
export interface ClientReport {
  /** Whether the fetch succeeded. */
  ok: boolean
  /** The reporter's standing, 0..1 (0 ignores the report). */
  weight: number
  /** Observed throughput, bytes/s. */
  throughput?: number
  /** Bytes failed verification (unproven: counts `integrityReportWeight` failures). */
  integrityFailure?: boolean
}

export interface SelectQuery {
  /** Content id text, or a parsed CID. */
  cid: string | Cid
  /** Nodes wanted, 1..maxCount. */
  count: number
  /** The client's region; its nodes come first, then its neighbours', then the rest. */
  region?: string
  /** Node ids not to return (e.g. the ones that just failed the client). */
  exclude?: readonly string[]
}

export interface RestoreOptions {
  /** How long restored nodes stay selectable without a new answer (ms, 0..downAfterMs; default 0). */
  graceMs?: number
}

export interface SelectedNode<M> {
  node: string
  region: string
  score: number
  meta: M | undefined
}

export interface NodeView<M> {
  node: string
  region: string
  status: NodeStatus
  eligible: boolean
  score: number
  placementWeight: number
  meta: M | undefined
}

export interface NodeExplanation {
  node: string
  region: string
  status: NodeStatus
  /** Selectable right now. */
  eligible: boolean
  score: number
  formula: string
  components: ScoreComponents
  figures: NodeFigures
  /** Weight the node is placed with, and what its current score and capacity would give. */
  placementWeight: number
  targetWeight: number
}

export interface RegionStats {
  nodes: number
  byStatus: Record<NodeStatus, number>
  placementWeight: number
}

export interface IndexStats {
  nodes: number
  byStatus: Record<NodeStatus, number>
  regions: Record<string, RegionStats>
}

export interface NodeIndex<M = unknown> {
  readonly options: ResolvedNodeIndexOptions
  /** Registered nodes. */
  readonly size: number
  /** Registers a node or updates its region, capacity and meta; state is kept on update. */
  upsert(node: string, fields: NodeFields<M>): NodeStatus
  remove(node: string): boolean
  has(node: string): boolean
  applyProbe(node: string, result: ProbeResult): NodeStatus
  applyHeartbeat(node: string, heartbeat: Heartbeat): NodeStatus
  applyReport(node: string, report: ClientReport): NodeStatus
  /** A proven integrity failure (failed audit, or a client's verified evidence). */
  applyIntegrityFailure(node: string): { status: NodeStatus; coolOffUntil: number }
  /** Flags (out of selection) or clears a node. */
  setFlagged(node: string, flagged: boolean): NodeStatus
  get(node: string): NodeView<M> | undefined
  /** Every component of the score and the figures behind it. */
  explain(node: string): NodeExplanation
  score(node: string): number
  /** The best `count` eligible nodes for the CID and client, best first (fewer when too few are eligible). */
  select(query: SelectQuery): SelectedNode<M>[]
  /** Counts by status and region (a scan of every node). */
  stats(): IndexStats
  /** Known region names. */
  regions(): string[]
  /** The persistent row of one node. */
  row(node: string): NodeStateRow | undefined
  /** The persistent rows of every node. */
  snapshot(): Generator<NodeStateRow>
  /**
   * Loads rows (as made by `row`/`snapshot`), replacing nodes already present; returns
   * how many. Rows are the truth: a node whose last answer is older than `downAfterMs`
   * is down. With `graceMs` (≤ downAfterMs), nodes that answered before the restart stay
   * selectable for `graceMs` after it unless a probe says otherwise — time for the probe
   * loop to run a round (`probeIntervalMs` is the natural value).
   */
  restore(rows: Iterable<NodeStateRow & { meta?: M }>, options?: RestoreOptions): number
  /**
   * Marks down every node that has answered no probe for `downAfterMs` (a backstop for a
   * probe loop that fell behind), visiting at most `max` nodes round-robin; returns how many.
   */
  sweep(options?: { max?: number }): number
}

function checkAddress(what: string, node: unknown): string {
  if (typeof node !== 'string' || !ADDRESS_RE.test(node)) {
    throw new InvalidArgumentError(
      `${what} must be a 0x-prefixed 20-byte hex address, got ${JSON.stringify(node)}`,
    )
  }
  return node
}

function checkObject(what: string, value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null) throw new InvalidArgumentError(`${what} must be an object`)
  return value as Record<string, unknown>
}

function checkRate(what: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > MAX_RATE) {
    throw new InvalidArgumentError(
      `${what} must be a number from ${min} to ${MAX_RATE}, got ${String(value)}`,
    )
  }
  return value
}

function emptyCounts(): Record<NodeStatus, number> {
  const counts = {} as Record<NodeStatus, number>
  for (const s of NODE_STATUSES) counts[s] = 0
  return counts
}

class NodeIndexImpl<M> implements NodeIndex<M> {
  readonly options: ResolvedNodeIndexOptions
  private readonly clock: () => number
  private readonly table: NodeTable
  private readonly placement: Placement
  private readonly slots = new Map<string, number>()
  private readonly ids: (string | undefined)[] = []
  private readonly metas: (M | undefined)[] = []
  private readonly free: number[] = []
  private readonly known = new Set<string>()
  private highWater = 0
  private sweepCursor = 0
  private readonly out: Int32Array
  private readonly excluded: Int32Array
  private regionKeys = new Float64Array(0)

  constructor(options: ResolvedNodeIndexOptions, components: NodeIndexComponents) {
    this.options = options
    this.clock = components.clock ?? Date.now
    if (typeof this.clock !== 'function') throw new InvalidArgumentError('clock must be a function')
    this.table = new NodeTable(options.scoring, options.initialCapacity)
    this.placement = new Placement(
      options.bucketsPerRegion,
      options.seed,
      options.maxCount,
      options.initialCapacity,
    )
    this.out = new Int32Array(options.maxCount)
    this.excluded = new Int32Array(Math.max(1, options.maxExclude))
    for (const r of options.regions) this.regionFor(r)
    for (const [from, list] of options.regionNeighbors) {
      this.regionFor(from)
      for (const to of list) this.regionFor(to)
    }
  }

  get size(): number {
    return this.slots.size
  }

  private regionFor(name: string): Region {
    const existing = this.placement.regionByName.get(name)
    if (existing !== undefined) return existing
    if (this.placement.regions.length >= this.options.maxRegions) {
      throw new InvalidArgumentError(`too many regions: at most ${this.options.maxRegions} (maxRegions)`)
    }
    this.known.add(name)
    return this.placement.region(name, hashString(name, this.options.seed ^ 0x2545f491))
  }

  private slotOf(node: string): number {
    const slot = typeof node === 'string' ? this.slots.get(node.toLowerCase()) : undefined
    if (slot === undefined) {
      checkAddress('node', node)
      throw new NotFoundError(`no registered node ${node}`)
    }
    return slot
  }

  private allocate(node: string, key: string, now: number): number {
    let slot = this.free.pop()
    if (slot === undefined) {
      slot = this.highWater++
      if (slot >= this.table.size) {
        const length = Math.ceil(this.table.size * 1.5) + 16
        this.table.resize(length)
        this.placement.resize(length)
      }
    }
    this.table.reset(slot, now)
    this.ids[slot] = node
    this.metas[slot] = undefined
    this.slots.set(key, slot)
    return slot
  }

  /** Recomputes the placement weight (with hysteresis) and the eligibility hint. */
  private refresh(slot: number, now: number): void {
    const target = this.targetWeight(slot, now)
    const cur = this.placement.nodeWeight[slot]!
    const h = this.options.weightHysteresis
    const next = cur === 0 || target === 0 || target > cur * h || target * h < cur ? target : cur
    this.placement.update(slot, next, next > 0 && this.table.eventEligible(slot) ? 1 : 0)
  }

  private targetWeight(slot: number, now: number): number {
    const t = this.table
    if ((t.flags[slot]! & NODE_FLAG.answered) === 0) return 0
    const x = (t.score(slot, now) * t.placementCapacity(slot)) / this.options.weightUnit
    return x > 0 ? Math.min(0xffff_ffff, Math.max(1, Math.round(x))) : 0
  }

  upsert(node: string, fields: NodeFields<M>): NodeStatus {
    checkAddress('node', node)
    const f = checkObject('node fields', fields)
    const regionName = checkRegionName('region', f.region)
    const capacity = f.capacity
    if (
      typeof capacity !== 'number' ||
      !Number.isFinite(capacity) ||
      capacity < 0 ||
      capacity > Number.MAX_SAFE_INTEGER
    ) {
      throw new InvalidArgumentError(
        `capacity must be a number of bytes/s from 0 to 2^53 − 1, got ${String(capacity)}`,
      )
    }
    const region = this.regionFor(regionName)
    const now = this.clock()
    const key = node.toLowerCase()
    let slot = this.slots.get(key)
    if (slot === undefined) {
      slot = this.allocate(node, key, now)
      this.placement.insert(slot, region, hashString(key, this.options.seed))
    } else if (this.placement.nodeRegion[slot] !== region.id) {
      this.placement.remove(slot)
      this.placement.insert(slot, region, hashString(key, this.options.seed))
    }
    if ('meta' in f) this.metas[slot] = fields.meta
    this.table.setCapacity(slot, capacity)
    this.refresh(slot, now)
    return this.table.status(slot, now)
  }

  remove(node: string): boolean {
    if (typeof node !== 'string') return false
    const key = node.toLowerCase()
    const slot = this.slots.get(key)
    if (slot === undefined) return false
    this.placement.remove(slot)
    this.table.release(slot)
    this.slots.delete(key)
    this.ids[slot] = undefined
    this.metas[slot] = undefined
    this.free.push(slot)
    return true
  }

  has(node: string): boolean {
    return typeof node === 'string' && this.slots.has(node.toLowerCase())
  }

  applyProbe(node: string, result: ProbeResult): NodeStatus {
    const slot = this.slotOf(node)
    const r = checkObject('probe result', result)
    if (typeof r.answered !== 'boolean')
      throw new InvalidArgumentError('probe result.answered must be a boolean')
    let rtt = 0
    if (r.answered) {
      rtt = r.rttMs as number
      if (typeof rtt !== 'number' || !Number.isFinite(rtt) || rtt < 0 || rtt > MAX_RTT_MS) {
        throw new InvalidArgumentError(
          `probe rttMs must be a number from 0 to ${MAX_RTT_MS}, got ${String(r.rttMs)}`,
        )
      }
    }
    const now = this.clock()
    this.table.recordProbe(slot, r.answered, rtt, now)
    this.refresh(slot, now)
    return this.table.status(slot, now)
  }

  applyHeartbeat(node: string, heartbeat: Heartbeat): NodeStatus {
    const slot = this.slotOf(node)
    const load = checkRate('heartbeat load', checkObject('heartbeat', heartbeat).load, 0)
    const now = this.clock()
    this.table.recordHeartbeat(slot, load, now)
    this.refresh(slot, now)
    return this.table.status(slot, now)
  }

  applyReport(node: string, report: ClientReport): NodeStatus {
    const slot = this.slotOf(node)
    const r = checkObject('report', report)
    if (typeof r.ok !== 'boolean') throw new InvalidArgumentError('report.ok must be a boolean')
    const weight = r.weight
    if (typeof weight !== 'number' || !Number.isFinite(weight) || weight < 0 || weight > 1) {
      throw new InvalidArgumentError(`report.weight must be a number from 0 to 1, got ${String(weight)}`)
    }
    const throughput =
      r.throughput === undefined ? Number.NaN : checkRate('report.throughput', r.throughput, 0)
    if (r.integrityFailure !== undefined && typeof r.integrityFailure !== 'boolean') {
      throw new InvalidArgumentError('report.integrityFailure must be a boolean')
    }
    const now = this.clock()
    if (weight > 0) {
      this.table.recordReport(slot, r.ok, r.integrityFailure === true, throughput, weight, now)
      this.refresh(slot, now)
    }
    return this.table.status(slot, now)
  }

  applyIntegrityFailure(node: string): { status: NodeStatus; coolOffUntil: number } {
    const slot = this.slotOf(node)
    const now = this.clock()
    const coolOffUntil = this.table.recordIntegrityFailure(slot, now)
    this.refresh(slot, now)
    return { status: this.table.status(slot, now), coolOffUntil }
  }

  setFlagged(node: string, flagged: boolean): NodeStatus {
    const slot = this.slotOf(node)
    if (typeof flagged !== 'boolean') throw new InvalidArgumentError('flagged must be a boolean')
    const now = this.clock()
    this.table.setFlagged(slot, flagged)
    this.refresh(slot, now)
    return this.table.status(slot, now)
  }

  private eligibleAt(slot: number, now: number): boolean {
    return this.placement.hintOf(slot) === 1 && this.table.timeEligible(slot, now)
  }

  get(node: string): NodeView<M> | undefined {
    const slot = typeof node === 'string' ? this.slots.get(node.toLowerCase()) : undefined
    if (slot === undefined) return undefined
    const now = this.clock()
    return {
      node: this.ids[slot]!,
      region: this.regionName(slot),
      status: this.table.status(slot, now),
      eligible: this.eligibleAt(slot, now),
      score: this.table.score(slot, now),
      placementWeight: this.placement.nodeWeight[slot]!,
      meta: this.metas[slot],
    }
  }

  private regionName(slot: number): string {
    return this.placement.regions[this.placement.nodeRegion[slot]!]!.name
  }

  explain(node: string): NodeExplanation {
    const slot = this.slotOf(node)
    const now = this.clock()
    const figures = this.table.figures(slot, now)
    const components = computeScore(
      {
        answered: figures.answered,
        probes: figures.probes,
        latencyMs: figures.latencyMs ?? undefined,
        successes: figures.successes,
        failures: figures.failures,
        throughput: figures.throughput ?? undefined,
        integrityFailures: figures.integrityFailures,
      },
      this.options.scoring,
    )
    return {
      node: this.ids[slot]!,
      region: this.regionName(slot),
      status: figures.status,
      eligible: this.eligibleAt(slot, now),
      score: components.score,
      formula: SCORE_FORMULA,
      components,
      figures,
      placementWeight: this.placement.nodeWeight[slot]!,
      targetWeight: this.targetWeight(slot, now),
    }
  }

  score(node: string): number {
    return this.table.score(this.slotOf(node), this.clock())
  }

  select(query: SelectQuery): SelectedNode<M>[] {
    const q = checkObject('select query', query)
    const k = q.count
    const maxCount = this.options.maxCount
    if (!Number.isSafeInteger(k) || (k as number) < 1 || (k as number) > maxCount) {
      throw new InvalidArgumentError(`count must be an integer from 1 to ${maxCount}, got ${String(k)}`)
    }
    const count = k as number
    let root: Uint8Array
    if (typeof q.cid === 'string') root = parseCid(q.cid).root
    else if (
      typeof q.cid === 'object' &&
      q.cid !== null &&
      (q.cid as Cid).root instanceof Uint8Array &&
      (q.cid as Cid).root.length === 32
    ) {
      root = (q.cid as Cid).root
    } else throw new InvalidCidError('cid must be a content id string or a parsed CID')
    let region: Region | undefined
    if (q.region !== undefined) {
      const name = checkRegionName('region', q.region)
      if (!this.known.has(name)) throw new InvalidArgumentError(`unknown region ${JSON.stringify(name)}`)
      region = this.placement.regionByName.get(name)
    }
    let excludedCount = 0
    if (q.exclude !== undefined) {
      if (!Array.isArray(q.exclude)) throw new InvalidArgumentError('exclude must be an array of node ids')
      if (q.exclude.length > this.options.maxExclude) {
        throw new InvalidArgumentError(
          `exclude may list at most ${this.options.maxExclude} nodes, got ${q.exclude.length}`,
        )
      }
      for (const id of q.exclude) {
        const slot = this.slots.get(checkAddress('exclude[]', id).toLowerCase())
        if (slot !== undefined) this.excluded[excludedCount++] = slot
      }
    }

    const now = this.clock()
    const [a, b] = cidWords(root, this.options.seed)
    const placement = this.placement
    const out = this.out
    let n = 0
    const regions = placement.regions
    if (this.regionKeys.length < regions.length) this.regionKeys = new Float64Array(this.options.maxRegions)
    const keys = this.regionKeys
    let rest = false
    if (region !== undefined) {
      n = placement.fill(region, a, b, count, out, n, this.table, now, this.excluded, excludedCount)
      if (n < count) {
        const neighbors = this.options.regionNeighbors.get(region.name) ?? []
        for (let i = 0; i < neighbors.length && n < count; i++) {
          const r = placement.regionByName.get(neighbors[i]!)
          if (r !== undefined)
            n = placement.fill(r, a, b, count - n, out, n, this.table, now, this.excluded, excludedCount)
        }
        if (n < count) {
          // Every other region: mark the visited ones, then fill by region key below.
          rest = true
          for (let i = 0; i < regions.length; i++) keys[i] = 0
          keys[region.id] = Infinity
          for (const name of neighbors) {
            const r = placement.regionByName.get(name)
            if (r !== undefined) keys[r.id] = Infinity
          }
        }
      }
    } else {
      rest = true
      for (let i = 0; i < regions.length; i++) keys[i] = 0
    }
    if (rest) {
      // A stable per-CID order of regions, weighted by each region's placement weight.
      for (let i = 0; i < regions.length; i++) {
        const r = regions[i]!
        keys[i] = keys[i] === Infinity || r.hintCount === 0 ? Infinity : placement.regionKey(r, a, b)
      }
      while (n < count) {
        let best = -1
        let bestKey = Infinity
        for (let i = 0; i < regions.length; i++) {
          if (keys[i]! < bestKey) {
            bestKey = keys[i]!
            best = i
          }
        }
        if (best < 0) break
        keys[best] = Infinity
        n = placement.fill(
          regions[best]!,
          a,
          b,
          count - n,
          out,
          n,
          this.table,
          now,
          this.excluded,
          excludedCount,
        )
      }
    }
    const result: SelectedNode<M>[] = new Array(n)
    for (let i = 0; i < n; i++) {
      const slot = out[i]!
      result[i] = {
        node: this.ids[slot]!,
        region: this.regionName(slot),
        score: this.table.score(slot, now),
        meta: this.metas[slot],
      }
    }
    return result
  }

  stats(): IndexStats {
    const now = this.clock()
    const byStatus = emptyCounts()
    const perRegion = this.placement.regions.map(() => emptyCounts())
    const flags = this.table.flags
    for (let slot = 0; slot < this.highWater; slot++) {
      if ((flags[slot]! & NODE_FLAG.inUse) === 0) continue
      const s = this.table.status(slot, now)
      byStatus[s]++
      perRegion[this.placement.nodeRegion[slot]!]![s]++
    }
    const regions: Record<string, RegionStats> = {}
    for (const r of this.placement.regions) {
      regions[r.name] = { nodes: r.nodes, byStatus: perRegion[r.id]!, placementWeight: r.totalWeight }
    }
    return { nodes: this.slots.size, byStatus, regions }
  }

  regions(): string[] {
    return [...this.known].sort()
  }

  private rowOf(slot: number): NodeStateRow {
    const t = this.table
    const nullIfNaN = (v: number): number | null => (Number.isNaN(v) ? null : v)
    const cool = t.coolOffUntil[slot]!
    return {
      node: this.ids[slot]!,
      region: this.regionName(slot),
      capacity: t.capacity[slot]!,
      registeredAt: t.registeredAt[slot]!,
      flagged: (t.flags[slot]! & NODE_FLAG.flagged) !== 0,
      latencyMs: nullIfNaN(t.latency[slot]!),
      lastAnsweredAt: nullIfNaN(t.lastAnsweredAt[slot]!),
      lastProbeAt: nullIfNaN(t.lastProbeAt[slot]!),
      consecutiveMisses: t.misses[slot]!,
      uptime: ringToString(t.ring, slot),
      successes: t.successes[slot]!,
      failures: t.failures[slot]!,
      reportAt: nullIfNaN(t.reportAt[slot]!),
      throughput: nullIfNaN(t.throughput[slot]!),
      integrityFailures: t.integrity[slot]!,
      coolOffUntil: cool > 0 ? cool : null,
      load: t.load[slot]!,
      heartbeatAt: nullIfNaN(t.heartbeatAt[slot]!),
      placementWeight: this.placement.nodeWeight[slot]!,
    }
  }

  row(node: string): NodeStateRow | undefined {
    const slot = typeof node === 'string' ? this.slots.get(node.toLowerCase()) : undefined
    return slot === undefined ? undefined : this.rowOf(slot)
  }

  *snapshot(): Generator<NodeStateRow> {
    for (let slot = 0; slot < this.highWater; slot++) {
      if (this.ids[slot] !== undefined) yield this.rowOf(slot)
    }
  }

  restore(rows: Iterable<NodeStateRow & { meta?: M }>, options: RestoreOptions = {}): number {
    if (rows === null || typeof (rows as Iterable<unknown>)?.[Symbol.iterator] !== 'function') {
      throw new InvalidArgumentError('restore takes an iterable of rows')
    }
    const t = this.table
    const downAfterMs = this.options.scoring.downAfterMs
    const graceMs = checkObject('restore options', options).graceMs ?? 0
    if (typeof graceMs !== 'number' || !Number.isFinite(graceMs) || graceMs < 0 || graceMs > downAfterMs) {
      throw new InvalidArgumentError(
        `graceMs must be a number from 0 to downAfterMs (${downAfterMs}), got ${String(graceMs)}`,
      )
    }
    let i = 0
    for (const input of rows) {
      const row = checkRow(i, input)
      let region: Region
      try {
        region = this.regionFor(checkRegionName('region', row.region))
      } catch (err) {
        throw new InvalidArgumentError(`row ${i}: ${(err as Error).message}`, { cause: err })
      }
      const key = row.node.toLowerCase()
      let slot = this.slots.get(key)
      if (slot === undefined) {
        slot = this.allocate(row.node, key, row.registeredAt)
        this.placement.insert(slot, region, hashString(key, this.options.seed))
      } else {
        this.placement.remove(slot)
        this.placement.insert(slot, region, hashString(key, this.options.seed))
        t.reset(slot, row.registeredAt)
      }
      t.latency[slot] = row.latencyMs ?? Number.NaN
      t.lastAnsweredAt[slot] = row.lastAnsweredAt ?? Number.NaN
      t.lastProbeAt[slot] = row.lastProbeAt ?? Number.NaN
      ringFromString(t.ring, slot, row.uptime)
      t.misses[slot] = row.consecutiveMisses
      t.successes[slot] = row.successes
      t.failures[slot] = row.failures
      t.reportAt[slot] = row.reportAt ?? Number.NaN
      t.throughput[slot] = row.throughput ?? Number.NaN
      t.integrity[slot] = row.integrityFailures
      t.coolOffUntil[slot] = row.coolOffUntil ?? 0
      t.heartbeatAt[slot] = row.heartbeatAt ?? Number.NaN
      t.load[slot] = row.load
      let flags = NODE_FLAG.inUse
      if (row.lastAnsweredAt !== null) flags |= NODE_FLAG.answered
      if (row.flagged) flags |= NODE_FLAG.flagged
      t.flags[slot] = flags
      t.setCapacity(slot, row.capacity)
      if (input !== null && typeof input === 'object' && 'meta' in input) this.metas[slot] = input.meta
      const weight = (flags & NODE_FLAG.answered) !== 0 ? row.placementWeight : 0
      this.placement.update(slot, weight, weight > 0 && t.eventEligible(slot) ? 1 : 0)
      i++
    }
    if (graceMs > 0) t.answeredFloor = Math.max(t.answeredFloor, this.clock() - downAfterMs + graceMs)
    return i
  }

  sweep(options: { max?: number } = {}): number {
    const max = options.max ?? this.highWater
    if (!Number.isSafeInteger(max) || max < 0)
      throw new InvalidArgumentError(`max must be an integer ≥ 0, got ${max}`)
    const now = this.clock()
    let marked = 0
    const visits = Math.min(max, this.highWater)
    for (let i = 0; i < visits; i++) {
      if (this.sweepCursor >= this.highWater) this.sweepCursor = 0
      const slot = this.sweepCursor++
      if ((this.table.flags[slot]! & NODE_FLAG.inUse) === 0) continue
      if (this.table.markStale(slot, now)) {
        this.refresh(slot, now)
        marked++
      }
    }
    return marked
  }
}

/**
 * Creates an empty node index.
 *
 * @example
 * const index = createNodeIndex<{ url: string }>({ probeIntervalMs: 30_000, regions: ['eu-west'] })
 * index.upsert(record.node, { region: record.region, capacity: record.capacity, meta: { url: record.httpUrl } })
 * index.applyProbe(record.node, { answered: true, rttMs: 42 })
 * index.select({ cid, count: 3, region: 'eu-west' }) // [{ node, region, score, meta }, …]
 */
export function createNodeIndex<M = unknown>(
  init: NodeIndexInit = {},
  components: NodeIndexComponents = {},
): NodeIndex<M> {
  if (typeof components !== 'object' || components === null) {
    throw new InvalidArgumentError('node index components must be an object')
  }
  return new NodeIndexImpl<M>(resolveNodeIndexOptions(init), components)
}
