/**
 * The persistent part of a node's state, one plain row per node: what a storage
 * adapter saves and what `restore` rebuilds an index from. Times are ms since the
 * epoch; rates are bytes/s; `null` means "never".
 */
import { InvalidArgumentError } from '@shoal/protocol'
import { MAX_RATE, MAX_RTT_MS } from '../scoring/constants.ts'

export interface NodeStateRow {
  /** The node's Ethereum address (0x-hex). */
  node: string
  region: string
  /** Egress bytes/s from the node's record. */
  capacity: number
  registeredAt: number
  flagged: boolean
  latencyMs: number | null
  lastAnsweredAt: number | null
  lastProbeAt: number | null
  consecutiveMisses: number
  /** The uptime window, oldest first: `'1'` answered, `'0'` missed. */
  uptime: string
  /** Reporter-weighted successes and failures, as of `reportAt`. */
  successes: number
  failures: number
  reportAt: number | null
  throughput: number | null
  integrityFailures: number
  coolOffUntil: number | null
  /** Egress bytes/s from the last heartbeat. */
  load: number
  heartbeatAt: number | null
  /** Weight the node is placed with, kept so placement is identical after a restart. */
  placementWeight: number
}

/** A 0x-prefixed 20-byte hex address, any case. */
export const ADDRESS_RE = /^0x[0-9a-fA-F]{40}$/

const UPTIME_RE = /^[01]*$/
const MAX_TIME = 8.64e15

function fail(i: number, field: string, why: string): never {
  throw new InvalidArgumentError(`row ${i}: ${field} ${why}`)
}

function num(i: number, row: Record<string, unknown>, field: string, min: number, max: number): number {
  const v = row[field]
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    fail(i, field, `must be a number from ${min} to ${max}, got ${JSON.stringify(v)}`)
  }
  return v
}

function nullable(
  i: number,
  row: Record<string, unknown>,
  field: string,
  min: number,
  max: number,
): number | null {
  return row[field] === null ? null : num(i, row, field, min, max)
}

function int(i: number, row: Record<string, unknown>, field: string, max: number): number {
  const v = num(i, row, field, 0, max)
  if (!Number.isInteger(v)) fail(i, field, `must be an integer, got ${v}`)
  return v
}

/**
 * Checks one row field by field; throws `InvalidArgumentError` naming row `i` and the
 * field. Region names are checked by the index.
 */
export function checkRow(i: number, value: unknown): NodeStateRow {
  if (typeof value !== 'object' || value === null) fail(i, 'row', 'must be an object')
  const row = value as Record<string, unknown>
  if (typeof row.node !== 'string' || !ADDRESS_RE.test(row.node)) fail(i, 'node', 'must be a 0x-hex address')
  if (typeof row.region !== 'string') fail(i, 'region', 'must be a string')
  if (typeof row.flagged !== 'boolean') fail(i, 'flagged', 'must be a boolean')
  if (typeof row.uptime !== 'string' || !UPTIME_RE.test(row.uptime) || row.uptime.length > 65_536) {
    fail(i, 'uptime', 'must be a string of 0 and 1')
  }
  return {
    node: row.node,
    region: row.region,
    capacity: num(i, row, 'capacity', 0, Number.MAX_SAFE_INTEGER),
    registeredAt: num(i, row, 'registeredAt', 0, MAX_TIME),
    flagged: row.flagged,
    latencyMs: nullable(i, row, 'latencyMs', 0, MAX_RTT_MS),
    lastAnsweredAt: nullable(i, row, 'lastAnsweredAt', 0, MAX_TIME),
    lastProbeAt: nullable(i, row, 'lastProbeAt', 0, MAX_TIME),
    consecutiveMisses: int(i, row, 'consecutiveMisses', 65_535),
    uptime: row.uptime,
    successes: num(i, row, 'successes', 0, 1e15),
    failures: num(i, row, 'failures', 0, 1e15),
    reportAt: nullable(i, row, 'reportAt', 0, MAX_TIME),
    throughput: nullable(i, row, 'throughput', 0, MAX_RATE),
    integrityFailures: int(i, row, 'integrityFailures', 65_535),
    coolOffUntil: nullable(i, row, 'coolOffUntil', 0, MAX_TIME),
    load: num(i, row, 'load', 0, MAX_RATE),
    heartbeatAt: nullable(i, row, 'heartbeatAt', 0, MAX_TIME),
    placementWeight: int(i, row, 'placementWeight', 0xffff_ffff),
  }
}
