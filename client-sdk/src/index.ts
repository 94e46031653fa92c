/**
 * @shoal/client-sdk — how apps and publishers reach Shoal. Browser-safe: no `node:`
 * imports here (Node-only parts are in `@shoal/client-sdk/node`).
 */
export {
  createTrackerClient,
  DEFAULT_TRACKER_TIMEOUT_MS,
  type TrackerClient,
  type TrackerClientInit,
} from './tracker-client.ts'
