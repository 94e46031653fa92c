/**
 * Node scoring: the score formula, its options and defaults, and the compact per-node
 * state table. Specified in docs/scoring.md.
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
export { NODE_FLAG, type NodeFigures, NodeTable } from './table.ts'
