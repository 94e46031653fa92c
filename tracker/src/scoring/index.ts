/**
 * Node scoring: the score formula, its options and defaults, and node statuses. The
 * per-node state table (`table.ts`) is internal to the node index. Specified in
 * docs/scoring.md.
 */
export * from './constants.ts'
export { type ResolvedScoringOptions, resolveScoringOptions, type ScoringOptions } from './options.ts'
export {
  computeScore,
  integrityComponent,
  latencyComponent,
  SCORE_FORMULA,
  type ScoreComponents,
  type ScoreInputs,
  scoreOf,
  successComponent,
  throughputComponent,
  uptimeComponent,
} from './score.ts'
export type { NodeFigures } from './table.ts'
