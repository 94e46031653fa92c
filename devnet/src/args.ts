/** `npm start` (the devnet) command line. Pure, so it is testable. */
import { parseArgs } from 'node:util'
import { InvalidArgumentError } from '@shoal/protocol'

/** Most nodes one machine runs: each is its own process with its own cache. */
export const MAX_NODES = 32

export const USAGE = `npm start [-- options] — the whole Shoal network on this machine

Starts an in-process EVM chain (JSON-RPC on 127.0.0.1), deploys the contracts, funds a
publisher, starts a tracker, edge nodes and a sample origin, publishes a sample site,
runs a short workload through the SDK (one node serves corrupt bytes), settles an
epoch, claims for every node, prints a summary, and stays up until Ctrl-C.

Options:
  --nodes N        edge nodes to run (1–${MAX_NODES}, default 5)
  --base-port P    first port: tracker P, origin P+1, chain P+2, nodes P+10… (default 7470)
  --keep           keep the data directory when stopping (it is printed)
  --data-dir DIR   where the devnet's data goes (default a new temporary directory)
  --exit           stop after the summary instead of staying up (for scripts)
  -h, --help       this text
`

export interface DevnetArgs {
  nodes: number
  basePort: number
  keep: boolean
  dataDir?: string
  exit: boolean
}

export type DevnetCommand = { kind: 'help'; text: string } | ({ kind: 'run' } & DevnetArgs)

function integer(text: string, name: string, min: number, max: number, hint: string): number {
  const n = /^\d+$/.test(text) ? Number(text) : Number.NaN
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new InvalidArgumentError(
      `${name} must be a whole number from ${min} to ${max}, got "${text}". ${hint}`,
    )
  }
  return n
}

/**
 * @example
 * parseDevnetArgs(['--nodes', '20']) // { kind: 'run', nodes: 20, basePort: 7470, keep: false, exit: false }
 */
export function parseDevnetArgs(argv: string[]): DevnetCommand {
  let values: ReturnType<typeof parse>['values']
  try {
    values = parse(argv).values
  } catch (err) {
    throw new InvalidArgumentError(`${(err as Error).message}. Run npm start -- --help for usage.`)
  }
  if (values.help === true) return { kind: 'help', text: USAGE }
  const nodes =
    values.nodes === undefined
      ? 5
      : integer(
          values.nodes,
          '--nodes',
          1,
          MAX_NODES,
          `Each node is a process with its own cache; ${MAX_NODES} is what one machine runs well.`,
        )
  const basePort =
    values['base-port'] === undefined
      ? 7470
      : integer(
          values['base-port'],
          '--base-port',
          1024,
          65_535 - 10 - MAX_NODES,
          'Ports below 1024 need root.',
        )
  return {
    kind: 'run',
    nodes,
    basePort,
    keep: values.keep === true,
    exit: values.exit === true,
    ...(values['data-dir'] === undefined ? {} : { dataDir: values['data-dir'] }),
  }
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      nodes: { type: 'string' },
      'base-port': { type: 'string' },
      keep: { type: 'boolean' },
      'data-dir': { type: 'string' },
      exit: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  })
}

/** The ports a devnet with these arguments listens on, by role. */
export function portsOf(args: Pick<DevnetArgs, 'nodes' | 'basePort'>): {
  tracker: number
  origin: number
  chain: number
  nodes: number[]
} {
  return {
    tracker: args.basePort,
    origin: args.basePort + 1,
    chain: args.basePort + 2,
    nodes: Array.from({ length: args.nodes }, (_, i) => args.basePort + 10 + i),
  }
}
