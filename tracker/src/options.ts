/**
 * The tracker's options: plain data with named defaults, validated once by
 * `resolveTrackerOptions` (undici style: `InvalidArgumentError` naming the option).
 * The CLI (`bin/shoal-tracker.ts`) is the only place that turns flags into options.
 */
import { InvalidArgumentError } from '@shoal/protocol'
import { DEFAULT_PROBE_INTERVAL_MS } from './scoring/index.ts'
import type { NodeIndexInit } from './selection/index.ts'

/** A token bucket: `rate` tokens per second, up to `burst` at once. */
export interface RateLimit {
  rate: number
  burst: number
}

/** Per-IP limits, by route group. */
export interface RateLimits {
  /** Anything not listed below (reads, stats). */
  default: RateLimit
  register: RateLimit
  heartbeat: RateLimit
  select: RateLimit
  reports: RateLimit
  sites: RateLimit
  tickets: RateLimit
  receipts: RateLimit
}

export const DEFAULT_HOST = '127.0.0.1'
export const DEFAULT_PORT = 7470
/** Probes in flight at most. */
export const DEFAULT_PROBE_CONCURRENCY = 256
/** A probe not answered in this long is a miss (ms); at most half the interval. */
export const DEFAULT_PROBE_TIMEOUT_MS = 5_000
/** Each probe's next time is the interval ± this fraction, so probes spread out. */
export const DEFAULT_PROBE_JITTER = 0.1
/** Health-proof signatures checked per second at most; beyond it a random share is checked. */
export const DEFAULT_PROBE_VERIFY_PER_SECOND = 400
/** Share of health proofs checked when the budget is spent. */
export const DEFAULT_PROBE_VERIFY_SAMPLE = 0.1
/** Accepted clock difference of a health proof's timestamp (s). */
export const DEFAULT_HEALTH_PROOF_SKEW_SECONDS = 120
/** An audit every this often (ms); 0 disables audits. */
export const DEFAULT_AUDIT_INTERVAL_MS = 60_000
export const DEFAULT_AUDIT_TIMEOUT_MS = 15_000
/** Largest byte range one audit fetches (it is widened to whole chunks). */
export const DEFAULT_AUDIT_MAX_RANGE = 65_536
/** Settlement epoch length (s): epoch n = floor(unix seconds / epochSeconds). */
export const DEFAULT_EPOCH_SECONDS = 3_600
/** Batches of an epoch are accepted this long after it ends (s); then it is settled. */
export const DEFAULT_SUBMIT_WINDOW_SECONDS = 900
/** Default price of delivery: 0.01 token (18 decimals) per GiB. */
export const DEFAULT_PRICE_PER_GIB = 10n ** 16n
/** A client paying more nodes than this in one epoch is refused (fan-out rule). */
export const DEFAULT_MAX_CLIENT_FANOUT = 32
/** How often the settler looks for epochs to settle (ms). */
export const DEFAULT_SETTLE_INTERVAL_MS = 60_000
/** Largest receipt batch body (bytes): about 150 000 receipts. */
export const DEFAULT_MAX_RECEIPT_BODY_BYTES = 64 * 1024 ** 2
/** Registrations: the record's timestamp must be this recent (s). */
export const DEFAULT_RECORD_MAX_AGE_SECONDS = 600
/** Heartbeats: accepted difference between the node's and the tracker's clock (ms). */
export const DEFAULT_HEARTBEAT_SKEW_MS = 60_000
/** Reports: accepted age of a report (s). */
export const DEFAULT_REPORT_MAX_AGE_SECONDS = 600
/** Reports one client may send per second, and burst. */
export const DEFAULT_CLIENT_REPORT_RATE: RateLimit = { rate: 0.2, burst: 10 }
/** Total report weight that reporters of low standing may move one node by per hour. */
export const DEFAULT_LOW_STANDING_BUDGET = 0.25
/** Standing below which a reporter counts against that budget. */
export const DEFAULT_LOW_STANDING = 0.5
/** Tickets: default and largest byte budget, and lifetime (s). */
export const DEFAULT_TICKET_BUDGET = 1024 ** 3
export const DEFAULT_TICKET_MAX_BUDGET = 16 * 1024 ** 3
export const DEFAULT_TICKET_TTL_SECONDS = 86_400
/** Reports are kept this long (ms), then pruned (standing keeps its counters). */
export const DEFAULT_REPORT_RETENTION_MS = 30 * 86_400_000
/** Registrations made through other replicas (sharing the store) are loaded this often (ms). */
export const DEFAULT_SYNC_INTERVAL_MS = 10_000
/** Dirty node state is written to the store this often (ms). */
export const DEFAULT_STATE_FLUSH_INTERVAL_MS = 10_000
/** Grace for in-flight requests on stop (ms). */
export const DEFAULT_SHUTDOWN_GRACE_MS = 5_000
/** Body limits (bytes). */
export const DEFAULT_MAX_BODY_BYTES = 64 * 1024
export const DEFAULT_MAX_MANIFEST_BYTES = 32 * 1024 ** 2
export const DEFAULT_MAX_HEADER_BYTES = 16 * 1024
/** Time to receive a request's head, and the whole request (ms). */
export const DEFAULT_HEADERS_TIMEOUT_MS = 10_000
export const DEFAULT_REQUEST_TIMEOUT_MS = 60_000
/**
 * Each node claiming mesh reachability is dialled about this often at least (ms): a
 * probe costs the tracker a Noise handshake (~8 ms of CPU measured here), so at 2 min
 * one core keeps ~15 000 mesh-only nodes checked.
 */
