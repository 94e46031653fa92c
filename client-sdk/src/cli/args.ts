/**
 * `shoal` command-line parsing: argv and the environment become a command with plain
 * options. Pure (no files, no network), so it is testable; bad usage throws
 * `InvalidArgumentError` (exit code 2) with a message that says what to do.
 */
import { homedir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { InvalidArgumentError } from '@shoal/protocol'

export const USAGE = `shoal — fetch from and publish to the Shoal CDN

Usage:
  shoal get <url> [-o FILE]               fetch shoal://<site>/<path>, shoal://<cid> or https://…
                                          (verified); to FILE (written whole or not at all) or stdout
  shoal publish <dir> --site NAME         hash the files, sign the manifest, register it with the
                                          tracker and push the content to the nodes
  shoal purge --site NAME --node URL <path…> [--prefix]
                                          drop the nodes' cached copies of an origin-pull site's paths
  shoal site show <name>                  the site's verified manifest: sequence, publisher, entries
  shoal key create [--out FILE]           create a publisher key (encrypted keystore, mode 0600)
  shoal key show [--key FILE]             print a key file's address
  shoal --help | --version

Common options:
  --tracker URL            the tracker                 SHOAL_TRACKER
  --key FILE               the publisher key file      SHOAL_KEY (default ~/.config/shoal/key.json)
  --passphrase-file FILE   read the key passphrase from FILE; else SHOAL_PASSPHRASE, else a prompt
  --json                   machine-readable output (publish, purge, site show)

get:      -o, --output FILE   --node URL (repeatable: fetch from these nodes, not the tracker's)
          --no-progress       no progress bar (there is none when stderr is not a terminal)
publish:  --replicas K (nodes per file, default 3)   --origin URL   --cache-control VALUE
          --include-hidden (publish names starting with "."; .well-known always is)
          --chunk-size SIZE (default 256KiB)   --concurrency N (files pushed at once, default 4)
          --no-progress
purge:    --node URL (repeatable, or SHOAL_NODES comma-separated): the nodes to purge
          --prefix: the paths are prefixes (/img/ or / for the whole site)
key:      --out FILE   --scrypt-n N (scrypt cost, a power of two; default 262144)

Exit codes: 0 done, 1 failed, 2 bad usage or configuration.
`

export interface KeyOptions {
  keyFile: string
  passphraseFile: string | undefined
}

export type Command =
  | { kind: 'help' }
  | { kind: 'version' }
  | {
      kind: 'get'
      url: string
      output: string | undefined
      tracker: string | undefined
      nodes: string[]
      progress: boolean
    }
  | {
      kind: 'publish'
      dir: string
      site: string
      tracker: string
      key: KeyOptions
      replicas: number | undefined
      origin: string | undefined
      cacheControl: string | undefined
      includeHidden: boolean
      chunkSize: number | undefined
      concurrency: number | undefined
      progress: boolean
      json: boolean
    }
  | {
      kind: 'purge'
      site: string
      paths: string[]
      prefix: boolean
      nodes: string[]
      key: KeyOptions
      json: boolean
    }
  | { kind: 'site-show'; site: string; tracker: string; json: boolean }
  | { kind: 'key-create'; out: string; passphraseFile: string | undefined; scryptN: number | undefined }
  | { kind: 'key-show'; keyFile: string }

const OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
  tracker: { type: 'string' },
  key: { type: 'string' },
  'passphrase-file': { type: 'string' },
  json: { type: 'boolean' },
  output: { type: 'string', short: 'o' },
  node: { type: 'string', multiple: true },
  'no-progress': { type: 'boolean' },
  site: { type: 'string' },
  replicas: { type: 'string' },
  origin: { type: 'string' },
  'cache-control': { type: 'string' },
  'include-hidden': { type: 'boolean' },
  'chunk-size': { type: 'string' },
  concurrency: { type: 'string' },
  prefix: { type: 'boolean' },
  out: { type: 'string' },
  'scrypt-n': { type: 'string' },
} as const

type Flag = keyof typeof OPTIONS

/** The flags each command takes (besides --help). */
const ALLOWED: Record<string, readonly Flag[]> = {
  get: ['tracker', 'output', 'node', 'no-progress'],
  publish: [
    'tracker',
    'key',
    'passphrase-file',
    'json',
    'site',
    'replicas',
    'origin',
    'cache-control',
    'include-hidden',
    'chunk-size',
    'concurrency',
    'no-progress',
  ],
  purge: ['key', 'passphrase-file', 'json', 'site', 'node', 'prefix'],
  'site show': ['tracker', 'json'],
  'key create': ['out', 'passphrase-file', 'scrypt-n', 'key'],
  'key show': ['key'],
}

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 2 ** 10, kib: 2 ** 10, m: 2 ** 20, mib: 2 ** 20 }

function usage(message: string): Error {
  return new InvalidArgumentError(`${message}\nRun shoal --help for usage.`)
}

function positiveInt(
  text: string | undefined,
  flag: string,
  max = Number.MAX_SAFE_INTEGER,
): number | undefined {
  if (text === undefined) return undefined
  const n = Number(text)
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < 1 || n > max) {
    throw usage(`${flag}: "${text}" is not an integer from 1 to ${max}`)
  }
  return n
}

