/**
 * The probe loop: every node is sent `GET <httpUrl>/health?challenge=<32 random bytes>`
 * about once per interval, and must answer with a `HealthProof` signed by its key
 * (`@shoal/protocol`), so a proxy in front of a dead node cannot answer for it.
 *
 * Scheduled by the shared probe loop (`loop.ts`: a min-heap of due times, at most
 * `concurrency` probes in flight each bounded by `timeoutMs`, `interval ± jitter`, at
 * most `maxLaunchPerTick` launches per event-loop turn), and besides:
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
import { createProbeLoop } from './loop.ts'

/** Largest `/health` answer read. */
const MAX_HEALTH_BODY = 4096

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

  const loop = createProbeLoop<string, ProbeOutcome>(
    {
      intervalMs: init.intervalMs,
      concurrency: init.concurrency,
      timeoutMs: init.timeoutMs,
      jitter: init.jitter,
      ...(init.maxLaunchPerTick !== undefined ? { maxLaunchPerTick: init.maxLaunchPerTick } : {}),
    },
    {
      run: (node, url, signal) => probeOnce(node, url, signal),
      onResult: (node, _url, outcome) => record(node, outcome),
      clock,
      random,
      onInFlight: (n) => metrics?.probesInFlight.set(n),
      onLag: (s) => metrics?.probeLagSeconds.set(s),
    },
  )

  return {
    upsert(node, httpUrl, options) {
      loop.upsert(node, httpUrl, options)
    },
    remove: (node) => loop.remove(node),
    async probe(node, httpUrl, options = {}) {
      const outcome = await probeOnce(node, httpUrl, loop.signal(options.signal))
      record(node, outcome)
      return outcome
    },
    start: () => loop.start(),
    stop: () => loop.stop(),
    stats: () => loop.stats(),
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
