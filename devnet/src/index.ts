/** @shoal/devnet — the whole network on one machine (`npm start`). */
export { type DevnetArgs, type DevnetCommand, MAX_NODES, parseDevnetArgs, portsOf } from './args.ts'
export {
  DEVNET_EPOCH_SECONDS,
  DEVNET_PRICE_PER_GIB,
  DEVNET_REGIONS,
  type Devnet,
  type DevnetNode,
  type DevnetProgress,
  PUBLISHER_DEPOSIT,
  startDevnet,
} from './devnet.ts'
export { type NodeSummary, runScenario, SAMPLE_SITE, type ScenarioResult } from './scenario.ts'
