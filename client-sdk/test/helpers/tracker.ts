/**
 * A real tracker (`@shoal/tracker`, SQLite in a temp dir, port 0) with helpers to
 * register nodes under the URLs the client should use, and to publish site manifests.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  encodeNodeRecord,
  encodeSiteManifest,
  type ManifestEntry,
  type Signed,
  type SiteManifest,
  signNodeRecord,
  signSiteManifest,
} from '@shoal/protocol'
import { createSqliteStore, createTracker, type Tracker } from '@shoal/tracker'
import { generatePrivateKey, type PrivateKeyAccount, privateKeyToAccount } from 'viem/accounts'
import { waitFor } from './nodes.ts'

export interface TrackerFixture {
  tracker: Tracker
  url: string
  /** The tracker's key: it signs tickets. */
  account: PrivateKeyAccount
  close(): Promise<void>
}

export async function startTracker(): Promise<TrackerFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-sdk-tracker-'))
  const account = privateKeyToAccount(generatePrivateKey())
  const tracker = createTracker(
    {
      port: 0,
      allowPrivateUrls: true,
      probeIntervalMs: 300,
      probeTimeoutMs: 300,
      auditIntervalMs: 0,
      stateFlushIntervalMs: 100,
      shutdownGraceMs: 200,
      rateLimits: { reports: { rate: 1000, burst: 1000 }, tickets: { rate: 1000, burst: 1000 } },
    },
    {
      store: createSqliteStore({ path: join(dir, 'tracker.db') }),
      account,
    },
  )
  await tracker.start()
  return {
    tracker,
    url: tracker.url,
    account,
    async close() {
      await tracker.stop()
      await rm(dir, { recursive: true, force: true })
    },
  }
}

const BASE58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'
const now = () => Math.floor(Date.now() / 1000)

async function post(url: string, body: string) {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
  const text = await res.text()
  if (res.status >= 300) throw new Error(`${url} answered ${res.status}: ${text}`)
  return JSON.parse(text) as Record<string, unknown>
}

/**
 * Registers a node key under `httpUrl` (which must answer `/health?challenge=` signed by
 * `account`: a real edge node with that account, or a proxy in front of one) and waits
 * until the tracker's probes made it active.
 */
export async function registerNode(
  t: TrackerFixture,
  account: PrivateKeyAccount,
  httpUrl: string,
): Promise<void> {
  const signed = await signNodeRecord(account, {
    node: account.address,
    peerId: `12D3KooW${[...crypto.getRandomValues(new Uint8Array(44))].map((b) => BASE58[b % 58]).join('')}`,
    multiaddrs: ['/ip4/127.0.0.1/tcp/4001'],
    httpUrl,
    region: 'eu-west',
    capacity: 12_500_000,
    payout: account.address,
    timestamp: now(),
  })
  await post(`${t.url}/v1/nodes`, encodeNodeRecord(signed))
  await waitFor(() => t.tracker.index.get(account.address)?.status === 'active', 10_000)
}

export async function signManifest(
  publisher: PrivateKeyAccount,
  site: string,
  sequence: number,
  entries: ManifestEntry[],
  origin = '',
): Promise<Signed<SiteManifest>> {
  return signSiteManifest(publisher, {
    publisher: publisher.address,
    site,
    sequence,
    origin,
    timestamp: now(),
    entries: [...entries].sort((a, b) => (a.path < b.path ? -1 : 1)),
  })
}

export async function publish(t: TrackerFixture, signed: Signed<SiteManifest>): Promise<void> {
  await post(`${t.url}/v1/sites`, encodeSiteManifest(signed))
}
