/**
 * In-process selection figures of the tracker's node index.
 *
 * - Builds indexes of 10k, 100k and 1M synthetic nodes: 12 regions of Zipf-like sizes,
 *   capacities log-uniform from 1 to 100 MB/s, probe RTTs from 10 to 300 ms, and a
 *   realistic share of trouble: 3% down, 1% never reachable, 1% over capacity,
 *   0.5% flagged, 0.3% cooling off after an integrity failure.
 * - Times 3 × 50k `select` calls per size (median of the three p99s) (CID text parsed on every call, k = 3, the
 *   client region drawn like the node regions, 10% with no region), one call at a time.
 * - Baseline, same run: weighted rendezvous by full scan over the client region's
 *   eligible nodes (hashes and weights in typed arrays — the best case of the naive way).
 * - Memory per node: heap + external growth across building the 1M index, after
 *   `global.gc()` on both sides, every address string created inside the window.
 * - Build (upsert + probes + events) and restore (from `snapshot()` rows) of 1M nodes.
 * - Stability on a 1k-node network (10k CIDs, k = 3): share of CIDs that keep their
 *   set when one node joins; when a selected node goes down, CIDs moved per CID that had it.
 * - Load spread: χ² per degree of freedom of first-place counts against weights.
 */
import os from 'node:os'
import { formatCid } from '@shoal/protocol'
import { createNodeIndex, hashString, type NodeIndex, pairHash, rendezvousKey } from '@shoal/tracker'
import { type Metric, median, quantile, round } from '../src/results.ts'

const REGIONS = [
  'us-east',
  'eu-west',
  'ap-southeast',
  'us-west',
  'eu-central',
  'ap-northeast',
  'sa-east',
  'ap-south',
  'ca-central',
  'me-central',
  'af-south',
  'oc-east',
] as const
const REGION_WEIGHTS = REGIONS.map((_, i) => 1 / (i + 1) ** 0.8)
const PROBE_INTERVAL_MS = 30_000
const K = 3
/** Timed selections per size: REPS repetitions of SELECTIONS_PER_REP, after a warm-up. */
const REPS = 3
const SELECTIONS_PER_REP = 50_000
const WARMUP = 20_000
/** Extra warm-up before the first size, so JIT tiering does not land in the 10k figures. */
const FIRST_WARMUP = 60_000
const SCAN_SELECTIONS = { 10000: 4000, 100000: 1000, 1000000: 200 } as Record<number, number>
const T0 = 1_760_000_000_000

/** xorshift32 — a deterministic stream, so every run builds the same network. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1
  return () => {
    s ^= s << 13
    s >>>= 0
    s ^= s >>> 17
    s ^= s << 5
    s >>>= 0
    return s / 4_294_967_296
  }
}

function address(random: () => number): string {
  let hex = '0x'
  for (let w = 0; w < 5; w++)
    hex += Math.floor(random() * 4_294_967_296)
      .toString(16)
      .padStart(8, '0')
  return hex
}

function pickRegion(random: () => number): string {
  const total = REGION_WEIGHTS.reduce((a, b) => a + b, 0)
  let x = random() * total
  for (let i = 0; i < REGIONS.length; i++) {
    x -= REGION_WEIGHTS[i]!
    if (x <= 0) return REGIONS[i]!
  }
  return REGIONS[0]!
}

interface Built {
  index: NodeIndex
  clock: { now: number }
  seconds: number
}

/** Builds an index of `n` synthetic nodes; keeps no reference to their addresses. */
function build(n: number, seed: number): Built {
  const random = rng(seed)
  const clock = { now: T0 }
  const index = createNodeIndex(
    { probeIntervalMs: PROBE_INTERVAL_MS, initialCapacity: n, regions: [...REGIONS], seed: 0x5eed },
    { clock: () => clock.now },
  )
  const t = performance.now()
  for (let i = 0; i < n; i++) {
    const node = address(random)
    const capacity = Math.round(10 ** (6 + 2 * random()))
    index.upsert(node, { region: pickRegion(random), capacity })
    const trouble = random()
    if (trouble < 0.01) continue // never reachable
    index.applyProbe(node, { answered: true, rttMs: 10 + 290 * random() ** 2 })
    if (trouble < 0.04) {
      index.applyProbe(node, { answered: false })
      index.applyProbe(node, { answered: false })
    } else if (trouble < 0.05) index.applyHeartbeat(node, { load: capacity })
    else if (trouble < 0.055) index.setFlagged(node, true)
    else if (trouble < 0.058) index.applyIntegrityFailure(node)
    else if (trouble < 0.3) {
      index.applyReport(node, {
        ok: random() < 0.97,
        weight: random(),
        throughput: 10 ** (5 + 2.5 * random()),
      })
    }
  }
  return { index, clock, seconds: (performance.now() - t) / 1000 }
}

