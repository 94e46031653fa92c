/**
 * What a node needs to register with a tracker and send heartbeats, without loading the
 * tracker itself (stores, pg): `import … from '@shoal/tracker/node-session'`.
 * The protocol is in docs/tracker.md (Heartbeats).
 */
export {
  createSessionKeyPair,
  deriveSessionKey,
  HEARTBEAT_MAC_HEADER,
  macHeartbeat,
  type SessionKeyPair,
} from './heartbeat/session.ts'
export { signTrackerSession } from './signing/sign.ts'
export type { TrackerSession } from './signing/types.ts'
