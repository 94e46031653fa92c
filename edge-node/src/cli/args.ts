/**
 * `shoal-node` command-line parsing: flags, environment and an optional JSON config
 * file become `EdgeNodeOptions`. Precedence: flags > environment > config file >
 * defaults. Pure (the caller reads the file and passes the env), so it is testable.
 */
import { parseArgs } from 'node:util'
import { InvalidArgumentError } from '@shoal/protocol'
import type { EdgeNodeOptions, OriginSite } from '../config.ts'
import type { RelayOptions } from '../relay/options.ts'

export const USAGE = `shoal-node — run a Shoal edge node

Usage:
  shoal-node start [options]          start the node
  shoal-node key create [--data-dir]  create the node key (asks for a passphrase on a TTY,
                                      else reads SHOAL_KEY_PASSPHRASE)
  shoal-node key show [--data-dir]    print the node's address
  shoal-node claim --rpc-url URL --distributor 0xADDR [--tracker URL] [--payout 0xADDR] [--data-dir]
                                      collect the node's settled earnings (the node key pays gas)
  shoal-node --help | --version

Start options (each has an environment variable; flags win):
  --config FILE            JSON file with any of the options below (camelCase keys)
  --listen HOST:PORT       listen address            SHOAL_LISTEN       (default 127.0.0.1:7480)
  --data-dir DIR           cache, key, receipts      SHOAL_DATA_DIR     (default ./shoal-data)
  --memory-cache SIZE      memory tier budget        SHOAL_MEMORY_CACHE (default 64MiB)
  --memory-policy NAME     lru|s3-fifo: memory tier eviction   SHOAL_MEMORY_POLICY (default lru)
  --disk-cache SIZE        disk tier budget          SHOAL_DISK_CACHE   (default 2GiB)
  --disk-admission WHEN    second-use|first-use: when an origin object goes to disk
                                                     SHOAL_DISK_ADMISSION (default second-use)
  --fast-miss on|off       first misses of http: origins on the raw fast path
                                                     SHOAL_FAST_MISS    (default on)
  --max-object SIZE        largest cached object     SHOAL_MAX_OBJECT   (default 4GiB)
  --egress-limit RATE      egress cap, e.g. 20MiB/s  SHOAL_EGRESS_LIMIT (default unlimited)
  --origin URL             serve one origin at /     SHOAL_ORIGIN
  --site NAME=URL          an origin-pull site at /s/NAME/ (repeatable)   SHOAL_SITES (comma-separated)
  --publisher NAME=0xADDR  the publisher key allowed to purge site NAME ("default" for --origin) (repeatable)
  --tracker URL            tracker base URL: site manifests, and the node registers
                           there and sends heartbeats            SHOAL_TRACKER
  --public-url URL         the URL clients reach this node at (what the tracker hands
                           out)                      SHOAL_PUBLIC_URL   (default the listen address)
  --region NAME            the node's region         SHOAL_REGION       (default local)
  --capacity RATE          egress offered to the network, e.g. 12MiB/s   SHOAL_CAPACITY
                                                     (default the egress limit, else 12.5MB/s)
  --payout 0xADDR          where earnings are paid   SHOAL_PAYOUT       (default the node key)
  --tracker-address 0xADDR the tracker's ticket key  SHOAL_TRACKER_ADDRESS (default: asked of --tracker)
  --epoch-seconds N        epoch length              SHOAL_EPOCH_SECONDS (default 3600; the tracker's wins)
  --max-sessions N         payment sessions open     SHOAL_MAX_SESSIONS (default 100000)
  --mesh-port PORT|off     libp2p mesh TCP port      SHOAL_MESH_PORT    (default HTTP port + 100)
  --mesh-peer MULTIADDR    a mesh peer to dial at start, ending in /p2p/<peer id> (repeatable)
                                                     SHOAL_MESH_PEERS (comma-separated)
  --mesh-relay MULTIADDR   behind NAT: a relay to be reachable through (repeatable)
                                                     SHOAL_MESH_RELAYS (comma-separated)
  --mesh-relay-server      relay for nodes behind NAT (needs a public address)
  --mesh-upnp              map the mesh port on the home router (UPnP)
  --accept-pushes WHICH    manifests (default): store PUT /c/<cid> only for content a held
                           manifest names; any: store every push that matches its CID
  --tls-cert FILE          PEM certificate (HTTPS)   SHOAL_TLS_CERT
  --tls-key FILE           PEM private key (HTTPS)   SHOAL_TLS_KEY
  --log-level LEVEL        fatal|error|warn|info|debug|trace   SHOAL_LOG_LEVEL (default info)

Relay (off unless --relay-listen is given; see docs/operator.md):
  --relay-listen HOST:PORT the relay's own port     SHOAL_RELAY_LISTEN
  --relay-issuer 0xADDR    trusted ticket issuer (the tracker's address; repeatable)
                                                    SHOAL_RELAY_ISSUERS (comma-separated)
  --relay-public-url URL   http://host:port clients reach the relay at (announced)
  --relay-rate RATE        relay-wide cap, e.g. 5MiB/s (default unlimited)
  --relay-client-rate RATE per-client cap (default unlimited)
  --relay-max-tunnels N    tunnels + requests per client at once (default 16)
  --relay-allow RULE       open CIDR (127.0.0.1/32) or port:N despite the policy (repeatable)
  --relay-deny RULE        refuse CIDR, host (.suffix for a domain) or port:N (repeatable)

Sizes take B, KiB, MiB, GiB, TiB (or KB, MB, GB, TB as powers of 1000); rates a size per second.
The key passphrase comes from SHOAL_KEY_PASSPHRASE; without it, start creates a key
protected by a random passphrase kept beside it in the data dir (mode 0600).
`