function cids(count: number, seed: number): string[] {
  const random = rng(seed)
  return Array.from({ length: count }, () => {
    const root = new Uint8Array(32)
    for (let i = 0; i < 32; i++) root[i] = Math.floor(random() * 256)
    return formatCid({ chunkSize: 262_144, size: Math.floor(random() * 2 ** 30), root }).text
  })
}

function queries(count: number, seed: number) {
  const random = rng(seed)
  const texts = cids(20_000, seed + 1)
  return Array.from({ length: count }, (_, i) => {
    const cid = texts[i % texts.length]!
    return random() < 0.1 ? { cid, count: K } : { cid, count: K, region: pickRegion(random) }
  })
}

/** Per-call latencies (ms) of `index.select` over `qs`. */
function timeSelect(index: NodeIndex, qs: ReturnType<typeof queries>): number[] {
  const out = new Array<number>(qs.length)
  let sink = 0
  for (let i = 0; i < qs.length; i++) {
    const t = performance.now()
    sink += index.select(qs[i]!).length
    out[i] = performance.now() - t
  }
  if (sink < K * qs.length)
    throw new Error(`selection returned fewer than ${K} nodes (${sink} for ${qs.length} calls)`)
  return out
}

/** p50 and p99 of each repetition (fresh queries each time), after a warm-up. */
function timeReps(index: NodeIndex, seed: number, warmup: number) {
  const warm = queries(warmup, seed)
  for (const q of warm) index.select(q)
  const reps: { p50: number; p99: number; p999: number; cpuShare: number }[] = []
  let first: ReturnType<typeof queries> = []
  for (let r = 0; r < REPS; r++) {
    const qs = queries(SELECTIONS_PER_REP, seed + 100 * (r + 1))
    if (r === 0) first = qs
    // CPU time ÷ wall time of the repetition: well below 1 means other processes took the CPU
    const cpu0 = process.cpuUsage()
    const wall0 = performance.now()
    const lat = timeSelect(index, qs)
    const cpu = process.cpuUsage(cpu0)
    const cpuShare = (cpu.user + cpu.system) / 1000 / (performance.now() - wall0)
    reps.push({ p50: quantile(lat, 0.5), p99: quantile(lat, 0.99), p999: quantile(lat, 0.999), cpuShare })
  }
  return {
    p50: median(reps.map((x) => x.p50)),
    p99: median(reps.map((x) => x.p99)),
    p999: median(reps.map((x) => x.p999)),
    p99s: reps.map((x) => x.p99),
    cpuShares: reps.map((x) => round(x.cpuShare, 2)),
    queries: first,
  }
}

/**
 * The naive alternative: weighted rendezvous over every eligible node of the client's
 * region, from typed arrays of node hashes and weights (snapshot of the index).
 */
function scanBaseline(index: NodeIndex) {
  const byRegion = new Map<string, { hashes: Uint32Array; weights: Float64Array; n: number }>()
  const groups = new Map<string, { h: number[]; w: number[] }>()
  for (const row of index.snapshot()) {
    const view = index.get(row.node)!
    if (!view.eligible) continue
    let g = groups.get(row.region)
    if (g === undefined) {
      g = { h: [], w: [] }
      groups.set(row.region, g)
    }
    g.h.push(hashString(row.node.toLowerCase(), 0x5eed))
    g.w.push(view.placementWeight)
  }
  for (const [r, g] of groups) {
    byRegion.set(r, { hashes: Uint32Array.from(g.h), weights: Float64Array.from(g.w), n: g.h.length })
  }
  const all = {
    hashes: Uint32Array.from([...groups.values()].flatMap((g) => g.h)),
    weights: Float64Array.from([...groups.values()].flatMap((g) => g.w)),
    n: [...groups.values()].reduce((s, g) => s + g.h.length, 0),
  }
  const top = new Float64Array(K)
  return (q: { cid: string; region?: string }): number => {
    const { root } = { root: Buffer.from(q.cid.slice(1, 17)) } // stand-in for parseCid: cost is negligible here
    const a = root.readUInt32BE(0)
    const b = root.readUInt32BE(4)
    const set = q.region === undefined ? all : (byRegion.get(q.region) ?? all)
    top.fill(Number.POSITIVE_INFINITY)
    for (let i = 0; i < set.n; i++) {
      const key = rendezvousKey(pairHash(set.hashes[i]!, a, b), set.weights[i]!)
      if (key >= top[K - 1]!) continue
      let j = K - 1
      while (j > 0 && top[j - 1]! > key) {
        top[j] = top[j - 1]!
        j--
      }
      top[j] = key
    }
    return top[0]!
  }
}

