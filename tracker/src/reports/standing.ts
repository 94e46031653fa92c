/**
 * A reporter's standing: how much one of its reports moves a node's score, in [0, 1].
 *
 *   standing = (0.05 + 0.15·ticket + 0.4·age + 0.4·history) / (1 + 5·refuted)
 *
 *   ticket  = 1 when this tracker issued the client a ticket (tickets are rate-limited per IP)
 *   age     = days since the client was first seen ÷ 7, at most 1
 *   history = accepted reports ÷ 100, at most 1
 *   refuted = reports whose integrity evidence the CID's leaves contradicted
 *
 * A fresh key has standing 0.05, so twenty fresh keys weigh what one established client
 * weighs; on top of that, all reporters below `lowStanding` together may move a node by
 * at most `lowStandingBudget` report-weights per hour (`createReportService`).
 */
import type { ClientRow } from '../store/types.ts'

export const STANDING_BASE = 0.05
export const STANDING_TICKET = 0.15
export const STANDING_AGE = 0.4
export const STANDING_HISTORY = 0.4
export const STANDING_AGE_DAYS = 7
export const STANDING_HISTORY_REPORTS = 100
export const STANDING_REFUTED_PENALTY = 5

const DAY_MS = 86_400_000

/**
 * @example
 * standingOf(undefined, Date.now()) // 0.05: a key never seen before
 */
export function standingOf(client: ClientRow | undefined, now: number): number {
  if (client === undefined) return STANDING_BASE
  const age = Math.min(1, Math.max(0, now - client.firstSeen) / (STANDING_AGE_DAYS * DAY_MS))
  const history = Math.min(1, client.reports / STANDING_HISTORY_REPORTS)
  const ticket = client.tickets > 0 ? 1 : 0
  const raw = STANDING_BASE + STANDING_TICKET * ticket + STANDING_AGE * age + STANDING_HISTORY * history
  return Math.min(1, raw / (1 + STANDING_REFUTED_PENALTY * client.refuted))
}