/** What the node's tracker registration says beyond its key. */
export interface AnnounceOptions {
  publicUrl?: string
  region: string
  /** Bytes per second. */
  capacity: number
  payout?: `0x${string}`
}

/** Capacity offered when neither --capacity nor --egress-limit says: 100 Mbit/s. */
export const DEFAULT_CAPACITY = 12_500_000

export type Command =
  | { kind: 'help' }
  | { kind: 'version' }
  | { kind: 'key-create'; dataDir: string }
  | { kind: 'key-show'; dataDir: string }
  | {
      kind: 'claim'
      dataDir: string
      trackerUrl: string
      rpcUrl: string
      distributor: `0x${string}`
      payout?: `0x${string}`
    }
  | {
      kind: 'start'
      options: EdgeNodeOptions
      /** How the node presents itself to the tracker (used when a tracker is set). */
      announce: AnnounceOptions
      logLevel: string
      tlsFiles?: { cert: string; key: string }
    }

const UNITS: Record<string, number> = {
  b: 1,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  k: 2 ** 10,
  m: 2 ** 20,
  g: 2 ** 30,
  t: 2 ** 40,
}

/**
 * Parses a byte size such as `64MiB`, `1.5GB` or `1048576`.
 *
 * @example
 * parseSize('64MiB', '--memory-cache') // 67108864
 */
export function parseSize(text: string, name: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text)
  const unit = UNITS[(m?.[2] ?? '').toLowerCase() || 'b']
  if (m === null || unit === undefined) {
    throw new InvalidArgumentError(`${name}: "${text}" is not a size (e.g. 512MiB, 2GiB, 1048576)`)
  }
  const value = Math.floor(Number(m[1]) * unit)
  if (!Number.isSafeInteger(value)) throw new InvalidArgumentError(`${name}: "${text}" is too large`)
  return value
}

/** Parses a rate such as `20MiB/s` (bytes per second). */
export function parseRate(text: string, name: string): number {
  return parseSize(text.replace(/\/s$/i, ''), name)
}

/** Parses `HOST:PORT`, `:PORT` or `PORT`; IPv6 hosts in brackets. */
export function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(text) ?? /^()()(\d+)$/.exec(text)
  const port = Number(m?.[3])
  if (m === null || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new InvalidArgumentError(`--listen: "${text}" is not HOST:PORT`)
  }
  const host = m[1] ?? m[2] ?? ''
  return { host: host === '' ? '0.0.0.0' : host, port }
}