export const DEFAULT_MESH_PROBE_INTERVAL_MS = 120_000
/** Mesh probes in flight at most (each is a TCP + Noise handshake, some through a relay). */
export const DEFAULT_MESH_PROBE_CONCURRENCY = 32
/** A mesh probe not done in this long fails (ms): a relayed dial is two handshakes. */
export const DEFAULT_MESH_PROBE_TIMEOUT_MS = 10_000
/** Longest wait between mesh probes of a node that keeps failing (ms). */
export const DEFAULT_MESH_PROBE_BACKOFF_MAX_MS = 10 * 60_000

/** Distinct client IPs (and client keys) tracked by rate limiters. */
export const DEFAULT_RATE_LIMIT_KEYS = 100_000

export const DEFAULT_RATE_LIMITS: RateLimits = {
  default: { rate: 50, burst: 100 },
  register: { rate: 1, burst: 10 },
  heartbeat: { rate: 200, burst: 400 },
  select: { rate: 200, burst: 400 },
  reports: { rate: 5, burst: 20 },
  sites: { rate: 1, burst: 5 },
  tickets: { rate: 1 / 60, burst: 5 },
  receipts: { rate: 1, burst: 20 },
}

/** The mesh probe (docs/tracker.md, "Mesh probe"). */
export interface MeshProbeOptions {
  /** Each claiming node is dialled about this often (ms); the larger of `probeIntervalMs` and 2 min by default. */
  intervalMs?: number
  concurrency?: number
  timeoutMs?: number
  /** Longest wait between probes of a node that keeps failing (ms). */
  backoffMaxMs?: number
}

export interface TrackerOptions {
  host?: string
  /** 0 picks a free port (tests). */
  port?: number
  probeIntervalMs?: number
  probeConcurrency?: number
  probeTimeoutMs?: number
  probeJitter?: number
  probeVerifyPerSecond?: number
  probeVerifySample?: number
  healthProofSkewSeconds?: number
  auditIntervalMs?: number
  auditTimeoutMs?: number
  auditMaxRange?: number
  /** Epoch length in seconds (docs/receipts.md, Epochs). */
  epochSeconds?: number
  /** Seconds after an epoch's end during which nodes submit its receipts. */
  submitWindowSeconds?: number
  maxReceiptBodyBytes?: number
  /** Token base units per GiB delivered (docs/economics.md). */
  pricePerGiB?: bigint
  /** Per-publisher prices (address → base units per GiB), overriding `pricePerGiB`. */
  publisherPrices?: Record<string, bigint>
  maxClientFanout?: number
  /** 0 turns the settlement loop off (`tracker.settler.settle(n)` still works). */
  settleIntervalMs?: number
  /** Verification worker threads (default: the machine's parallelism). */
  verifyThreads?: number
  recordMaxAgeSeconds?: number
  heartbeatSkewMs?: number
  reportMaxAgeSeconds?: number
  clientReportRate?: RateLimit
  lowStandingBudget?: number
  lowStanding?: number
  ticketBudget?: number
  ticketMaxBudget?: number
  ticketTtlSeconds?: number
  reportRetentionMs?: number
  /** 0 turns replica sync off. */
  syncIntervalMs?: number
  stateFlushIntervalMs?: number
  shutdownGraceMs?: number
  maxBodyBytes?: number
  maxManifestBytes?: number
  maxHeaderBytes?: number
  headersTimeoutMs?: number
  requestTimeoutMs?: number
  rateLimits?: Partial<RateLimits>
  rateLimitKeys?: number
  /** Take the client IP from the last `X-Forwarded-For` hop (behind a reverse proxy). */
  trustProxy?: boolean
  /**
   * Accept node URLs on loopback, private and link-local addresses, and probe them.
   * Off by default: the tracker would otherwise probe hosts on its own network for
   * anyone who registers. Tests and single-machine devnets turn it on.
   */
  allowPrivateUrls?: boolean
  /**
   * Check nodes' mesh reachability claims by dialling their libp2p addresses (the
   * tracker then runs a libp2p client); only nodes it reached are handed to mesh
   * clients. Off by default: claims from authenticated heartbeats are then believed.
   */
  meshProbe?: boolean | MeshProbeOptions
  /** Options of the node index (scoring and placement); `probeIntervalMs` is set from above. */
  index?: Omit<NodeIndexInit, 'probeIntervalMs'>
}

