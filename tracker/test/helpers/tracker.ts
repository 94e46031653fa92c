/**
 * Starts real trackers on 127.0.0.1 port 0 with a SQLite store in a temp dir, or with
 * the store a test hands in (`openStore`, e.g. a PostgreSQL database).
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Registry } from 'prom-client'
import { generatePrivateKey, type PrivateKeyAccount, privateKeyToAccount } from 'viem/accounts'
import {
  createSqliteStore,
  createTracker,
  type Tracker,
  type TrackerOptions,
  type TrackerStore,
} from '../../src/index.ts'

/** Opens the store of a tracker whose data dir is `dir`; called again on every restart. */
export type OpenStore = (dir: string) => TrackerStore

/** The default: SQLite in the data dir. */
export const openSqliteStore: OpenStore = (dir) => createSqliteStore({ path: join(dir, 'tracker.db') })

export interface TrackerFixture {
  tracker: Tracker
  url: string
  dir: string
  account: PrivateKeyAccount
  /** Stops this tracker and starts a new one on the same data (and key). */
  restart(over?: TrackerOptions): Promise<TrackerFixture>
  close(): Promise<void>
}

export const FAST: TrackerOptions = {
  port: 0,
  allowPrivateUrls: true,
  probeIntervalMs: 300,
  probeTimeoutMs: 150,
  auditIntervalMs: 0,
  stateFlushIntervalMs: 100,
  shutdownGraceMs: 200,
}

export async function startTracker(
  over: TrackerOptions = {},
  reuse: { dir?: string; account?: PrivateKeyAccount; keep?: boolean; openStore?: OpenStore } = {},
): Promise<TrackerFixture> {
  const openStore = reuse.openStore ?? openSqliteStore
  const dir = reuse.dir ?? (await mkdtemp(join(tmpdir(), 'shoal-tracker-')))
  const account = reuse.account ?? privateKeyToAccount(generatePrivateKey())
  const tracker = createTracker(
    { ...FAST, ...over },
    { store: openStore(dir), account, register: new Registry() },
  )
  await tracker.start()
  let closed = false
  let handedOver = reuse.keep === true
  const fixture: TrackerFixture = {
    tracker,
    url: tracker.url,
    dir,
    account,
    async restart(next = over) {
      await tracker.stop()
      closed = true
      handedOver = true
      return startTracker(next, { dir, account, openStore })
    },
    async close() {
      if (!closed) await tracker.stop()
      closed = true
      if (!handedOver) await rm(dir, { recursive: true, force: true })
    },
  }
  return fixture
}
