/**
 * `shoal-tracker` command-line parsing: flags and environment become `TrackerOptions`
 * and the CLI's own settings. Pure (the caller passes argv and env), so it is testable.
 * Precedence: flags > environment > defaults.
 */
import { parseArgs } from 'node:util'
import { InvalidArgumentError } from '@shoal/protocol'
import type { TrackerOptions } from '../options.ts'

export const USAGE = `shoal-tracker — run a Shoal tracker

Usage:
  shoal-tracker start [options]          start the tracker
  shoal-tracker key create [--data-dir]  create the tracker key (signs tickets)
  shoal-tracker key show [--data-dir]    print the tracker's address
  shoal-tracker --help | --version

Start options (each has an environment variable; flags win):
  --listen HOST:PORT        API address          SHOAL_TRACKER_LISTEN    (default 127.0.0.1:7470)
  --data-dir DIR            key and SQLite store SHOAL_TRACKER_DATA_DIR  (default ./shoal-tracker-data)
  --probe-interval DURATION probe each node      SHOAL_PROBE_INTERVAL    (default 30s)
  --epoch-length DURATION   settlement epoch     SHOAL_EPOCH_LENGTH      (default 1h)
  --postgres URL            use PostgreSQL instead of SQLite (postgres://…)   SHOAL_TRACKER_POSTGRES
  --rpc-url URL             chain JSON-RPC for settlement (posts roots)       SHOAL_RPC_URL
  --distributor ADDRESS     RewardDistributor (the tracker key must hold SETTLER_ROLE)  SHOAL_DISTRIBUTOR
  --escrow ADDRESS          PublisherEscrow                                   SHOAL_ESCROW
  --allow-private-urls      accept and probe nodes on private addresses (devnets)
  --no-mesh-probe           trust nodes' mesh reachability claims instead of dialling
                            them (by default the tracker dials a mesh-only node's claimed
                            libp2p addresses and hands out only those it reached)
                                                                     SHOAL_MESH_PROBE=0
  --trust-proxy             client IPs from X-Forwarded-For (behind a reverse proxy)
  --log-level LEVEL         fatal|error|warn|info|debug|trace   SHOAL_LOG_LEVEL (default info)

Durations take ms, s, m, h or d (e.g. 500ms, 30s, 1h). The key passphrase comes from
SHOAL_KEY_PASSPHRASE; without it, start creates a key protected by a random passphrase
kept beside it in the data dir (mode 0600).
`

export type Command =
  | { kind: 'help' }
  | { kind: 'version' }
  | { kind: 'key-create'; dataDir: string }
  | { kind: 'key-show'; dataDir: string }
  | {
      kind: 'start'
      dataDir: string
      options: TrackerOptions
      postgres: string | undefined
      logLevel: string
      /** Settlement on a chain (the tracker key posts roots); absent: roots are built, not posted. */
      chain?: { rpcUrl: string; distributor: string; escrow: string }
    }

const OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
  listen: { type: 'string' },
  'data-dir': { type: 'string' },
  'probe-interval': { type: 'string' },
  'epoch-length': { type: 'string' },
  postgres: { type: 'string' },
  'rpc-url': { type: 'string' },
  distributor: { type: 'string' },
  escrow: { type: 'string' },
  'allow-private-urls': { type: 'boolean' },
  'mesh-probe': { type: 'boolean' },
  'no-mesh-probe': { type: 'boolean' },
  'trust-proxy': { type: 'boolean' },
  'log-level': { type: 'string' },
} as const

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }
const LOG_LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])

/**
 * Parses a duration such as `500ms`, `30s`, `5m`, `1h` or `1.5h` into milliseconds.
 *
 * @example
 * parseDuration('30s', '--probe-interval') // 30000
 */
