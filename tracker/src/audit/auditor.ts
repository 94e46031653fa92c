/**
 * Content audits: probes with fixed content are easy to game, so the tracker also
 * fetches random byte ranges of real published content from the nodes selection
 * would send clients to, and checks them against the CID.
 *
 * One audit:
 * 1. sample a published CID (`store.sampleContent` at a random point of CID order);
 * 2. pick one of the nodes `select` places it on (the nodes clients would use);
 * 3. get the CID's leaves: stored ones, else `GET /c/<cid>/leaves` from the node,
 *    checked against the CID (`verifyLeaves`) and stored; leaves that do not rebuild
 *    the CID are a proven lie;
 * 4. choose a random range of at most `maxRange` bytes, widen it to whole chunks
 *    (`alignRange`), fetch it with `Range`, and stream it through `verifyStream`.
 * Wrong bytes (`IntegrityError`) or wrong leaves are a proven integrity failure; a
 * refusal, a timeout, a 404 or a node that ignores `Range` is inconclusive (liveness is
 * the probe loop's business).
 *
 * Clients' integrity reports enqueue a targeted audit of the reported chunk (`enqueue`),
 * which turns an unproven claim into a proven failure when the node really serves bad
 * bytes.
 */
import { randomBytes, randomInt } from 'node:crypto'
import {
  alignRange,
  type Cid,
  chunkCount,
  chunkSpan,
  isShoalError,
  parseCid,
  verifyLeaves,
  verifyStream,
} from '@shoal/protocol'
import type { Logger } from 'pino'
import type { Dispatcher } from 'undici'
import { request } from 'undici'
import { nodeUrl, readLimited } from '../http/client.ts'
import type { TrackerMetrics } from '../metrics.ts'
import type { NodeMeta } from '../registry/registry.ts'
import type { NodeIndex } from '../selection/index.ts'
import type { TrackerStore } from '../store/types.ts'

export interface AuditorInit {
  /** Time between scheduled audits (ms); 0 turns the schedule off (targeted audits still run). */
  intervalMs: number
  timeoutMs: number
  maxRange: number
  /** Nodes a CID is placed on that an audit picks from. Default 3. */
  placementCount?: number
  /** Targeted audits waiting at most. Default 1000. */
  maxQueue?: number
}

export type AuditOutcome =
  | { outcome: 'passed'; node: string; cid: string; chunk: number }
  | { outcome: 'failed'; node: string; cid: string; chunk: number; detail: string }
  | { outcome: 'inconclusive'; node?: string; cid?: string; reason: string }

export interface AuditorComponents {
  store: TrackerStore
  index: NodeIndex<NodeMeta>
  dispatcher: Dispatcher
  /** Called for each proven failure (the tracker applies the cool-off and records it). */
  onIntegrityFailure: (failure: {
    node: string
    cid: string
    chunk: number
    detail: string
    source: string
  }) => void
  logger?: Logger
  metrics?: TrackerMetrics
}

export interface Auditor {
  /** One scheduled audit: a random published CID on one of its placed nodes. */
  auditOnce(options?: { signal?: AbortSignal }): Promise<AuditOutcome>
  /** Audits `node` for `cid` (a random range, or chunk `chunk` when given). */
  audit(
    node: string,
    cid: string,
    options?: { chunk?: number; signal?: AbortSignal; source?: string },
  ): Promise<AuditOutcome>
  /** Queues a targeted audit (from a client's integrity report); false when the queue is full or it is queued. */
  enqueue(target: { node: string; cid: string; chunk: number }): boolean
  start(): void
  stop(): Promise<void>
}

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567'

function randomCidPrefix(): string {
  const bytes = randomBytes(6)
  let out = 's'
  for (const b of bytes) out += BASE32[b & 31]
  return out
}

class Inconclusive extends Error {}

/**
 * @example
 * const auditor = createAuditor({ intervalMs: 60_000, timeoutMs: 15_000, maxRange: 65_536 },
 *   { store, index, dispatcher, onIntegrityFailure })
 * auditor.start()
 */
