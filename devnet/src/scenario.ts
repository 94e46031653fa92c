/**
 * What the devnet shows once it is up: the publisher publishes the sample site, apps
 * fetch it through the SDK (paying nodes with receipts, catching the corrupt node), the
 * nodes submit their receipts when the epoch ends, the tracker settles the epoch on
 * chain, every node claims with `shoal-node claim`, and a table says who did what.
 */
import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { createClient } from '@shoal/client-sdk'
import { publishDirectory, walkDirectory } from '@shoal/client-sdk/node'
import { shoalTokenAbi } from '@shoal/contracts'
import { formatUnits } from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { DEVNET_EPOCH_SECONDS, type Devnet, type DevnetNode, type DevnetProgress } from './devnet.ts'

const NODE_BIN = fileURLToPath(new URL('../../edge-node/bin/shoal-node.ts', import.meta.url))
const run = promisify(execFile)

/** The site the devnet publishes. */
export const SAMPLE_SITE = 'sample'
/** Apps fetching the site, and how many times each reads every file. */
const CLIENTS = 3
const ROUNDS = 2

export interface NodeSummary {
  node: DevnetNode
  status: string
  score: number
  servedBytes: number
  hitRatio: number | null
  receipts: number
  receiptedBytes: number
  earned: bigint
  integrityFailures: number
}

export interface ScenarioResult {
  published: { files: number; bytes: number }
  fetched: { requests: number; bytes: number; verifiedEqual: boolean }
  integrityFailuresSeen: number
  receiptsAccepted: number
  settledEpochs: number[]
  nodes: NodeSummary[]
  originRequests: number
  table: string
}

async function until<T>(
  what: string,
  fn: () => Promise<T | undefined> | T | undefined,
  timeoutMs: number,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (v !== undefined) return v
    if (Date.now() > deadline) throw new Error(`the devnet timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

const sleepUntil = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms - Date.now())))

async function json(url: string): Promise<Record<string, unknown>> {
  const res = await fetch(url)
  if (!res.ok) throw new Error(`${url} answered ${res.status}`)
  return (await res.json()) as Record<string, unknown>
}

export async function runScenario(devnet: Devnet, progress: DevnetProgress): Promise<ScenarioResult> {
  const tracker = devnet.tracker
  progress.step('waiting for every node to be probed into selection')
  await until(
    'the nodes to become active',
    () => (devnet.nodes.every((n) => tracker.index.get(n.address)?.status === 'active') ? true : undefined),
    60_000,
  )
  progress.done(`${devnet.nodes.length} active`)

  progress.step(`publishing the sample site as "${SAMPLE_SITE}"`)
  const published = await publishDirectory(devnet.siteDir, {
    site: SAMPLE_SITE,
    tracker: tracker.url,
    account: devnet.publisher,
    replicas: 2,
    origin: `${devnet.origin.url}/`,
  })
  const files = await walkDirectory(devnet.siteDir)
  progress.done(`${published.files} files, ${published.bytes} bytes`)

  progress.step(`fetching the site through the SDK: ${CLIENTS} apps × ${ROUNDS} rounds`)
  let requests = 0
  let bytes = 0
  let verifiedEqual = true
  let integrityFailuresSeen = 0
  let receiptsAccepted = 0
  const firstEpoch = Math.floor(Date.now() / 1000 / DEVNET_EPOCH_SECONDS)
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      const client = createClient({
        tracker: tracker.url,
        account: privateKeyToAccount(generatePrivateKey()),
        receiptEveryBytes: 256 * 1024,
        onEvent(event) {
          if (event.type === 'integrity-failure') integrityFailuresSeen++
          if (event.type === 'receipt' && event.outcome === 'accepted') receiptsAccepted++
        },
      })
      try {
        for (let round = 0; round < ROUNDS; round++) {
          for (const file of files) {
            const res = await client.fetch(`shoal://${SAMPLE_SITE}${file.path}`)
            const body = new Uint8Array(await res.arrayBuffer())
            const expected = await readFile(file.file)
            if (!Buffer.from(body).equals(expected)) verifiedEqual = false
            requests++
            bytes += body.length
          }
        }
      } finally {
        await client.stop()
      }
    }),
  )
  // the tracker's content audits check every node, whether or not apps happened to read
  // from it: one pass over the site here, as the auditor's schedule would do in time
  const corrupt = devnet.nodes.find((n) => n.corrupt)
  if (corrupt !== undefined && tracker.index.get(corrupt.address)?.status !== 'cooling-off') {
    for (const content of published.contents) {
      const outcome = await tracker.auditor.audit(corrupt.address, content.cid)
      if (outcome.outcome === 'failed') break
    }
  }
  const lastEpoch = Math.floor(Date.now() / 1000 / DEVNET_EPOCH_SECONDS)
  progress.done(
    `${requests} fetches, ${bytes} bytes, all verified${integrityFailuresSeen > 0 ? `; ${integrityFailuresSeen} corrupt chunks caught and reported` : ''}`,
  )

  progress.step(
    `settling epoch${lastEpoch > firstEpoch ? 's' : ''} ${firstEpoch}${lastEpoch > firstEpoch ? `–${lastEpoch}` : ''} on chain (after the epoch and its submission window)`,
  )
  const windowSeconds = tracker.options.submitWindowSeconds
  await sleepUntil(((lastEpoch + 1) * DEVNET_EPOCH_SECONDS + windowSeconds + 1) * 1000)
  const settledEpochs: number[] = []
  for (let epoch = firstEpoch; epoch <= lastEpoch; epoch++) {
    await tracker.settler!.settle(epoch)
    settledEpochs.push(epoch)
  }
  progress.done(`${settledEpochs.length} epoch${settledEpochs.length > 1 ? 's' : ''} posted`)

  progress.step('every node claims its earnings with shoal-node claim')
  await Promise.all(
    devnet.nodes.map((node) =>
      run(
        process.execPath,
        [
          NODE_BIN,
          'claim',
          '--data-dir',
          node.dataDir,
          '--tracker',
          tracker.url,
          '--rpc-url',
          devnet.chain.url,
          '--distributor',
          devnet.contracts.distributor,
        ],
        { env: { ...process.env, SHOAL_KEY_PASSPHRASE: 'shoal-devnet' } },
      ),
    ),
  )
  progress.done()

  const nodes = await Promise.all(devnet.nodes.map((node) => summarize(devnet, node)))
  return {
    published: { files: published.files, bytes: published.bytes },
    fetched: { requests, bytes, verifiedEqual },
    integrityFailuresSeen,
    receiptsAccepted,
    settledEpochs,
    nodes,
    originRequests: devnet.origin.requests,
    table: renderTable(devnet, nodes),
  }
}

