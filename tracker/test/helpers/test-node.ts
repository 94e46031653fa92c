/**
 * A small real node for tests: a node:http server on 127.0.0.1 with its own Ethereum
 * key that answers `/health?challenge=…` with a signed HealthProof, and serves content
 * (`/c/<cid>` with Range, `/c/<cid>/leaves`) — optionally with one bit flipped.
 */
import { randomBytes } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import {
  computeCid,
  encodeHealthProof,
  encodeNodeRecord,
  encodeSiteManifest,
  type NodeRecord,
  type Signed,
  type SiteManifest,
  signHealthProof,
  signNodeRecord,
  signSiteManifest,
} from '@shoal/protocol'
import { generatePrivateKey, type PrivateKeyAccount, privateKeyToAccount } from 'viem/accounts'
import {
  createSessionKeyPair,
  deriveSessionKey,
  HEARTBEAT_MAC_HEADER,
  macHeartbeat,
  type NodeReport,
  signNodeReport,
  signTrackerSession,
  ZERO_HASH,
} from '../../src/index.ts'

const BASE58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'

export function randomPeerId(): string {
  let out = '12D3KooW'
  for (const b of randomBytes(36)) out += BASE58[b % 58]
  return out
}

export const nowSeconds = () => Math.floor(Date.now() / 1000)

export interface Content {
  cid: string
  bytes: Uint8Array
  leaves: Uint8Array
}

export async function makeContent(size: number, chunkSize = 1024): Promise<Content> {
  const bytes = new Uint8Array(randomBytes(size))
  const { cid, leaves } = await computeCid(bytes, { chunkSize })
  return { cid: cid.text, bytes, leaves: new Uint8Array(leaves) }
}

export interface TestNode {
  readonly account: PrivateKeyAccount
  readonly address: `0x${string}`
  readonly url: string
  readonly peerId: string
  /** Health answers sent. */
  health: number
  /** When set, answers health probes with this status instead (e.g. 503), or a forged signature. */
  mode: 'ok' | 'refuse' | 'forge' | 'slow'
  /** Adds content it serves; `flipBit` serves it with bit 0 of the given byte flipped. */
  serve(content: Content, options?: { flipBit?: number }): void
  record(over?: Partial<NodeRecord>): NodeRecord
  signedRecord(over?: Partial<NodeRecord>): Promise<Signed<NodeRecord>>
  close(): Promise<void>
}

export async function startTestNode(options: { region?: string; capacity?: number } = {}): Promise<TestNode> {
  const account = privateKeyToAccount(generatePrivateKey())
  const contents = new Map<string, { content: Content; served: Uint8Array }>()
  const peerId = randomPeerId()
  const node: TestNode = {
    account,
    address: account.address,
    url: '',
    peerId,
    health: 0,
    mode: 'ok',
    serve(content, { flipBit } = {}) {
      const served = new Uint8Array(content.bytes)
      if (flipBit !== undefined) served[flipBit] = served[flipBit]! ^ 1
      contents.set(content.cid, { content, served })
    },
    record(over = {}) {
      return {
        node: account.address,
        peerId,
        multiaddrs: ['/ip4/127.0.0.1/tcp/4001'],
        httpUrl: node.url,
        region: options.region ?? 'eu-west',
        capacity: options.capacity ?? 12_500_000,
        payout: account.address,
        timestamp: nowSeconds(),
        ...over,
      }
    },
    signedRecord(over = {}) {
      return signNodeRecord(account, node.record(over))
    },
    async close() {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
  const server: Server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    if (url.pathname === '/health') {
      node.health++
      if (node.mode === 'refuse') {
        res.writeHead(503).end()
        return
      }
      if (node.mode === 'slow') return // never answers
      const challenge = url.searchParams.get('challenge') as `0x${string}`
      const signed = await signHealthProof(account, {
        node: account.address,
        challenge,
        timestamp: nowSeconds(),
      })
      if (node.mode === 'forge') {
        // a proxy's answer: right shape, signature by another key
        const other = privateKeyToAccount(generatePrivateKey())
        const forged = await signHealthProof(other, {
          node: other.address,
          challenge,
          timestamp: nowSeconds(),
        })
        signed.signature = forged.signature
      }
      const body = `{"status":"ok","node":"${account.address}","proof":${encodeHealthProof(signed)}}`
      res.writeHead(200, { 'content-type': 'application/json' }).end(body)
      return
    }
    const m = /^\/c\/([a-z2-7]+)(\/leaves)?$/.exec(url.pathname)
    const held = m === null ? undefined : contents.get(m[1]!)
    if (held === undefined) {
      res.writeHead(404).end()
      return
    }
    if (m![2] !== undefined) {
      res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(held.content.leaves)
      return
    }
    const range = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '')
    if (range === null) {
      res.writeHead(200).end(held.served)
      return
    }
    const start = Number(range[1])
    const end = Math.min(Number(range[2]), held.served.length - 1)
    res
      .writeHead(206, { 'content-range': `bytes ${start}-${end}/${held.served.length}` })
      .end(held.served.subarray(start, end + 1))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  ;(node as { url: string }).url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
  return node
}

export interface Registered {
  status: number
  body: Record<string, unknown>
  /** The agreed heartbeat key (when the registration asked for a session). */
  key?: Buffer
  sessionId?: string
}

export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  })
  const text = await res.text()
  return {
    status: res.status,
    body: (text === '' ? {} : JSON.parse(text)) as Record<string, unknown>,
    headers: res.headers,
  }
}