export function createAuditor(init: AuditorInit, components: AuditorComponents): Auditor {
  const { store, index, dispatcher, logger, metrics } = components
  const placementCount = init.placementCount ?? 3
  const maxQueue = init.maxQueue ?? 1000
  const queue = new Map<string, { node: string; cid: string; chunk: number }>()
  const stopController = new AbortController()
  let timer: NodeJS.Timeout | undefined
  let running = false
  let draining: Promise<void> | undefined
  let scheduled: Promise<unknown> | undefined

  const fetchBytes = (url: string, headers: Record<string, string>, signal: AbortSignal) =>
    request(url, { method: 'GET', dispatcher, signal, headers })

  const leavesOf = async (node: string, base: string, cid: Cid, signal: AbortSignal): Promise<Uint8Array> => {
    const stored = await store.getLeaves(cid.text, { signal })
    if (stored !== undefined) return verifyLeaves(cid, stored)
    const res = await fetchBytes(nodeUrl(base, `c/${cid.text}/leaves`), {}, signal)
    if (res.statusCode !== 200) {
      await res.body.dump().catch(() => {})
      throw new Inconclusive(`leaves: status ${res.statusCode}`)
    }
    let bytes: Buffer
    try {
      bytes = await readLimited(res.body, chunkCount(cid) * 32)
    } catch {
      throw Object.assign(new Error(`${node} sent more leaves than ${cid.text} has`), { proven: true })
    }
    let leaves: Uint8Array
    try {
      leaves = await verifyLeaves(cid, new Uint8Array(bytes))
    } catch (err) {
      throw Object.assign(new Error(`leaves do not rebuild ${cid.text}: ${(err as Error).message}`), {
        proven: true,
      })
    }
    await store.putLeaves(cid.text, leaves, { signal })
    return leaves
  }

  const audit: Auditor['audit'] = async (node, cidText, options = {}) => {
    const source = options.source ?? 'audit'
    const view = index.get(node)
    if (view?.meta === undefined)
      return { outcome: 'inconclusive', node, cid: cidText, reason: 'node not registered' }
    const cid = parseCid(cidText)
    if (cid.size === 0) return { outcome: 'inconclusive', node, cid: cidText, reason: 'empty content' }
    const signal = AbortSignal.any([
      stopController.signal,
      AbortSignal.timeout(init.timeoutMs),
      ...(options.signal ? [options.signal] : []),
    ])
    let start: number
    let end: number
    if (options.chunk !== undefined) {
      ;({ start, end } = chunkSpan(cid, options.chunk))
    } else {
      start = randomInt(0, cid.size)
      end = Math.min(cid.size, start + 1 + randomInt(0, init.maxRange))
    }
    const aligned = alignRange(cid, start, end)
    // the chunk being checked when verification fails (bytes before it verified)
    let chunk = aligned.firstChunk
    try {
      const leaves = await leavesOf(node, view.meta.httpUrl, cid, signal)
      const res = await fetchBytes(
        nodeUrl(view.meta.httpUrl, `c/${cid.text}`),
        { range: `bytes=${aligned.fetchStart}-${aligned.fetchEnd - 1}` },
        signal,
      )
      const whole = aligned.fetchStart === 0 && aligned.fetchEnd === cid.size
      if (res.statusCode !== 206 && !(res.statusCode === 200 && whole)) {
        await res.body.dump().catch(() => {})
        throw new Inconclusive(`content: status ${res.statusCode}`)
      }
      let at = aligned.fetchStart
      try {
        for await (const piece of verifyStream(cid, res.body, {
          leaves,
          start: aligned.fetchStart,
          end: aligned.fetchEnd,
          signal,
        })) {
          at += piece.length
        }
      } catch (err) {
        if (isShoalError(err) && err.code === 'SHOAL_ERR_INTEGRITY') {
          chunk = Math.min(aligned.lastChunk, Math.floor(at / cid.chunkSize))
          throw Object.assign(new Error(err.message), { proven: true })
        }
        throw err
      }
      metrics?.audits.inc({ outcome: 'passed' })
      logger?.debug({ node, cid: cid.text, chunk }, 'audit passed')
      return { outcome: 'passed', node, cid: cid.text, chunk: aligned.firstChunk }
    } catch (err) {
      if ((err as { proven?: boolean }).proven === true) {
        const detail = (err as Error).message.slice(0, 200)
        metrics?.audits.inc({ outcome: 'failed' })
        logger?.warn({ node, cid: cid.text, chunk, source }, 'audit caught wrong bytes')
        components.onIntegrityFailure({ node, cid: cid.text, chunk, detail, source })
        return { outcome: 'failed', node, cid: cid.text, chunk, detail }
      }
      metrics?.audits.inc({ outcome: 'inconclusive' })
      const reason =
        err instanceof Inconclusive
          ? err.message
          : ((err as { code?: string }).code ?? (err as Error).message)
      logger?.debug({ node, cid: cid.text, reason }, 'audit inconclusive')
      return { outcome: 'inconclusive', node, cid: cid.text, reason }
    }
  }

  const auditOnce: Auditor['auditOnce'] = async (options = {}) => {
    const content = await store.sampleContent(randomCidPrefix(), options)
    if (content === undefined) return { outcome: 'inconclusive', reason: 'no published content' }
    let placed: { node: string }[]
    try {
      placed = index.select({ cid: content.cid, count: placementCount })
    } catch (err) {
      return { outcome: 'inconclusive', cid: content.cid, reason: (err as Error).message }
    }
    if (placed.length === 0) return { outcome: 'inconclusive', cid: content.cid, reason: 'no eligible node' }
    const pick = placed[randomInt(0, placed.length)]!
    return audit(pick.node, content.cid, options)
  }

  const drain = async (): Promise<void> => {
    while (queue.size > 0 && !stopController.signal.aborted) {
      const [key, target] = queue.entries().next().value as [
        string,
        { node: string; cid: string; chunk: number },
      ]
      queue.delete(key)
      await audit(target.node, target.cid, { chunk: target.chunk, source: 'report' }).catch(
        (err: unknown) => {
          logger?.debug({ err: (err as Error).message }, 'targeted audit failed to run')
        },
      )
    }
  }

  const tick = (): void => {
    timer = undefined
    if (!running) return
    scheduled = auditOnce()
      .catch((err: unknown) =>
        logger?.debug({ err: (err as Error).message }, 'scheduled audit failed to run'),
      )
      .finally(() => {
        scheduled = undefined
        if (running) {
          timer = setTimeout(tick, init.intervalMs * (0.5 + Math.random()))
          timer.unref()
        }
      })
  }

  return {
    auditOnce,
    audit,
    enqueue(target) {
      const key = `${target.node.toLowerCase()} ${target.cid} ${target.chunk}`
      if (queue.has(key) || queue.size >= maxQueue || stopController.signal.aborted) return false
      queue.set(key, target)
      draining ??= drain().finally(() => {
        draining = undefined
      })
      return true
    },
    start() {
      if (running || init.intervalMs === 0) return
      running = true
      timer = setTimeout(tick, init.intervalMs * Math.random())
      timer.unref()
    },
    async stop() {
      running = false
      if (timer !== undefined) clearTimeout(timer)
      timer = undefined
      stopController.abort()
      queue.clear()
      await Promise.allSettled([draining, scheduled])
    },
  }
}