export interface ResolvedTrackerOptions
  extends Required<
    Omit<
      TrackerOptions,
      'rateLimits' | 'index' | 'clientReportRate' | 'publisherPrices' | 'verifyThreads' | 'meshProbe'
    >
  > {
  /** `undefined` when the mesh probe is off. */
  meshProbe: Required<MeshProbeOptions> | undefined
  publisherPrices: Map<string, bigint>
  verifyThreads: number | undefined
  rateLimits: RateLimits
  clientReportRate: RateLimit
  index: NodeIndexInit
}

function num(
  name: string,
  value: unknown,
  fallback: number,
  min: number,
  max: number,
  integer = true,
): number {
  const v = value ?? fallback
  if (
    typeof v !== 'number' ||
    !Number.isFinite(v) ||
    v < min ||
    v > max ||
    (integer && !Number.isInteger(v))
  ) {
    throw new InvalidArgumentError(
      `${name} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}, got ${String(value)}`,
    )
  }
  return v
}

function price(name: string, value: unknown): bigint {
  if (typeof value !== 'bigint' || value < 0n) throw new InvalidArgumentError(`${name} must be a bigint ≥ 0`)
  return value
}

function rateLimit(name: string, value: unknown, fallback: RateLimit): RateLimit {
  const v = (value ?? fallback) as Partial<RateLimit>
  if (typeof v !== 'object' || v === null) throw new InvalidArgumentError(`${name} must be { rate, burst }`)
  return {
    rate: num(`${name}.rate`, v.rate, fallback.rate, Number.MIN_VALUE, 1e9, false),
    burst: num(`${name}.burst`, v.burst, fallback.burst, 1, 1e9, false),
  }
}

/**
 * Fills in defaults and validates; throws `InvalidArgumentError` naming the bad option.
 *
 * @example
 * const options = resolveTrackerOptions({ port: 0, probeIntervalMs: 1000 })
 */