/** Parses `NAME=URL` site specs. */
export function parseSite(text: string): OriginSite {
  const eq = text.indexOf('=')
  if (eq <= 0) throw new InvalidArgumentError(`--site: "${text}" is not NAME=URL`)
  return { name: text.slice(0, eq), origin: text.slice(eq + 1) }
}

type ConfigFile = Partial<Record<string, unknown>>

const CONFIG_KEYS = new Set([
  'listen',
  'dataDir',
  'memoryCache',
  'memoryPolicy',
  'diskCache',
  'diskAdmission',
  'fastMiss',
  'maxObject',
  'egressLimit',
  'origin',
  'sites',
  'tracker',
  'trackerAddress',
  'epochSeconds',
  'maxSessions',
  'meshPort',
  'meshPeers',
  'meshRelays',
  'meshRelayServer',
  'meshUpnp',
  'acceptPushes',
  'tlsCert',
  'tlsKey',
  'logLevel',
  'publicUrl',
  'region',
  'capacity',
  'payout',
  'relay',
  'rpcUrl',
  'distributor',
])

/**
 * Turns argv (without `node` and the script), the environment and the parsed config
 * file into a command. Throws `InvalidArgumentError` with a message for the operator.
 *
 * @example
 * parseCommand(['start', '--origin', 'https://example.org'], process.env, undefined)
 */
