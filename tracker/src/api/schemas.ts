/**
 * Strict schemas of every request body and query the API accepts: unknown fields are
 * refused, numbers must be non-negative safe integers within stated bounds, so
 * "negative or absurd figures" never reach the scoring.
 */

import { type Address, getAddress, type Hex } from 'viem'
import { z } from 'zod/v4'
import { MESH_REACHABILITY } from '../reachability/reachability.ts'
import { MAX_RATE, MAX_RTT_MS } from '../scoring/index.ts'

const ADDRESS_RE = /^0x[0-9a-fA-F]{40}$/

/** Any-case 0x address, normalized to its checksum form. */
export const address = z
  .string()
  .regex(ADDRESS_RE, 'must be a 0x-prefixed 20-byte hex address')
  // the regex issue is reported either way; only normalize what is an address
  .transform((a) => (ADDRESS_RE.test(a) ? getAddress(a) : a) as Address)

export const bytes32 = z
  .string()
  .regex(/^0x[0-9a-f]{64}$/, 'must be 32 bytes of lowercase 0x-hex')
  .transform((h) => h as Hex)

const signature = z.string().max(200)

/** A non-negative safe integer up to `max`. */
const count = (max: number) => z.int().min(0).max(max)

/** A signed record's outer shape; the record's own fields are the protocol decoder's job. */
const signedRecord = z.strictObject({ message: z.record(z.string(), z.unknown()), signature })

/** `POST /v1/nodes`: a signed node record, bare or with a heartbeat session. */
export const registerSchema = z.union([
  signedRecord.transform((record) => ({ record, session: undefined })),
  z.strictObject({
    record: signedRecord,
    session: z
      .strictObject({
        publicKey: bytes32,
        signature,
      })
      .optional(),
  }),
])
export type RegisterBody = z.output<typeof registerSchema>

/** Largest figure of a heartbeat counter (bytes, objects, requests). */
export const MAX_COUNTER = Number.MAX_SAFE_INTEGER

/** `POST /v1/nodes/heartbeat` */
/** Any-case 0x address, not normalized (the hot path skips the keccak of EIP-55). */
const rawAddress = z.string().regex(ADDRESS_RE, 'must be a 0x-prefixed 20-byte hex address')

export const heartbeatSchema = z.strictObject({
  node: rawAddress,
  /** The session id from registration. */
  session: z.string().regex(/^[0-9a-f]{32}$/, 'must be the 32 hex digit session id'),
  /** The node's clock, ms since the epoch; strictly increasing per node. */
  timestamp: count(8.64e15),
  /** Current egress, bytes/s. */
  load: count(MAX_RATE),
  cacheBytes: count(MAX_COUNTER),
  cacheObjects: count(1e12),
  /** Cumulative since the node started. */
  servedBytes: count(MAX_COUNTER),
  servedRequests: count(MAX_COUNTER),
  connections: count(10_000_000),
  /**
   * The node's own view of its mesh addresses (AutoNAT, relay reservations): `public`,
   * `relayed` (reachable through a circuit relay), `private` or `unknown`. Optional.
   */
  reachability: z.enum(MESH_REACHABILITY).optional(),
})
export type HeartbeatBody = z.output<typeof heartbeatSchema>

/** The figures a heartbeat carries (kept for `GET /v1/nodes/<address>`). */
export type HeartbeatFigures = Omit<HeartbeatBody, 'node' | 'session'>

/** Most fetches one report may summarize. */
export const MAX_REPORT_REQUESTS = 100_000

/** `POST /v1/reports` */
export const reportSchema = z.strictObject({
  message: z
    .strictObject({
      client: address,
      node: address,
      nonce: bytes32,
      timestamp: count(8.64e12),
      requests: z.int().min(1).max(MAX_REPORT_REQUESTS),
      failures: count(MAX_REPORT_REQUESTS),
      bytes: count(MAX_COUNTER),
      ttfbMs: count(MAX_RTT_MS),
      throughput: count(MAX_RATE),
      cid: z
        .string()
        .max(128)
        .regex(/^(s[a-z2-7]+)?$/, 'must be a content id or ""'),
      chunk: count(2 ** 40),
      badHash: bytes32,
    })
    .refine((m) => m.failures <= m.requests, {
      message: 'failures must not exceed requests',
      path: ['failures'],
    })
    .refine((m) => (m.cid === '') === (m.badHash === `0x${'0'.repeat(64)}`), {
      message: 'integrity evidence needs both cid and badHash (or neither)',
      path: ['badHash'],
    })
    .refine((m) => m.cid === '' || m.failures >= 1, {
      message: 'integrity evidence must be counted among the failures',
      path: ['failures'],
    }),
  signature,
})
export type ReportBody = z.output<typeof reportSchema>

/** `POST /v1/tickets`: exactly one of `site`, `cid`, `publisher` names who pays. */
export const ticketRequestSchema = z
  .strictObject({
    client: address,
    /** Bytes wanted; the tracker grants at most its maximum. */
    budget: z.int().min(1).max(Number.MAX_SAFE_INTEGER).optional(),
    /** A site: its publisher pays. */
    site: z.string().min(1).max(64).optional(),
    /** A content id: the publisher of a site whose manifest lists it pays. */
    cid: z.string().min(1).max(128).optional(),
    /** A publisher paying directly (relay tickets). */
    publisher: address.optional(),
  })
  .refine((r) => [r.site, r.cid, r.publisher].filter((v) => v !== undefined).length === 1, {
    message: 'exactly one of site, cid and publisher must be given',
    path: ['site'],
  })
export type TicketRequest = z.output<typeof ticketRequestSchema>