function sizeOf(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined
  const m = /^(\d+)\s*([a-z]*)$/i.exec(text.trim())
  const unit = SIZE_UNITS[(m?.[2] ?? 'x').toLowerCase()]
  if (m === null || unit === undefined) throw usage(`${flag}: "${text}" is not a size (e.g. 256KiB, 1MiB)`)
  return Number(m[1]) * unit
}

/** The default publisher key file: `$XDG_CONFIG_HOME/shoal/key.json` or `~/.config/shoal/key.json`. */
export function defaultKeyFile(env: NodeJS.ProcessEnv): string {
  const base = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config')
  return join(base, 'shoal', 'key.json')
}

/**
 * Turns argv (without `node` and the script) and the environment into a command.
 *
 * @example
 * parseCommand(['publish', './public', '--site', 'blog'], { SHOAL_TRACKER: 'http://127.0.0.1:7470' })
 */
export function parseCommand(argv: string[], env: NodeJS.ProcessEnv): Command {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true; strict: true }>>
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true })
  } catch (err) {
    throw usage((err as Error).message)
  }
  const { values, positionals } = parsed
  if (values.help === true || positionals.length === 0) {
    if (values.version === true) return { kind: 'version' }
    return { kind: 'help' }
  }
  const [command = '', ...rest] = positionals
  const name = command === 'site' || command === 'key' ? `${command} ${rest[0] ?? ''}` : command
  const allowed = ALLOWED[name]
  if (allowed === undefined) {
    throw usage(
      command === 'site' || command === 'key'
        ? `unknown command "${name.trim()}": use shoal ${command} ${command === 'site' ? 'show' : 'create|show'}`
        : `unknown command "${command}"`,
    )
  }
  for (const flag of Object.keys(values) as Flag[]) {
    if (flag !== 'help' && !allowed.includes(flag)) throw usage(`--${flag} is not an option of shoal ${name}`)
  }
  const args = command === 'site' || command === 'key' ? rest.slice(1) : rest

  const tracker = values.tracker || env.SHOAL_TRACKER || undefined
  const needTracker = (): string => {
    if (tracker === undefined) throw usage(`shoal ${name} needs a tracker: --tracker URL or SHOAL_TRACKER`)
    return tracker
  }
  const keyFile = values.key ?? (env.SHOAL_KEY || defaultKeyFile(env))
  const key: KeyOptions = { keyFile, passphraseFile: values['passphrase-file'] }
  const one = (what: string): string => {
    if (args.length !== 1) throw usage(`shoal ${name} takes exactly one ${what}`)
    return args[0] as string
  }
  const site = (): string => {
    if (values.site === undefined) throw usage(`shoal ${name} needs --site NAME`)
    return values.site
  }

  switch (name) {
    case 'get': {
      const url = one('URL (shoal://site/path, shoal://cid or https://…)')
      if (url.startsWith('shoal://') && tracker === undefined && values.node === undefined) {
        throw usage(
          'shoal get of a shoal:// URL needs a tracker (--tracker URL or SHOAL_TRACKER) or --node URL',
        )
      }
      return {
        kind: 'get',
        url,
        output: values.output,
        tracker,
        nodes: values.node ?? [],
        progress: values['no-progress'] !== true,
      }
    }
    case 'publish':
      return {
        kind: 'publish',
        dir: one('directory'),
        site: site(),
        tracker: needTracker(),
        key,
        replicas: positiveInt(values.replicas, '--replicas', 32),
        origin: values.origin,
        cacheControl: values['cache-control'],
        includeHidden: values['include-hidden'] === true,
        chunkSize: sizeOf(values['chunk-size'], '--chunk-size'),
        concurrency: positiveInt(values.concurrency, '--concurrency', 64),
        progress: values['no-progress'] !== true,
        json: values.json === true,
      }
    case 'purge': {
      if (args.length === 0) throw usage('shoal purge needs at least one path (or prefix with --prefix)')
      const nodes = values.node ?? (env.SHOAL_NODES ? env.SHOAL_NODES.split(',').map((s) => s.trim()) : [])
      if (nodes.length === 0) throw usage('shoal purge needs the nodes to purge: --node URL or SHOAL_NODES')
      return {
        kind: 'purge',
        site: site(),
        paths: args,
        prefix: values.prefix === true,
        nodes,
        key,
        json: values.json === true,
      }
    }
    case 'site show':
      return { kind: 'site-show', site: one('site name'), tracker: needTracker(), json: values.json === true }
    case 'key create':
      if (args.length > 0) throw usage('shoal key create takes no arguments (use --out FILE)')
      return {
        kind: 'key-create',
        out: values.out ?? keyFile,
        passphraseFile: values['passphrase-file'],
        scryptN: positiveInt(values['scrypt-n'], '--scrypt-n', 2 ** 20),
      }
    default:
      if (args.length > 0) throw usage('shoal key show takes no arguments (use --key FILE)')
      return { kind: 'key-show', keyFile }
  }
}