export function parseCommand(
  argv: string[],
  env: NodeJS.ProcessEnv,
  config: ConfigFile | undefined,
): Command {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true; strict: true }>>
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true })
  } catch (err) {
    throw new InvalidArgumentError(`${(err as Error).message}\nRun shoal-node --help for usage.`, {
      cause: err,
    })
  }
  const { values, positionals } = parsed
  if (values.help === true || positionals.length === 0) return { kind: 'help' }
  if (values.version === true) return { kind: 'version' }

  const file = config ?? {}
  for (const key of Object.keys(file)) {
    if (!CONFIG_KEYS.has(key)) throw new InvalidArgumentError(`config file: unknown option "${key}"`)
  }
  const pick = (flag: string | undefined, envName: string, fileKey: string): string | undefined => {
    if (flag !== undefined) return flag
    const fromEnv = env[envName]
    if (fromEnv !== undefined && fromEnv !== '') return fromEnv
    const fromFile = file[fileKey]
    if (fromFile === undefined) return undefined
    if (typeof fromFile !== 'string' && typeof fromFile !== 'number') {
      throw new InvalidArgumentError(`config file: ${fileKey} must be a string or number`)
    }
    return String(fromFile)
  }
  const dataDir = pick(values['data-dir'], 'SHOAL_DATA_DIR', 'dataDir') ?? './shoal-data'

  const [command, sub, ...rest] = positionals
  if (command === 'claim') {
    if (sub !== undefined)
      throw new InvalidArgumentError('usage: shoal-node claim --rpc-url URL --distributor 0xADDR')
    const trackerUrl = pick(values.tracker, 'SHOAL_TRACKER', 'tracker')
    const rpcUrl = pick(values['rpc-url'], 'SHOAL_RPC_URL', 'rpcUrl')
    const distributor = pick(values.distributor, 'SHOAL_DISTRIBUTOR', 'distributor')
    const payout = pick(values.payout, 'SHOAL_PAYOUT', 'payout')
    if (trackerUrl === undefined)
      throw new InvalidArgumentError('claim needs --tracker URL (where the proofs are)')
    if (rpcUrl === undefined) throw new InvalidArgumentError('claim needs --rpc-url URL (the chain)')
    if (distributor === undefined || !/^0x[0-9a-fA-F]{40}$/.test(distributor))
      throw new InvalidArgumentError('claim needs --distributor 0xADDRESS (the RewardDistributor)')
    if (payout !== undefined && !/^0x[0-9a-fA-F]{40}$/.test(payout))
      throw new InvalidArgumentError(`--payout: "${payout}" is not an 0x address`)
    return {
      kind: 'claim',
      dataDir,
      trackerUrl,
      rpcUrl,
      distributor: distributor as `0x${string}`,
      ...(payout === undefined ? {} : { payout: payout as `0x${string}` }),
    }
  }
  if (command === 'key') {
    if (rest.length > 0 || (sub !== 'create' && sub !== 'show')) {
      throw new InvalidArgumentError('usage: shoal-node key create|show [--data-dir DIR]')
    }
    return { kind: sub === 'create' ? 'key-create' : 'key-show', dataDir }
  }
  if (command !== 'start' || sub !== undefined) {
    throw new InvalidArgumentError(
      `unknown command "${positionals.join(' ')}". Run shoal-node --help for usage.`,
    )
  }

  const options: EdgeNodeOptions = { dataDir }
  const listen = pick(values.listen, 'SHOAL_LISTEN', 'listen')
  if (listen !== undefined) Object.assign(options, parseListen(listen))
  const size = (flag: string | undefined, envName: string, key: string, name: string) => {
    const v = pick(flag, envName, key)
    return v === undefined ? undefined : parseSize(v, name)
  }
  options.memoryCacheBytes = size(
    values['memory-cache'],
    'SHOAL_MEMORY_CACHE',
    'memoryCache',
    '--memory-cache',
  )
  options.diskCacheBytes = size(values['disk-cache'], 'SHOAL_DISK_CACHE', 'diskCache', '--disk-cache')
  const policy = pick(values['memory-policy'], 'SHOAL_MEMORY_POLICY', 'memoryPolicy')
  if (policy !== undefined) {
    if (policy !== 'lru' && policy !== 's3-fifo') {
      throw new InvalidArgumentError(`--memory-policy: "${policy}" is not s3-fifo or lru`)
    }
    options.memoryPolicy = policy
  }
  const admission = pick(values['disk-admission'], 'SHOAL_DISK_ADMISSION', 'diskAdmission')
  if (admission !== undefined) {
    if (admission !== 'first-use' && admission !== 'second-use') {
      throw new InvalidArgumentError(`--disk-admission: "${admission}" is not second-use or first-use`)
    }
    options.diskAdmission = admission
  }
  const fastMiss = pick(values['fast-miss'], 'SHOAL_FAST_MISS', 'fastMiss')
  if (fastMiss !== undefined) {
    if (fastMiss !== 'on' && fastMiss !== 'off') {
      throw new InvalidArgumentError(`--fast-miss: "${fastMiss}" is not on or off`)
    }
    options.fastMiss = fastMiss === 'on'
  }
  options.maxObjectBytes = size(values['max-object'], 'SHOAL_MAX_OBJECT', 'maxObject', '--max-object')
  const egress = pick(values['egress-limit'], 'SHOAL_EGRESS_LIMIT', 'egressLimit')
  if (egress !== undefined) options.egressBytesPerSecond = parseRate(egress, '--egress-limit')
  const origin = pick(values.origin, 'SHOAL_ORIGIN', 'origin')
  if (origin !== undefined) options.defaultOrigin = origin
  const pushes = pick(values['accept-pushes'], 'SHOAL_ACCEPT_PUSHES', 'acceptPushes')
  if (pushes !== undefined) {
    if (pushes !== 'manifests' && pushes !== 'any') {
      throw new InvalidArgumentError(`--accept-pushes: "${pushes}" is not manifests or any`)
    }
    options.acceptPushes = pushes
  }
  const tracker = pick(values.tracker, 'SHOAL_TRACKER', 'tracker')
  if (tracker !== undefined) options.trackerUrl = tracker
  const announce = parseAnnounce(
    {
      publicUrl: pick(values['public-url'], 'SHOAL_PUBLIC_URL', 'publicUrl'),
      region: pick(values.region, 'SHOAL_REGION', 'region'),
      capacity: pick(values.capacity, 'SHOAL_CAPACITY', 'capacity'),
      payout: pick(values.payout, 'SHOAL_PAYOUT', 'payout'),
    },
    options.egressBytesPerSecond,
  )
  const trackerAddress = pick(values['tracker-address'], 'SHOAL_TRACKER_ADDRESS', 'trackerAddress')
  if (trackerAddress !== undefined) {
    if (!/^0x[0-9a-fA-F]{40}$/.test(trackerAddress))
      throw new InvalidArgumentError(`--tracker-address: "${trackerAddress}" is not an 0x address`)
    options.trackerAddress = trackerAddress as `0x${string}`
  }
  const count = (flag: string | undefined, envName: string, key: string, name: string) => {
    const v = pick(flag, envName, key)
    if (v === undefined) return undefined
    if (!/^[1-9][0-9]{0,9}$/.test(v))
      throw new InvalidArgumentError(`${name}: "${v}" is not a positive integer`)
    return Number(v)
  }
  const epochSeconds = count(
    values['epoch-seconds'],
    'SHOAL_EPOCH_SECONDS',
    'epochSeconds',
    '--epoch-seconds',
  )
  if (epochSeconds !== undefined) options.epochSeconds = epochSeconds
  const maxSessions = count(values['max-sessions'], 'SHOAL_MAX_SESSIONS', 'maxSessions', '--max-sessions')
  if (maxSessions !== undefined) options.maxSessions = maxSessions

  const meshPort = pick(values['mesh-port'], 'SHOAL_MESH_PORT', 'meshPort')
  let meshPeers: string[] = values['mesh-peer'] ?? []
  if (meshPeers.length === 0 && env.SHOAL_MESH_PEERS)
    meshPeers = env.SHOAL_MESH_PEERS.split(',').map((p) => p.trim())
  if (meshPeers.length === 0 && Array.isArray(file.meshPeers)) meshPeers = file.meshPeers.map(String)
  let meshRelays: string[] = values['mesh-relay'] ?? []
  if (meshRelays.length === 0 && env.SHOAL_MESH_RELAYS)
    meshRelays = env.SHOAL_MESH_RELAYS.split(',').map((p) => p.trim())
  if (meshRelays.length === 0 && Array.isArray(file.meshRelays)) meshRelays = file.meshRelays.map(String)
  const relayServer = values['mesh-relay-server'] === true || file.meshRelayServer === true
  const upnp = values['mesh-upnp'] === true || file.meshUpnp === true
  if (meshPort === 'off') options.mesh = false
  else if (meshPort !== undefined || meshPeers.length > 0 || meshRelays.length > 0 || relayServer || upnp) {
    const port = meshPort === undefined ? undefined : Number(meshPort)
    if (port !== undefined && !(/^\d{1,5}$/.test(meshPort!) && port <= 65535))
      throw new InvalidArgumentError(`--mesh-port: "${meshPort}" is not a port or off`)
    options.mesh = {
      ...(port === undefined ? {} : { port }),
      bootstrap: meshPeers.map((addr) => {
        const id = /\/p2p\/([^/]+)$/.exec(addr)?.[1]
        if (id === undefined)
          throw new InvalidArgumentError(`--mesh-peer: "${addr}" does not end in /p2p/<peer id>`)
        return { peerId: id, multiaddrs: [addr] }
      }),
      ...(meshRelays.length > 0 ? { relays: meshRelays } : {}),
      ...(relayServer ? { relayServer } : {}),
      ...(upnp ? { upnp } : {}),
    }
  }
  // the mesh finds its neighbours among the tracker's nodes in the node's own region
  if (options.mesh !== false && tracker !== undefined)
    options.mesh = { ...options.mesh, region: announce.region }

  let siteSpecs: string[] = values.site ?? []
  if (siteSpecs.length === 0 && env.SHOAL_SITES) siteSpecs = env.SHOAL_SITES.split(',').map((s) => s.trim())
  if (siteSpecs.length === 0 && file.sites !== undefined) {
    if (!Array.isArray(file.sites) || !file.sites.every((s) => typeof s === 'string')) {
      throw new InvalidArgumentError('config file: sites must be a list of "NAME=URL" strings')
    }
    siteSpecs = file.sites as string[]
  }
  if (siteSpecs.length > 0) options.sites = siteSpecs.map(parseSite)
  for (const spec of values.publisher ?? []) {
    const eq = spec.indexOf('=')
    const name = spec.slice(0, eq)
    const address = spec.slice(eq + 1) as `0x${string}`
    if (eq <= 0 || !/^0x[0-9a-fA-F]{40}$/.test(address)) {
      throw new InvalidArgumentError(`--publisher: "${spec}" is not NAME=0xADDRESS`)
    }
    if (name === 'default') {
      options.defaultOriginPublisher = address
      continue
    }
    const site = options.sites?.find((s) => s.name === name)
    if (site === undefined) throw new InvalidArgumentError(`--publisher: no --site named "${name}"`)
    site.publisher = address
  }

  const relay = parseRelay(values, env, file.relay)
  if (relay !== undefined) options.relay = relay

  const cert = pick(values['tls-cert'], 'SHOAL_TLS_CERT', 'tlsCert')
  const key = pick(values['tls-key'], 'SHOAL_TLS_KEY', 'tlsKey')
  if ((cert === undefined) !== (key === undefined)) {
    throw new InvalidArgumentError('HTTPS needs both --tls-cert and --tls-key')
  }
  const logLevel = pick(values['log-level'], 'SHOAL_LOG_LEVEL', 'logLevel') ?? 'info'
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) {
    throw new InvalidArgumentError(
      `--log-level: "${logLevel}" is not one of fatal, error, warn, info, debug, trace`,
    )
  }
  return {
    kind: 'start',
    options,
    announce,
    logLevel,
    ...(cert !== undefined && key !== undefined ? { tlsFiles: { cert, key } } : {}),
  }
}

const OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
  config: { type: 'string' },
  listen: { type: 'string' },
  'data-dir': { type: 'string' },
  'memory-cache': { type: 'string' },
  'disk-cache': { type: 'string' },
  'max-object': { type: 'string' },
  'egress-limit': { type: 'string' },
  origin: { type: 'string' },
  site: { type: 'string', multiple: true },
  publisher: { type: 'string', multiple: true },
  tracker: { type: 'string' },
  'tracker-address': { type: 'string' },
  'epoch-seconds': { type: 'string' },
  'max-sessions': { type: 'string' },
  'mesh-port': { type: 'string' },
  'mesh-peer': { type: 'string', multiple: true },
  'mesh-relay': { type: 'string', multiple: true },
  'mesh-relay-server': { type: 'boolean' },
  'mesh-upnp': { type: 'boolean' },
  'accept-pushes': { type: 'string' },
  'memory-policy': { type: 'string' },
  'disk-admission': { type: 'string' },
  'fast-miss': { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'log-level': { type: 'string' },
  'public-url': { type: 'string' },
  region: { type: 'string' },
  capacity: { type: 'string' },
  payout: { type: 'string' },
  'rpc-url': { type: 'string' },
  distributor: { type: 'string' },
  'relay-listen': { type: 'string' },
  'relay-issuer': { type: 'string', multiple: true },
  'relay-public-url': { type: 'string' },
  'relay-rate': { type: 'string' },
  'relay-client-rate': { type: 'string' },
  'relay-max-tunnels': { type: 'string' },
  'relay-allow': { type: 'string', multiple: true },
  'relay-deny': { type: 'string', multiple: true },
} as const