async function summarize(devnet: Devnet, node: DevnetNode): Promise<NodeSummary> {
  const view = devnet.tracker.index.get(node.address)
  const dash = (await json(`${node.url}/dashboard/data.json`)) as {
    traffic: { totalBytes: number }
    cache: { hitRatio: number | null }
    receipts: { receipts: number; bytes: number } | null
  }
  const info = (await json(`${devnet.tracker.url}/v1/nodes/${node.address}`)) as {
    integrityEvents?: unknown[]
  }
  const earned = await devnet.chain.client.publicClient.readContract({
    address: devnet.contracts.token,
    abi: shoalTokenAbi,
    functionName: 'balanceOf',
    args: [node.address],
  })
  return {
    node,
    status: view?.status ?? 'unknown',
    score: view?.score ?? 0,
    servedBytes: dash.traffic.totalBytes,
    hitRatio: dash.cache.hitRatio,
    receipts: dash.receipts?.receipts ?? 0,
    receiptedBytes: dash.receipts?.bytes ?? 0,
    earned,
    integrityFailures: info.integrityEvents?.length ?? 0,
  }
}

function renderTable(devnet: Devnet, nodes: NodeSummary[]): string {
  const header = [
    'node',
    'region',
    'status',
    'score',
    'served',
    'hit ratio',
    'receipts',
    'receipted',
    'earned SHOAL',
    'integrity failures',
  ]
  const mib = (n: number) => `${(n / 2 ** 20).toFixed(2)} MiB`
  const rows = nodes.map((n) => [
    n.node.corrupt ? `${n.node.name} (corrupt)` : n.node.name,
    n.node.region,
    n.status,
    n.score.toFixed(2),
    mib(n.servedBytes),
    n.hitRatio === null ? '—' : n.hitRatio.toFixed(2),
    String(n.receipts),
    mib(n.receiptedBytes),
    Number(formatUnits(n.earned, 18)).toFixed(6),
    String(n.integrityFailures),
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ')
  const urls = [
    '',
    `tracker API        ${devnet.tracker.url}/v1/stats`,
    `network dashboard  ${devnet.tracker.url}/dashboard`,
    ...devnet.nodes.map((n) => `${`${n.name} dashboard`.padEnd(19)}${n.url}/dashboard`),
    `chain JSON-RPC     ${devnet.chain.url} (chain id ${devnet.chain.chainId})`,
    `sample origin      ${devnet.origin.url}/ (${devnet.origin.requests} requests answered)`,
    `logs and data      ${devnet.dataDir}`,
  ]
  return [line(header), line(widths.map((w) => '─'.repeat(w))), ...rows.map(line), ...urls].join('\n')
}