export function parseDuration(text: string, name: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/i.exec(text)
  if (m === null)
    throw new InvalidArgumentError(`${name}: "${text}" is not a duration (e.g. 500ms, 30s, 5m, 1h)`)
  const value = Math.round(Number(m[1]) * DURATION_UNITS[m[2]!.toLowerCase()]!)
  if (!Number.isSafeInteger(value) || value <= 0)
    throw new InvalidArgumentError(`${name}: "${text}" is out of range`)
  return value
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

/**
 * Turns argv (without `node` and the script) and the environment into a command.
 * Throws `InvalidArgumentError` with a message for the operator.
 *
 * @example
 * parseCommand(['start', '--listen', '0.0.0.0:7470'], process.env)
 */
export function parseCommand(argv: string[], env: NodeJS.ProcessEnv): Command {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true; strict: true }>>
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true })
  } catch (err) {
    throw new InvalidArgumentError(`${(err as Error).message}\nRun shoal-tracker --help for usage.`, {
      cause: err,
    })
  }
  const { values, positionals } = parsed
  if (values.help === true) return { kind: 'help' }
  if (values.version === true) return { kind: 'version' }
  if (positionals.length === 0) return { kind: 'help' }
  const pick = (flag: string | undefined, envName: string): string | undefined => {
    if (flag !== undefined) return flag
    const fromEnv = env[envName]
    return fromEnv === undefined || fromEnv === '' ? undefined : fromEnv
  }
  const dataDir = pick(values['data-dir'], 'SHOAL_TRACKER_DATA_DIR') ?? './shoal-tracker-data'
  const [command, sub, ...rest] = positionals
  if (command === 'key') {
    if (rest.length > 0 || (sub !== 'create' && sub !== 'show')) {
      throw new InvalidArgumentError('usage: shoal-tracker key create|show [--data-dir DIR]')
    }
    return { kind: sub === 'create' ? 'key-create' : 'key-show', dataDir }
  }
  if (command !== 'start' || sub !== undefined) {
    throw new InvalidArgumentError(
      `unknown command "${positionals.join(' ')}". Run shoal-tracker --help for usage.`,
    )
  }
  const options: TrackerOptions = {}
  const listen = pick(values.listen, 'SHOAL_TRACKER_LISTEN')
  if (listen !== undefined) Object.assign(options, parseListen(listen))
  const probe = pick(values['probe-interval'], 'SHOAL_PROBE_INTERVAL')
  if (probe !== undefined) {
    options.probeIntervalMs = parseDuration(probe, '--probe-interval')
    if (options.probeIntervalMs < 1_000)
      throw new InvalidArgumentError('--probe-interval must be at least 1s')
  }
  const epoch = pick(values['epoch-length'], 'SHOAL_EPOCH_LENGTH')
  if (epoch !== undefined) {
    const ms = parseDuration(epoch, '--epoch-length')
    if (ms < 60_000 || ms % 1000 !== 0)
      throw new InvalidArgumentError('--epoch-length must be whole seconds, at least 1m')
    options.epochSeconds = ms / 1000
  }
  const postgres = pick(values.postgres, 'SHOAL_TRACKER_POSTGRES')
  if (postgres !== undefined && !/^postgres(ql)?:\/\/\S+$/.test(postgres)) {
    throw new InvalidArgumentError(`--postgres: "${postgres}" is not a postgres:// URL`)
  }
  if (values['allow-private-urls'] === true) options.allowPrivateUrls = true
  if (values['trust-proxy'] === true) options.trustProxy = true
  // on unless turned off: a claim nobody checked is not handed to clients (`--mesh-probe`
  // is still accepted, and wins over SHOAL_MESH_PROBE=0 like any flag over its variable)
  if (values['mesh-probe'] === true && values['no-mesh-probe'] === true)
    throw new InvalidArgumentError('--mesh-probe and --no-mesh-probe contradict each other')
  const meshProbe =
    values['mesh-probe'] === true
      ? '1'
      : values['no-mesh-probe'] === true
        ? '0'
        : pick(undefined, 'SHOAL_MESH_PROBE')
  if (meshProbe !== undefined && meshProbe !== '1' && meshProbe !== '0')
    throw new InvalidArgumentError(`SHOAL_MESH_PROBE: "${meshProbe}" is not 1 or 0`)
  options.meshProbe = meshProbe !== '0'
  const logLevel = pick(values['log-level'], 'SHOAL_LOG_LEVEL') ?? 'info'
  if (!LOG_LEVELS.has(logLevel)) {
    throw new InvalidArgumentError(`--log-level: "${logLevel}" is not one of ${[...LOG_LEVELS].join(', ')}`)
  }
  const rpcUrl = pick(values['rpc-url'], 'SHOAL_RPC_URL')
  const distributor = pick(values.distributor, 'SHOAL_DISTRIBUTOR')
  const escrow = pick(values.escrow, 'SHOAL_ESCROW')
  if (rpcUrl !== undefined || distributor !== undefined || escrow !== undefined) {
    if (rpcUrl === undefined || distributor === undefined || escrow === undefined) {
      throw new InvalidArgumentError(
        'settlement on a chain needs --rpc-url, --distributor and --escrow together',
      )
    }
    if (!/^https?:\/\/\S+$/.test(rpcUrl))
      throw new InvalidArgumentError(`--rpc-url: "${rpcUrl}" is not an http(s) URL`)
    for (const [name, a] of [
      ['--distributor', distributor],
      ['--escrow', escrow],
    ] as const) {
      if (!/^0x[0-9a-fA-F]{40}$/.test(a)) throw new InvalidArgumentError(`${name}: "${a}" is not an address`)
    }
    return { kind: 'start', dataDir, options, postgres, logLevel, chain: { rpcUrl, distributor, escrow } }
  }
  return { kind: 'start', dataDir, options, postgres, logLevel }
}
