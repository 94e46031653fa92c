/**
 * Clients' signed reports (`NodeReport`, signing/types.ts): TTFB, throughput, failures
 * and integrity failures with evidence, applied to the node's score with the reporter's
 * standing as weight.
 *
 * Checks, cheapest first: schema (route) → freshness → the client's own rate (peeked, so
 * a forger cannot drain an honest client's bucket) → the node is registered and is not
 * the reporter → integrity evidence against the CID's leaves when the tracker has them
 * → signature → the client's rate (taken) → nonce not seen before (stored) → applied.
 *
 * Integrity evidence (`cid`, `chunk`, `badHash` = leaf hash of the bytes received) cannot
 * prove a node wrong on its own — anyone can name a hash — so it counts as an unproven
 * integrity failure (`integrityReportWeight` failures, weighted) and queues a targeted
 * audit of that chunk on that node; the audit makes it a proven failure (cool-off) when
 * the node really serves wrong bytes. Evidence the leaves refute (the "bad" hash is the
 * chunk's real hash) is refused with `SHOAL_ERR_INVALID_PROOF` and lowers the reporter's
 * standing.
 */
import {
  chunkCount,
  ExpiredError,
  ForbiddenError,
  InvalidArgumentError,
  InvalidProofError,
  NotFoundError,
  parseCid,
  RateLimitedError,
} from '@shoal/protocol'
import type { Logger } from 'pino'
import type { ReportBody } from '../api/schemas.ts'
import type { Auditor } from '../audit/auditor.ts'
import { createKeyedRateLimiter } from '../http/rate-limit.ts'
import type { TrackerMetrics } from '../metrics.ts'
import type { RateLimit } from '../options.ts'
import type { NodeMeta } from '../registry/registry.ts'
import type { NodeIndex } from '../selection/index.ts'
import { verifyNodeReport } from '../signing/sign.ts'
import type { NodeReport } from '../signing/types.ts'
import type { StoreCallOptions, TrackerStore } from '../store/types.ts'
import { standingOf } from './standing.ts'

const HOUR_MS = 3_600_000
/** Reports dated this far in the future are refused (s). */
const FUTURE_SKEW_SECONDS = 300

export interface ReportServiceInit {
  maxAgeSeconds: number
  clientRate: RateLimit
  lowStanding: number
  lowStandingBudget: number
  rateLimitKeys: number
}

export interface ReportServiceComponents {
  store: TrackerStore
  index: NodeIndex<NodeMeta>
  clock: () => number
  auditor?: Auditor
  onApplied?: (node: string) => void
  logger?: Logger
  metrics?: TrackerMetrics
}

export interface ReportResult {
  node: string
  /** The reporter's standing. */
  standing: number
  /** The weight the report was applied with (standing, less the low-standing budget's cut). */
  weight: number
  status: string
  /** True when integrity evidence queued a targeted audit. */
  auditQueued: boolean
}

export interface ReportService {
  submit(body: ReportBody, options?: StoreCallOptions): Promise<ReportResult>
}

export function createReportService(
  init: ReportServiceInit,
  components: ReportServiceComponents,
): ReportService {
  const { store, index, clock, auditor, logger } = components
  const perClient = createKeyedRateLimiter(init.clientRate, { maxKeys: init.rateLimitKeys, now: clock })
  // Per node: weight spent by low-standing reporters in the current hour.
  const lowBudget = new Map<string, { window: number; used: number }>()

  const budgetFor = (node: string, want: number, now: number): number => {
    const key = node.toLowerCase()
    const window = Math.floor(now / HOUR_MS)
    let b = lowBudget.get(key)
    if (b === undefined || b.window !== window) {
      if (lowBudget.size > 100_000) lowBudget.clear()
      b = { window, used: 0 }
      lowBudget.set(key, b)
    }
    const granted = Math.max(0, Math.min(want, init.lowStandingBudget - b.used))
    b.used += granted
    return granted
  }

  const checkEvidence = async (m: NodeReport, options?: StoreCallOptions): Promise<boolean> => {
    if (m.cid === '') return false
    const cid = parseCid(m.cid)
    if (m.chunk >= chunkCount(cid)) {
      throw new InvalidArgumentError(
        `chunk ${m.chunk} is not a chunk of ${m.cid} (${chunkCount(cid)} chunks)`,
      )
    }
    const leaves = await store.getLeaves(cid.text, options)
    if (leaves !== undefined) {
      const leaf = Buffer.from(leaves.subarray(m.chunk * 32, m.chunk * 32 + 32)).toString('hex')
      if (`0x${leaf}` === m.badHash) return true // refuted (handled after the signature is checked)
    }
    return false
  }

  return {
    async submit(body, options) {
      const m = body.message as NodeReport
      const now = clock()
      const nowS = Math.floor(now / 1000)
      if (m.timestamp > nowS + FUTURE_SKEW_SECONDS)
        throw new ExpiredError('the report is dated in the future')
      if (nowS - m.timestamp > init.maxAgeSeconds) {
        throw new ExpiredError(`the report is ${nowS - m.timestamp} s old (at most ${init.maxAgeSeconds})`)
      }
      const clientKey = m.client.toLowerCase()
      if (perClient.retryAfter(clientKey) > 0) {
        throw new RateLimitedError(
          `too many reports from ${m.client}; retry in ${perClient.retryAfter(clientKey)} s`,
        )
      }
      if (m.client.toLowerCase() === m.node.toLowerCase())
        throw new ForbiddenError('a node cannot report on itself')
      if (!index.has(m.node)) throw new NotFoundError(`no registered node ${m.node}`)
      const refuted = await checkEvidence(m, options)
      await verifyNodeReport({ message: m, signature: body.signature as `0x${string}` })
      if (!perClient.take(clientKey)) throw new RateLimitedError(`too many reports from ${m.client}`)
      if (refuted) {
        await store.addRefutation(m.client, now, options)
        throw new InvalidProofError(
          `chunk ${m.chunk} of ${m.cid} has exactly the reported hash: the bytes were right`,
        )
      }
      const client = await store.getClient(m.client, options)
      const standing = standingOf(client, now)
      let weight = standing
      if (standing < init.lowStanding) weight = budgetFor(m.node, standing, now)
      await store.addReport(
        {
          client: m.client,
          node: m.node,
          nonce: m.nonce,
          timestamp: m.timestamp,
          receivedAt: now,
          weight,
          body: JSON.stringify(body),
        },
        options,
      )
      let status = index.get(m.node)?.status ?? 'unknown'
      if (weight > 0) {
        const integrity = m.cid !== ''
        const okShare = (m.requests - m.failures) / m.requests
        const failShare = m.failures / m.requests
        if (okShare > 0) {
          status = index.applyReport(m.node, {
            ok: true,
            weight: weight * okShare,
            ...(m.throughput > 0 ? { throughput: m.throughput } : {}),
          })
        }
        if (failShare > 0) {
          // An unproven integrity claim weighs `integrityReportWeight` failures only from reporters
          // in good standing; from the others it only queues the audit that can prove it.
          status = index.applyReport(m.node, {
            ok: false,
            weight: weight * failShare,
            integrityFailure: integrity && standing >= init.lowStanding,
          })
        }
        components.onApplied?.(m.node)
      }
      const auditQueued =
        m.cid !== '' && auditor !== undefined && auditor.enqueue({ node: m.node, cid: m.cid, chunk: m.chunk })
      logger?.debug({ node: m.node, weight, requests: m.requests, failures: m.failures }, 'report applied')
      return { node: m.node, standing, weight, status, auditQueued }
    },
  }
}
