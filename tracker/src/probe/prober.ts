/**
 * The probe loop: every node is sent `GET <httpUrl>/health?challenge=<32 random bytes>`
 * about once per interval, and must answer with a `HealthProof` signed by its key
 * (`@shoal/protocol`), so a proxy in front of a dead node cannot answer for it.
 *
 * Built not to starve the API at 100k+ nodes:
 * - a min-heap of due times, so each tick only looks at what is due;
 * - at most `concurrency` probes in flight, each bounded by `timeoutMs`;
 * - the next probe of a node is `interval ± jitter`, so a burst of registrations
 *   spreads out instead of probing in lockstep forever;
 * - at most `maxLaunchPerTick` probes started per event-loop turn before yielding;
 * - a signature budget: health-proof signatures cost ~2 ms each to check, so at most
 *   `verifyPerSecond` are checked, and past the budget a random `verifySample` share
 *   is. Every answer still must echo the fresh challenge, name the node and carry a
 *   fresh timestamp; a node that sends one bad signature is caught on its next sampled
 *   probe, and the index counts a bad proof as a miss.
 * The index's own rule (no answered probe for 2 intervals → down) makes a silent node
 * unselectable within two intervals even if the loop falls behind.
 */
import { randomBytes } from 'node:crypto'
import { decodeHealthProof, type HealthProof, type Signed, verifyHealthProof } from '@shoal/protocol'
import type { Logger } from 'pino'
import type { Dispatcher } from 'undici'
import { request } from 'undici'
import { nodeUrl, readLimited } from '../http/client.ts'
import type { TrackerMetrics } from '../metrics.ts'

/** Largest `/health` answer read. */
const MAX_HEALTH_BODY = 4096
const DEFAULT_MAX_LAUNCH_PER_TICK = 64

export interface ProberInit {
  intervalMs: number
  concurrency: number
  timeoutMs: number
  jitter: number
  verifyPerSecond: number
  verifySample: number
  /** Accepted age / skew of a proof's timestamp (s). */
  proofSkewSeconds: number
  maxLaunchPerTick?: number
}

export type ProbeOutcome =
  | { answered: true; rttMs: number; verified: boolean }
  | { answered: false; reason: string; invalid: boolean }

export interface ProberComponents {
  dispatcher: Dispatcher
  /** Called with each outcome (the tracker applies it to the index). */
  onResult: (node: string, outcome: ProbeOutcome) => void
  clock?: () => number
  logger?: Logger
  metrics?: TrackerMetrics
  random?: () => number
}

export interface Prober {
  /**
   * Adds or updates a node to probe. A new registration is probed at once; with
   * `spread` (nodes restored at start) the first probe falls at a random point of the
   * next interval, so a restart with many nodes does not probe them all at once.
   */
  upsert(node: string, httpUrl: string, options?: { spread?: boolean }): void
  remove(node: string): void
  /** Probes one node now (outside the schedule) and reports the outcome. */
  probe(node: string, httpUrl: string, options?: { signal?: AbortSignal }): Promise<ProbeOutcome>
  start(): void
  /** Stops scheduling and aborts probes in flight. */
  stop(): Promise<void>
  stats(): { targets: number; inFlight: number; lagMs: number }
}

interface Target {
  node: string
  url: string
  due: number
  /** Bumped on upsert/remove: heap entries with an old generation are skipped. */
  gen: number
  inFlight: boolean
}

interface HeapEntry {
  due: number
  key: string
  gen: number
}

/** A binary min-heap on `due`. */
class DueHeap {
  private readonly items: HeapEntry[] = []
  get size(): number {
    return this.items.length
  }
  peek(): HeapEntry | undefined {
    return this.items[0]
  }
  push(e: HeapEntry): void {
    const a = this.items
    a.push(e)
    let i = a.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (a[p]!.due <= e.due) break
      a[i] = a[p]!
      i = p
    }
    a[i] = e
  }
  pop(): HeapEntry | undefined {
    const a = this.items
    const top = a[0]
    const last = a.pop()
    if (top === undefined || last === undefined || a.length === 0) return top
    let i = 0
    for (;;) {
      let c = 2 * i + 1
      if (c >= a.length) break
      if (c + 1 < a.length && a[c + 1]!.due < a[c]!.due) c++
      if (a[c]!.due >= last.due) break
      a[i] = a[c]!
      i = c
    }
    a[i] = last
    return top
  }
}