function timeScan(
  scan: (q: { cid: string; region?: string }) => number,
  qs: ReturnType<typeof queries>,
): number[] {
  for (let i = 0; i < Math.min(50, qs.length); i++) scan(qs[i]!)
  return qs.map((q) => {
    const t = performance.now()
    scan(q)
    return performance.now() - t
  })
}

function gc(): void {
  const g = globalThis.gc
  if (typeof g !== 'function')
    throw new Error('run with --expose-gc (benchmarks/tracker/run.ts re-spawns itself)')
  g()
  g()
}

function memory(): number {
  const m = process.memoryUsage()
  return m.heapUsed + m.external
}

const ms = (v: number) => round(v, 4)

/** Stability and spread on a 1k-node network: share of CIDs keeping their sets. */
function stability() {
  const n = 1000
  const clock = { now: T0 }
  const index = createNodeIndex({ probeIntervalMs: PROBE_INTERVAL_MS }, { clock: () => clock.now })
  const random = rng(77)
  const nodes = Array.from({ length: n }, () => address(random))
  const regions = ['us-east', 'eu-west', 'ap-south']
  for (const [i, node] of nodes.entries()) {
    index.upsert(node, { region: regions[i % 3]!, capacity: Math.round(10 ** (6 + 2 * random())) })
  }
  for (let r = 0; r < 64; r++) {
    clock.now += PROBE_INTERVAL_MS
    for (const node of nodes) index.applyProbe(node, { answered: true, rttMs: 40 })
  }
  const texts = cids(10_000, 99)
  const place = (region?: string) =>
    texts.map((cid) =>
      index.select({ cid, count: K, ...(region === undefined ? {} : { region }) }).map((s) => s.node),
    )
  const same = (a: string[], b: string[]) => a.length === b.length && a.every((x) => b.includes(x))
  const kept = (a: string[][], b: string[][]) => a.filter((p, i) => same(p, b[i]!)).length / a.length

  const before = place('eu-west')
  const beforeAll = place()
  const joins: number[] = []
  const joinsAll: number[] = []
  const ideal: number[] = []
  const overIdeal: number[] = []
  for (let j = 0; j < 10; j++) {
    const joiner = address(random)
    index.upsert(joiner, { region: 'eu-west', capacity: Math.round(10 ** (6 + 2 * random())) })
    index.applyProbe(joiner, { answered: true, rttMs: 40 })
    const k = kept(before, place('eu-west'))
    joins.push(k)
    joinsAll.push(kept(beforeAll, place()))
    // the least any placement could move: the joiner's share of a top-3 in the region
    const least = (K * index.get(joiner)!.placementWeight) / index.stats().regions['eu-west']!.placementWeight
    ideal.push(1 - least)
    overIdeal.push((1 - k) / least)
    index.remove(joiner)
  }
  // a selected node goes down: how many CIDs change, against how many had it
  let changed = 0
  let had = 0
  let unrelatedChanged = 0
  for (let v = 0; v < 10; v++) {
    const victim = before[v * 97]![0]!
    clock.now += PROBE_INTERVAL_MS
    for (const node of nodes) if (node !== victim) index.applyProbe(node, { answered: true, rttMs: 40 })
    index.applyProbe(victim, { answered: false })
    clock.now += PROBE_INTERVAL_MS
    for (const node of nodes) if (node !== victim) index.applyProbe(node, { answered: true, rttMs: 40 })
    index.applyProbe(victim, { answered: false })
    const after = place('eu-west')
    for (let i = 0; i < before.length; i++) {
      const moved = !same(before[i]!, after[i]!)
      if (before[i]!.includes(victim)) {
        had++
        if (moved) changed++
      } else if (moved) unrelatedChanged++
    }
    index.applyProbe(victim, { answered: true, rttMs: 40 })
  }
  // spread: first places against placement weights, one region of ~333 nodes
  const counts = new Map<string, number>()
  const draws = cids(100_000, 123)
  for (const cid of draws) {
    const first = index.select({ cid, count: 1, region: 'eu-west' })[0]!.node
    counts.set(first, (counts.get(first) ?? 0) + 1)
  }
  const members = nodes.filter((_, i) => i % 3 === 1)
  const weights = members.map((m) => index.get(m)!.placementWeight)
  const total = weights.reduce((a, b) => a + b, 0)
  let chi2 = 0
  let worst = 0
  members.forEach((m, i) => {
    const expected = (draws.length * weights[i]!) / total
    const observed = counts.get(m) ?? 0
    chi2 += (observed - expected) ** 2 / expected
    worst = Math.max(worst, observed / expected)
  })
  return {
    joinKept: Math.min(...joins),
    joinKeptMedian: median(joins),
    joinKeptAllRegions: Math.min(...joinsAll),
    idealKeptMedian: median(ideal),
    idealKeptMin: Math.min(...ideal),
    movementOverLeast: median(overIdeal),
    movementOverLeastMax: Math.max(...overIdeal),
    downChangedPerHad: changed / had,
    downHad: had,
    downUnrelatedChanged: unrelatedChanged,
    chi2PerDof: chi2 / (members.length - 1),
    spreadMaxOverExpected: worst,
    spreadNodes: members.length,
  }
}

