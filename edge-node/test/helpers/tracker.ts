/**
 * A real tracker for the edge node's tests (`@shoal/tracker`, SQLite in `dir`), probing
 * fast; `host` and the options override the defaults (the NAT test listens on its veth).
 */
import { join } from 'node:path'
import {
  createSqliteStore,
  createTracker,
  type Tracker,
  type TrackerComponents,
  type TrackerOptions,
} from '@shoal/tracker'
import type { Hex } from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'

export async function startTestTracker(
  dir: string,
  options: Partial<TrackerOptions> = {},
  components: { key?: Hex; register?: TrackerComponents['register'] } = {},
): Promise<Tracker> {
  const tracker = createTracker(
    {
      port: 0,
      allowPrivateUrls: true,
      probeIntervalMs: 300,
      probeTimeoutMs: 1000,
      auditIntervalMs: 0,
      stateFlushIntervalMs: 100,
      shutdownGraceMs: 200,
      ...options,
    },
    {
      store: createSqliteStore({ path: join(dir, 'tracker.db') }),
      account: privateKeyToAccount(components.key ?? generatePrivateKey()),
      ...(components.register !== undefined ? { register: components.register } : {}),
    },
  )
  await tracker.start()
  return tracker
}