/**
 * @example
 * const prober = createProber({ intervalMs: 30_000, concurrency: 256, timeoutMs: 5_000, jitter: 0.1,
 *   verifyPerSecond: 400, verifySample: 0.1, proofSkewSeconds: 120 },
 *   { dispatcher, onResult: (node, o) => index.applyProbe(node, o.answered ? { answered: true, rttMs: o.rttMs } : { answered: false }) })
 * prober.start()
 */
export function createProber(init: ProberInit, components: ProberComponents): Prober {
  const { dispatcher, onResult, logger, metrics } = components
  const clock = components.clock ?? Date.now
  const random = components.random ?? Math.random
  const maxLaunch = init.maxLaunchPerTick ?? DEFAULT_MAX_LAUNCH_PER_TICK
  const targets = new Map<string, Target>()
  const heap = new DueHeap()
  let inFlight = 0
  let running = false
  let timer: NodeJS.Timeout | undefined
  let immediate: NodeJS.Immediate | undefined
  const stopController = new AbortController()
  const pending = new Set<Promise<void>>()
  // Signature budget: a token bucket refilled at verifyPerSecond.
  let tokens = init.verifyPerSecond
  let tokensAt = clock()

  const takeVerifyToken = (): boolean => {
    const now = clock()
    tokens = Math.min(init.verifyPerSecond, tokens + ((now - tokensAt) * init.verifyPerSecond) / 1000)
    tokensAt = now
    if (tokens >= 1) {
      tokens -= 1
      return true
    }
    return random() < init.verifySample
  }

  const nextDue = (now: number): number => now + init.intervalMs * (1 + init.jitter * (2 * random() - 1))

  const probeOnce = async (node: string, url: string, signal: AbortSignal): Promise<ProbeOutcome> => {
    const challenge = `0x${randomBytes(32).toString('hex')}` as const
    const started = performance.now()
    let body: unknown
    try {
      const res = await request(`${nodeUrl(url, 'health')}?challenge=${challenge}`, {
        method: 'GET',
        dispatcher,
        signal,
        headers: { accept: 'application/json' },
      })
      if (res.statusCode !== 200) {
        await res.body.dump().catch(() => {})
        return { answered: false, reason: `status ${res.statusCode}`, invalid: false }
      }
      body = JSON.parse((await readLimited(res.body, MAX_HEALTH_BODY)).toString('utf8'))
    } catch (err) {
      return {
        answered: false,
        reason: (err as { code?: string }).code ?? (err as Error).name,
        invalid: false,
      }
    }
    const rttMs = performance.now() - started
    let signed: Signed<HealthProof>
    try {
      signed = decodeHealthProof(proofOf(body))
    } catch (err) {
      return { answered: false, reason: `bad proof: ${(err as Error).message}`, invalid: true }
    }
    const { message } = signed
    const nowS = Math.floor(clock() / 1000)
    if (message.challenge !== challenge) return { answered: false, reason: 'wrong challenge', invalid: true }
    if (message.node.toLowerCase() !== node.toLowerCase())
      return { answered: false, reason: 'wrong node', invalid: true }
    if (Math.abs(message.timestamp - nowS) > init.proofSkewSeconds) {
      return { answered: false, reason: 'stale proof', invalid: true }
    }
    const verify = takeVerifyToken()
    if (verify) {
      metrics?.probeSignaturesChecked.inc()
      try {
        await verifyHealthProof(signed, {
          now: nowS,
          expectedChallenge: challenge,
          expectedNode: message.node,
          maxAgeSeconds: init.proofSkewSeconds,
          maxSkewSeconds: init.proofSkewSeconds,
        })
      } catch (err) {
        return { answered: false, reason: `bad signature: ${(err as Error).message}`, invalid: true }
      }
    }
    return { answered: true, rttMs, verified: verify }
  }

  const record = (node: string, outcome: ProbeOutcome): void => {
    if (outcome.answered) {
      metrics?.probes.inc({ outcome: 'answered' })
      metrics?.probeRttSeconds.observe(outcome.rttMs / 1000)
    } else {
      metrics?.probes.inc({ outcome: outcome.invalid ? 'invalid' : 'missed' })
      if (outcome.invalid) logger?.warn({ node, reason: outcome.reason }, 'invalid answer to a probe')
      else logger?.debug({ node, reason: outcome.reason }, 'probe missed')
    }
    try {
      onResult(node, outcome)
    } catch (err) {
      logger?.debug({ node, err: (err as Error).message }, 'probe result not applied')
    }
  }

  const launch = (t: Target): void => {
    t.inFlight = true
    inFlight++
    metrics?.probesInFlight.set(inFlight)
    const signal = AbortSignal.any([stopController.signal, AbortSignal.timeout(init.timeoutMs)])
    const gen = t.gen
    const p = probeOnce(t.node, t.url, signal)
      .then((outcome) => {
        if (!stopController.signal.aborted && targets.get(t.node.toLowerCase())?.gen === gen)
          record(t.node, outcome)
      })
      .finally(() => {
        t.inFlight = false
        inFlight--
        metrics?.probesInFlight.set(inFlight)
        pending.delete(p)
        if (running && targets.get(t.node.toLowerCase()) === t) {
          t.due = nextDue(clock())
          heap.push({ due: t.due, key: t.node.toLowerCase(), gen: t.gen })
        }
        schedule(0)
      })
    pending.add(p)
  }

  const pump = (): void => {
    immediate = undefined
    if (!running) return
    const now = clock()
    let launched = 0
    while (inFlight < init.concurrency && launched < maxLaunch) {
      const top = heap.peek()
      if (top === undefined || top.due > now) break
      heap.pop()
      const t = targets.get(top.key)
      if (t === undefined || t.gen !== top.gen || t.inFlight) continue
      launch(t)
      launched++
    }
    const top = heap.peek()
    metrics?.probeLagSeconds.set(top !== undefined && top.due < now ? (now - top.due) / 1000 : 0)
    if (launched === maxLaunch && inFlight < init.concurrency) schedule(0)
    else if (top !== undefined && inFlight < init.concurrency) schedule(Math.max(0, top.due - now))
  }

  const schedule = (delayMs: number): void => {
    if (!running) return
    if (delayMs <= 0) {
      if (timer !== undefined) {
        clearTimeout(timer)
        timer = undefined
      }
      immediate ??= setImmediate(pump)
      return
    }
    if (immediate !== undefined) return
    if (timer !== undefined) clearTimeout(timer)
    timer = setTimeout(
      () => {
        timer = undefined
        pump()
      },
      Math.min(delayMs, 1_000),
    )
    timer.unref()
  }

  return {
    upsert(node, httpUrl, options = {}) {
      const key = node.toLowerCase()
      const t = targets.get(key)
      if (t !== undefined && t.url === httpUrl) return
      const now = clock()
      const due = options.spread === true ? now + random() * init.intervalMs : now
      const next: Target = { node, url: httpUrl, due, gen: (t?.gen ?? 0) + 1, inFlight: false }
      targets.set(key, next)
      heap.push({ due: next.due, key, gen: next.gen })
      schedule(0)
    },

    remove(node) {
      targets.delete(node.toLowerCase())
    },

    async probe(node, httpUrl, options = {}) {
      const signal = AbortSignal.any([
        stopController.signal,
        AbortSignal.timeout(init.timeoutMs),
        ...(options.signal ? [options.signal] : []),
      ])
      const outcome = await probeOnce(node, httpUrl, signal)
      record(node, outcome)
      return outcome
    },

    start() {
      if (running) return
      running = true
      schedule(0)
    },

    async stop() {
      running = false
      if (timer !== undefined) clearTimeout(timer)
      if (immediate !== undefined) clearImmediate(immediate)
      timer = undefined
      immediate = undefined
      stopController.abort()
      await Promise.allSettled([...pending])
    },

    stats() {
      const top = heap.peek()
      const now = clock()
      return {
        targets: targets.size,
        inFlight,
        lagMs: top !== undefined && top.due < now ? now - top.due : 0,
      }
    },
  }
}

/**
 * The signed proof inside a `/health` answer: the protocol's form
 * `{"status":"ok","node":…,"proof":{"message":…,"signature":…}}`, or the flat form
 * `{ status, node, challenge, timestamp, signature }`.
 */
function proofOf(body: unknown): unknown {
  if (typeof body !== 'object' || body === null) return body
  const b = body as Record<string, unknown>
  if ('proof' in b) return b.proof
  return { message: { node: b.node, challenge: b.challenge, timestamp: b.timestamp }, signature: b.signature }
}