/** Registers `node` with the tracker (with a heartbeat session unless `session: false`). */
export async function registerNode(
  trackerUrl: string,
  node: TestNode,
  options: { session?: boolean; over?: Partial<NodeRecord>; signed?: Signed<NodeRecord> } = {},
): Promise<Registered> {
  const signed = options.signed ?? (await node.signedRecord(options.over))
  if (options.session === false) {
    const r = await postJson(`${trackerUrl}/v1/nodes`, encodeNodeRecord(signed))
    return r
  }
  const pair = createSessionKeyPair()
  const session = await signTrackerSession(node.account, {
    node: node.address,
    publicKey: pair.publicKey,
    timestamp: signed.message.timestamp,
  })
  const r = await postJson(`${trackerUrl}/v1/nodes`, {
    record: JSON.parse(encodeNodeRecord(signed)),
    session: { publicKey: pair.publicKey, signature: session.signature },
  })
  const s = r.body.session as { id: string; publicKey: string } | undefined
  if (s === undefined) return r
  return { ...r, sessionId: s.id, key: deriveSessionKey(pair.privateKey, s.publicKey, s.id, node.address) }
}

export interface HeartbeatFigures {
  /** The node's mesh reachability claim. */
  reachability?: 'public' | 'relayed' | 'private' | 'unknown'
  load?: number
  cacheBytes?: number
  cacheObjects?: number
  servedBytes?: number
  servedRequests?: number
  connections?: number
}

/** Sends one heartbeat with the session key. */
export async function sendHeartbeat(
  trackerUrl: string,
  node: { address: string },
  session: { key: Buffer; sessionId: string },
  options: { timestamp?: number; figures?: HeartbeatFigures; body?: string; mac?: string } = {},
) {
  const body =
    options.body ??
    JSON.stringify({
      node: node.address,
      session: session.sessionId,
      timestamp: options.timestamp ?? Date.now(),
      load: 1000,
      cacheBytes: 1 << 20,
      cacheObjects: 10,
      servedBytes: 5 << 20,
      servedRequests: 100,
      connections: 3,
      ...options.figures,
    })
  return postJson(`${trackerUrl}/v1/nodes/heartbeat`, body, {
    [HEARTBEAT_MAC_HEADER]: options.mac ?? macHeartbeat(session.key, body),
  })
}

export async function publishSite(
  trackerUrl: string,
  publisher: PrivateKeyAccount,
  site: string,
  sequence: number,
  entries: { path: string; content: Content }[],
): Promise<{ status: number; body: Record<string, unknown>; signed: Signed<SiteManifest> }> {
  const signed = await signSiteManifest(publisher, {
    publisher: publisher.address,
    site,
    sequence,
    origin: '',
    timestamp: nowSeconds(),
    entries: entries
      .map((e) => ({
        path: e.path,
        cid: e.content.cid,
        size: e.content.bytes.length,
        contentType: 'application/octet-stream',
        cacheControl: '',
      }))
      .sort((a, b) => (a.path < b.path ? -1 : 1)),
  })
  const r = await postJson(`${trackerUrl}/v1/sites`, encodeSiteManifest(signed))
  return { ...r, signed }
}

export async function signedReport(
  client: PrivateKeyAccount,
  over: Partial<NodeReport> & { node: `0x${string}` },
) {
  return signNodeReport(client, {
    client: client.address,
    nonce: `0x${randomBytes(32).toString('hex')}`,
    timestamp: nowSeconds(),
    requests: 10,
    failures: 0,
    bytes: 10 << 20,
    ttfbMs: 40,
    throughput: 8_000_000,
    cid: '',
    chunk: 0,
    badHash: ZERO_HASH,
    ...over,
  })
}

export function waitFor<T>(
  fn: () => T | Promise<T>,
  { timeoutMs = 20_000, intervalMs = 20 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs
  return new Promise((resolve, reject) => {
    const tick = async () => {
      try {
        const v = await fn()
        if (v !== undefined && v !== null && v !== false) return resolve(v as NonNullable<T>)
      } catch (err) {
        if (Date.now() > deadline) return reject(err)
      }
      if (Date.now() > deadline) return reject(new Error('timed out waiting'))
      setTimeout(tick, intervalMs)
    }
    void tick()
  })
}
