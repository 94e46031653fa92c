/**
 * @shoal/contracts — Shoal's contracts as TypeScript: ABIs and bytecode of ShoalToken,
 * PublisherEscrow and RewardDistributor (compiled by `npm run build -w contracts`),
 * `deployShoal`, `buildPayoutTree` for epoch payout roots, and `startChain`, an
 * in-process EVM (Hardhat 3's EDR) with viem clients for tests and the devnet.
 */
export {
  buildPayoutTree,
  MAX_PAYOUT_AMOUNT,
  PAYOUT_LEAF_ENCODING,
  type PayoutEntry,
  type PayoutTree,
  type PayoutTreeDump,
} from './buildPayoutTree.ts'
export {
  DEFAULT_ACCOUNT_BALANCE,
  DEFAULT_ACCOUNT_COUNT,
  DEFAULT_CHAIN_ID,
  DEFAULT_HARDFORK,
  DEFAULT_NOTICE_PERIOD_SECONDS,
  DEV_MNEMONIC,
} from './constants.ts'
export { type DeployShoalOptions, deployShoal, type ShoalDeployment } from './deployShoal.ts'
export { fundEscrow } from './fundEscrow.ts'
export * from './generated/index.ts'
export { ROLES, type Role } from './roles.ts'
export {
  type Eip1193Provider,
  type JsonRpcServer,
  type ServeJsonRpcOptions,
  serveJsonRpc,
} from './serveJsonRpc.ts'
export { type DevAccount, type ShoalChain, type StartChainOptions, startChain } from './startChain.ts'