function parseAnnounce(
  raw: { publicUrl?: string; region?: string; capacity?: string; payout?: string },
  egress: number | undefined,
): AnnounceOptions {
  const region = raw.region ?? 'local'
  if (!/^[a-z0-9][a-z0-9-]{0,31}$/.test(region)) {
    throw new InvalidArgumentError(
      `--region: "${region}" must be lowercase letters, digits and dashes (≤ 32)`,
    )
  }
  if (raw.payout !== undefined && !/^0x[0-9a-fA-F]{40}$/.test(raw.payout)) {
    throw new InvalidArgumentError(`--payout: "${raw.payout}" is not an 0x address`)
  }
  if (raw.publicUrl !== undefined) {
    let url: URL | undefined
    try {
      url = new URL(raw.publicUrl)
    } catch {}
    if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.username !== '') {
      throw new InvalidArgumentError(`--public-url: "${raw.publicUrl}" is not an http(s) URL`)
    }
  }
  const capacity =
    raw.capacity === undefined
      ? Math.floor(egress ?? DEFAULT_CAPACITY)
      : parseRate(raw.capacity, '--capacity')
  return {
    region,
    capacity,
    ...(raw.publicUrl === undefined ? {} : { publicUrl: raw.publicUrl }),
    ...(raw.payout === undefined ? {} : { payout: raw.payout as `0x${string}` }),
  }
}

