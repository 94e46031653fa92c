/**
 * `shoal-node` command-line parsing: flags, environment and an optional JSON config
 * file become `EdgeNodeOptions`. Precedence: flags > environment > config file >
 * defaults. Pure (the caller reads the file and passes the env), so it is testable.
 */
import { parseArgs } from 'node:util'
import { InvalidArgumentError } from '@shoal/protocol'
import type { EdgeNodeOptions, OriginSite } from '../config.ts'

export const USAGE = `shoal-node — run a Shoal edge node

Usage:
  shoal-node start [options]          start the node
  shoal-node key create [--data-dir]  create the node key (asks for a passphrase on a TTY,
                                      else reads SHOAL_KEY_PASSPHRASE)
  shoal-node key show [--data-dir]    print the node's address
  shoal-node --help | --version

Start options (each has an environment variable; flags win):
  --config FILE            JSON file with any of the options below (camelCase keys)
  --listen HOST:PORT       listen address            SHOAL_LISTEN       (default 127.0.0.1:7480)
  --data-dir DIR           cache, key, receipts      SHOAL_DATA_DIR     (default ./shoal-data)
  --memory-cache SIZE      memory tier budget        SHOAL_MEMORY_CACHE (default 64MiB)
  --disk-cache SIZE        disk tier budget          SHOAL_DISK_CACHE   (default 2GiB)
  --max-object SIZE        largest cached object     SHOAL_MAX_OBJECT   (default 4GiB)
  --egress-limit RATE      egress cap, e.g. 20MiB/s  SHOAL_EGRESS_LIMIT (default unlimited)
  --origin URL             serve one origin at /     SHOAL_ORIGIN
  --site NAME=URL          an origin-pull site at /s/NAME/ (repeatable)   SHOAL_SITES (comma-separated)
  --publisher NAME=0xADDR  the publisher key allowed to purge site NAME ("default" for --origin) (repeatable)
  --tracker URL            tracker base URL          SHOAL_TRACKER
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

Sizes take B, KiB, MiB, GiB, TiB (or KB, MB, GB, TB as powers of 1000); rates a size per second.
The key passphrase comes from SHOAL_KEY_PASSPHRASE; without it, start creates a key
protected by a random passphrase kept beside it in the data dir (mode 0600).
`

export type Command =
  | { kind: 'help' }
  | { kind: 'version' }
  | { kind: 'key-create'; dataDir: string }
  | { kind: 'key-show'; dataDir: string }
  | {
      kind: 'start'
      options: EdgeNodeOptions
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
  'diskCache',
  'maxObject',
  'egressLimit',
  'origin',
  'sites',
  'tracker',
  'meshPort',
  'meshPeers',
  'meshRelays',
  'meshRelayServer',
  'meshUpnp',
  'acceptPushes',
  'tlsCert',
  'tlsKey',
  'logLevel',
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
  'mesh-port': { type: 'string' },
  'mesh-peer': { type: 'string', multiple: true },
  'mesh-relay': { type: 'string', multiple: true },
  'mesh-relay-server': { type: 'boolean' },
  'mesh-upnp': { type: 'boolean' },
  'accept-pushes': { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'log-level': { type: 'string' },
} as const

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