export function resolveTrackerOptions(init: TrackerOptions = {}): ResolvedTrackerOptions {
  if (typeof init !== 'object' || init === null)
    throw new InvalidArgumentError('tracker options must be an object')
  const host = init.host ?? DEFAULT_HOST
  if (typeof host !== 'string' || host === '')
    throw new InvalidArgumentError('host must be a non-empty string')
  const probeIntervalMs = num(
    'probeIntervalMs',
    init.probeIntervalMs,
    DEFAULT_PROBE_INTERVAL_MS,
    50,
    86_400_000,
  )
  const probeTimeoutMs = num(
    'probeTimeoutMs',
    init.probeTimeoutMs,
    Math.min(DEFAULT_PROBE_TIMEOUT_MS, Math.floor(probeIntervalMs / 2)),
    10,
    600_000,
  )
  const limits = init.rateLimits ?? {}
  if (typeof limits !== 'object' || limits === null)
    throw new InvalidArgumentError('rateLimits must be an object')
  for (const key of Object.keys(limits)) {
    if (!Object.hasOwn(DEFAULT_RATE_LIMITS, key))
      throw new InvalidArgumentError(`rateLimits: unknown group "${key}"`)
  }
  const rateLimits = Object.fromEntries(
    Object.entries(DEFAULT_RATE_LIMITS).map(([k, d]) => [
      k,
      rateLimit(`rateLimits.${k}`, limits[k as keyof RateLimits], d),
    ]),
  ) as unknown as RateLimits
  const ticketMaxBudget = num(
    'ticketMaxBudget',
    init.ticketMaxBudget,
    DEFAULT_TICKET_MAX_BUDGET,
    1,
    Number.MAX_SAFE_INTEGER,
  )
  const ticketBudget = num(
    'ticketBudget',
    init.ticketBudget,
    Math.min(DEFAULT_TICKET_BUDGET, ticketMaxBudget),
    1,
    ticketMaxBudget,
  )
  const index = init.index ?? {}
  if (typeof index !== 'object' || index === null) throw new InvalidArgumentError('index must be an object')
  const mesh = init.meshProbe === true ? {} : init.meshProbe
  if (mesh !== undefined && mesh !== false && (typeof mesh !== 'object' || mesh === null))
    throw new InvalidArgumentError('meshProbe must be a boolean or an object')
  const meshProbe =
    mesh === undefined || mesh === false
      ? undefined
      : {
          intervalMs: num(
            'meshProbe.intervalMs',
            mesh.intervalMs,
            Math.max(probeIntervalMs, DEFAULT_MESH_PROBE_INTERVAL_MS),
            50,
            86_400_000,
          ),
          concurrency: num(
            'meshProbe.concurrency',
            mesh.concurrency,
            DEFAULT_MESH_PROBE_CONCURRENCY,
            1,
            4_096,
          ),
          timeoutMs: num('meshProbe.timeoutMs', mesh.timeoutMs, DEFAULT_MESH_PROBE_TIMEOUT_MS, 10, 600_000),
          backoffMaxMs: num(
            'meshProbe.backoffMaxMs',
            mesh.backoffMaxMs,
            DEFAULT_MESH_PROBE_BACKOFF_MAX_MS,
            50,
            86_400_000,
          ),
        }
  return {
    host,
    port: num('port', init.port, DEFAULT_PORT, 0, 65_535),
    probeIntervalMs,
    probeConcurrency: num('probeConcurrency', init.probeConcurrency, DEFAULT_PROBE_CONCURRENCY, 1, 65_536),
    probeTimeoutMs,
    probeJitter: num('probeJitter', init.probeJitter, DEFAULT_PROBE_JITTER, 0, 0.5, false),
    probeVerifyPerSecond: num(
      'probeVerifyPerSecond',
      init.probeVerifyPerSecond,
      DEFAULT_PROBE_VERIFY_PER_SECOND,
      1,
      1e6,
    ),
    probeVerifySample: num(
      'probeVerifySample',
      init.probeVerifySample,
      DEFAULT_PROBE_VERIFY_SAMPLE,
      0,
      1,
      false,
    ),
    healthProofSkewSeconds: num(
      'healthProofSkewSeconds',
      init.healthProofSkewSeconds,
      DEFAULT_HEALTH_PROOF_SKEW_SECONDS,
      1,
      86_400,
    ),
    auditIntervalMs: num('auditIntervalMs', init.auditIntervalMs, DEFAULT_AUDIT_INTERVAL_MS, 0, 86_400_000),
    auditTimeoutMs: num('auditTimeoutMs', init.auditTimeoutMs, DEFAULT_AUDIT_TIMEOUT_MS, 10, 600_000),
    auditMaxRange: num('auditMaxRange', init.auditMaxRange, DEFAULT_AUDIT_MAX_RANGE, 1, 16 * 1024 ** 2),
    epochSeconds: num('epochSeconds', init.epochSeconds, DEFAULT_EPOCH_SECONDS, 1, 366 * 86_400),
    submitWindowSeconds: num(
      'submitWindowSeconds',
      init.submitWindowSeconds,
      DEFAULT_SUBMIT_WINDOW_SECONDS,
      0,
      30 * 86_400,
    ),
    pricePerGiB: price('pricePerGiB', init.pricePerGiB ?? DEFAULT_PRICE_PER_GIB),
    publisherPrices: new Map(
      Object.entries(init.publisherPrices ?? {}).map(([p, v]) => {
        if (!/^0x[0-9a-fA-F]{40}$/.test(p))
          throw new InvalidArgumentError(`publisherPrices: ${p} is not an address`)
        return [p.toLowerCase(), price(`publisherPrices.${p}`, v)]
      }),
    ),
    maxClientFanout: num('maxClientFanout', init.maxClientFanout, DEFAULT_MAX_CLIENT_FANOUT, 1, 1_000_000),
    settleIntervalMs: num(
      'settleIntervalMs',
      init.settleIntervalMs,
      DEFAULT_SETTLE_INTERVAL_MS,
      0,
      86_400_000,
    ),
    verifyThreads:
      init.verifyThreads === undefined ? undefined : num('verifyThreads', init.verifyThreads, 1, 1, 256),
    maxReceiptBodyBytes: num(
      'maxReceiptBodyBytes',
      init.maxReceiptBodyBytes,
      DEFAULT_MAX_RECEIPT_BODY_BYTES,
      1024,
      2 ** 31,
    ),
    recordMaxAgeSeconds: num(
      'recordMaxAgeSeconds',
      init.recordMaxAgeSeconds,
      DEFAULT_RECORD_MAX_AGE_SECONDS,
      1,
      86_400,
    ),
    heartbeatSkewMs: num('heartbeatSkewMs', init.heartbeatSkewMs, DEFAULT_HEARTBEAT_SKEW_MS, 1, 3_600_000),
    reportMaxAgeSeconds: num(
      'reportMaxAgeSeconds',
      init.reportMaxAgeSeconds,
      DEFAULT_REPORT_MAX_AGE_SECONDS,
      1,
      86_400,
    ),
    clientReportRate: rateLimit('clientReportRate', init.clientReportRate, DEFAULT_CLIENT_REPORT_RATE),
    lowStandingBudget: num(
      'lowStandingBudget',
      init.lowStandingBudget,
      DEFAULT_LOW_STANDING_BUDGET,
      0,
      1e9,
      false,
    ),
    lowStanding: num('lowStanding', init.lowStanding, DEFAULT_LOW_STANDING, 0, 1, false),
    ticketBudget,
    ticketMaxBudget,
    ticketTtlSeconds: num(
      'ticketTtlSeconds',
      init.ticketTtlSeconds,
      DEFAULT_TICKET_TTL_SECONDS,
      1,
      366 * 86_400,
    ),
    reportRetentionMs: num(
      'reportRetentionMs',
      init.reportRetentionMs,
      DEFAULT_REPORT_RETENTION_MS,
      60_000,
      10 * 366 * 86_400_000,
    ),
    syncIntervalMs: num('syncIntervalMs', init.syncIntervalMs, DEFAULT_SYNC_INTERVAL_MS, 0, 86_400_000),
    stateFlushIntervalMs: num(
      'stateFlushIntervalMs',
      init.stateFlushIntervalMs,
      DEFAULT_STATE_FLUSH_INTERVAL_MS,
      10,
      3_600_000,
    ),
    shutdownGraceMs: num('shutdownGraceMs', init.shutdownGraceMs, DEFAULT_SHUTDOWN_GRACE_MS, 0, 600_000),
    maxBodyBytes: num('maxBodyBytes', init.maxBodyBytes, DEFAULT_MAX_BODY_BYTES, 1024, 2 ** 30),
    maxManifestBytes: num(
      'maxManifestBytes',
      init.maxManifestBytes,
      DEFAULT_MAX_MANIFEST_BYTES,
      1024,
      2 ** 31,
    ),
    maxHeaderBytes: num('maxHeaderBytes', init.maxHeaderBytes, DEFAULT_MAX_HEADER_BYTES, 1024, 1024 ** 2),
    headersTimeoutMs: num(
      'headersTimeoutMs',
      init.headersTimeoutMs,
      DEFAULT_HEADERS_TIMEOUT_MS,
      100,
      600_000,
    ),
    requestTimeoutMs: num(
      'requestTimeoutMs',
      init.requestTimeoutMs,
      DEFAULT_REQUEST_TIMEOUT_MS,
      100,
      3_600_000,
    ),
    rateLimits,
    rateLimitKeys: num('rateLimitKeys', init.rateLimitKeys, DEFAULT_RATE_LIMIT_KEYS, 16, 1e8),
    trustProxy: init.trustProxy ?? false,
    allowPrivateUrls: init.allowPrivateUrls ?? false,
    meshProbe,
    index: { ...index, probeIntervalMs },
  }
}