export async function selectionSuite(): Promise<Record<string, Metric>> {
  const detail: Record<string, unknown> = {}
  const sizes = [10_000, 100_000, 1_000_000]
  let p99at1m = Number.NaN
  let bytesPerNode = Number.NaN
  let build1m = Number.NaN
  let memoryDetail: Record<string, unknown> = {}
  let restoreDetail: Record<string, number> = {}
  let updatesPerSecond = Number.NaN
  for (const n of sizes) {
    gc()
    const m0 = memory()
    const rss0 = process.memoryUsage().rss
    const built = build(n, n)
    gc()
    const bytes = (memory() - m0) / n
    const rssBytes = (process.memoryUsage().rss - rss0) / n
    const label = n >= 1_000_000 ? `${n / 1_000_000}m` : `${n / 1000}k`
    const stats = built.index.stats()
    const timed = timeReps(built.index, n + 7, n === sizes[0] ? FIRST_WARMUP : WARMUP)
    const qs = timed.queries
    const scanQs = qs.slice(0, SCAN_SELECTIONS[n]!)
    const scanLat = timeScan(scanBaseline(built.index), scanQs)
    const { p50, p99 } = timed
    detail[`p50_ms_${label}`] = ms(p50)
    detail[`p99_ms_${label}`] = ms(p99)
    detail[`p999_ms_${label}`] = ms(timed.p999)
    detail[`p99_ms_${label}_reps`] = timed.p99s.map(ms)
    detail[`cpu_share_${label}_reps`] = timed.cpuShares
    detail[`scan_p50_ms_${label}`] = ms(quantile(scanLat, 0.5))
    detail[`scan_p99_ms_${label}`] = ms(quantile(scanLat, 0.99))
    detail[`speedup_p50_${label}`] = round(quantile(scanLat, 0.5) / p50, 1)
    detail[`active_${label}`] = stats.byStatus.active
    detail[`load_average_${label}`] = round(os.loadavg()[0]!, 2)
    console.log(
      `${label}: build ${round(built.seconds, 2)} s, ${round(bytes, 0)} B/node, select p50 ${ms(p50)} ms p99 ${ms(p99)} ms; full scan p50 ${ms(quantile(scanLat, 0.5))} ms`,
    )
    if (n === 1_000_000) {
      p99at1m = p99
      bytesPerNode = bytes
      build1m = built.seconds
      memoryDetail = {
        nodes: n,
        heap_plus_external_bytes_per_node: round(bytes, 1),
        rss_bytes_per_node: round(rssBytes, 1),
        by_status: stats.byStatus,
      }
      // in-process update rate: heartbeats and probes against the 1M index
      const sample = Array.from(built.index.snapshot()).slice(0, 200_000)
      const t = performance.now()
      for (let r = 0; r < 2; r++) {
        for (const row of sample) built.index.applyHeartbeat(row.node, { load: row.capacity * 0.3 })
        for (const row of sample) built.index.applyProbe(row.node, { answered: true, rttMs: 42 })
      }
      updatesPerSecond = (4 * sample.length) / ((performance.now() - t) / 1000)
      // snapshot, then restore into a fresh index
      let t1 = performance.now()
      const rows = Array.from(built.index.snapshot())
      const snapshotSeconds = (performance.now() - t1) / 1000
      const restored = createNodeIndex(
        { probeIntervalMs: PROBE_INTERVAL_MS, initialCapacity: n, regions: [...REGIONS], seed: 0x5eed },
        { clock: () => built.clock.now },
      )
      t1 = performance.now()
      restored.restore(rows)
      const restoreSeconds = (performance.now() - t1) / 1000
      for (const q of qs.slice(0, 2000)) {
        const x = JSON.stringify(restored.select(q))
        if (x !== JSON.stringify(built.index.select(q))) throw new Error('restored index selects differently')
      }
      restoreDetail = { snapshot_1m_s: round(snapshotSeconds, 2), restore_1m_s: round(restoreSeconds, 2) }
      console.log(`1m: snapshot ${round(snapshotSeconds, 2)} s, restore ${round(restoreSeconds, 2)} s`)
    }
  }
  gc()
  const s = stability()
  console.log(`stability: join keeps ≥ ${round(s.joinKept, 4)}, spread χ²/dof ${round(s.chi2PerDof, 3)}`)
  return {
    select_p99_ms_1m: {
      value: ms(p99at1m),
      unit: 'ms',
      goal: 1,
      goalKind: 'max',
      detail: {
        ...detail,
        selections_per_size: REPS * SELECTIONS_PER_REP,
        figures: `median over ${REPS} repetitions of ${SELECTIONS_PER_REP} selections (after ${WARMUP} warm-up)`,
        k: K,
        regions: REGIONS.length,
      },
    },
    bytes_per_node: {
      value: round(bytesPerNode, 1),
      unit: 'B',
      goal: 2048,
      goalKind: 'max',
      detail: memoryDetail,
    },
    build_1m_s: {
      value: round(build1m, 2),
      unit: 's',
      detail: { ...restoreDetail, what: 'upsert + probes + events for 1M nodes' },
    },
    restore_1m_s: { value: restoreDetail.restore_1m_s ?? Number.NaN, unit: 's', detail: restoreDetail },
    index_updates_per_s: {
      value: Math.round(updatesPerSecond),
      unit: 'ops/s',
      detail: { what: 'applyHeartbeat and applyProbe in-process at 1M nodes' },
    },
    stability_join_kept: {
      value: round(s.joinKept, 4),
      unit: 'share',
      goal: 0.95,
      goalKind: 'min',
      detail: {
        network: '1k nodes, 3 regions; 10k CIDs, k = 3, client region eu-west (~333 nodes); 10 joiners',
        median: round(s.joinKeptMedian, 4),
        kept_if_only_the_joiner_s_share_moved_median: round(s.idealKeptMedian, 4),
        kept_if_only_the_joiner_s_share_moved_min: round(s.idealKeptMin, 4),
        movement_over_least_possible_median: round(s.movementOverLeast, 2),
        movement_over_least_possible_max: round(s.movementOverLeastMax, 2),
        without_region_min: round(s.joinKeptAllRegions, 4),
        down_changed_per_cid_that_had_it: round(s.downChangedPerHad, 4),
        down_cids_that_had_it: s.downHad,
        down_unrelated_cids_changed: s.downUnrelatedChanged,
      },
    },
    spread_chi2_per_dof: {
      value: round(s.chi2PerDof, 3),
      unit: 'ratio',
      detail: {
        what: 'first-place counts of 100k CIDs against placement weights, χ² / degrees of freedom (≈ 1 when proportional)',
        nodes: s.spreadNodes,
        max_observed_over_expected: round(s.spreadMaxOverExpected, 3),
      },
    },
  }
}