type RelayFlags = Partial<Record<`relay-${string}`, string | string[] | boolean | undefined>>

/**
 * The relay's options from flags, env and the config file's `relay` object (plain
 * `RelayOptions`); `undefined` (relay off) unless a listen address is given somewhere.
 */
export function parseRelay(
  values: RelayFlags,
  env: NodeJS.ProcessEnv,
  fromFile: unknown,
): RelayOptions | undefined {
  if (
    fromFile !== undefined &&
    (typeof fromFile !== 'object' || fromFile === null || Array.isArray(fromFile))
  )
    throw new InvalidArgumentError('config file: relay must be an object of relay options')
  const base = { ...((fromFile as Partial<RelayOptions> | undefined) ?? {}) }
  const listen = (values['relay-listen'] as string | undefined) ?? env.SHOAL_RELAY_LISTEN
  if (listen !== undefined && listen !== '') Object.assign(base, parseListen(listen))
  if (fromFile === undefined && (listen === undefined || listen === '')) return undefined
  const issuers = (values['relay-issuer'] as string[] | undefined) ?? env.SHOAL_RELAY_ISSUERS?.split(',')
  if (issuers !== undefined && issuers.length > 0) base.issuers = issuers.map((s) => s.trim())
  const publicUrl = values['relay-public-url'] as string | undefined
  if (publicUrl !== undefined) base.publicUrl = publicUrl
  const rate = values['relay-rate'] as string | undefined
  if (rate !== undefined) base.bytesPerSecond = parseRate(rate, '--relay-rate')
  const clientRate = values['relay-client-rate'] as string | undefined
  if (clientRate !== undefined) base.clientBytesPerSecond = parseRate(clientRate, '--relay-client-rate')
  const tunnels = values['relay-max-tunnels'] as string | undefined
  if (tunnels !== undefined) {
    if (!/^\d+$/.test(tunnels))
      throw new InvalidArgumentError(`--relay-max-tunnels: "${tunnels}" is not a number`)
    base.maxConcurrentPerClient = Number(tunnels)
  }
  const egress = { ...(base.egress ?? {}) }
  const portOf = (rule: string, flag: string) => {
    const n = Number(rule.slice(5))
    if (!/^port:\d{1,5}$/.test(rule)) throw new InvalidArgumentError(`${flag}: "${rule}" is not port:N`)
    return n
  }
  for (const rule of (values['relay-allow'] as string[] | undefined) ?? []) {
    if (rule.startsWith('port:'))
      egress.allowPorts = [...(egress.allowPorts ?? []), portOf(rule, '--relay-allow')]
    else if (rule.includes('/')) egress.allowCidrs = [...(egress.allowCidrs ?? []), rule]
    else throw new InvalidArgumentError(`--relay-allow: "${rule}" is not a CIDR or port:N`)
  }
  for (const rule of (values['relay-deny'] as string[] | undefined) ?? []) {
    if (rule.startsWith('port:'))
      egress.denyPorts = [...(egress.denyPorts ?? []), portOf(rule, '--relay-deny')]
    else if (rule.includes('/')) egress.denyCidrs = [...(egress.denyCidrs ?? []), rule]
    else egress.denyHosts = [...(egress.denyHosts ?? []), rule]
  }
  base.egress = egress
  if (base.issuers === undefined)
    throw new InvalidArgumentError(
      'the relay needs --relay-issuer (the tracker address whose tickets it accepts)',
    )
  return base as RelayOptions
}

/** The `--config` file named on the command line or in SHOAL_CONFIG, if any. */
export function configPathOf(argv: string[], env: NodeJS.ProcessEnv): string | undefined {
  const i = argv.findIndex((a) => a === '--config' || a.startsWith('--config='))
  if (i >= 0) {
    const arg = argv[i]!
    const path = arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : argv[i + 1]
    if (path === undefined || path === '') throw new InvalidArgumentError('--config needs a file path')
    return path
  }
  return env.SHOAL_CONFIG === '' ? undefined : env.SHOAL_CONFIG
}
