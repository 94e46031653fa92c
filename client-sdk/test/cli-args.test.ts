/**
 * `shoal` argument parsing in-process (the child-process tests in cli.test.ts check the
 * exit codes): each bad usage is an `InvalidArgumentError` whose message says what to do;
 * flags, environment and defaults become plain options. Also the progress bar: drawn on
 * a terminal, nothing at all on a pipe.
 */
import { Writable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { defaultKeyFile, parseCommand } from '../src/cli/args.ts'
import { formatBytes } from '../src/cli/format.ts'
import { createProgressBar } from '../src/cli/progress.ts'

const env = { HOME: '/home/pub', SHOAL_TRACKER: 'http://127.0.0.1:7470' }

function usageError(argv: string[], environment: NodeJS.ProcessEnv = env): string {
  try {
    parseCommand(argv, environment)
  } catch (err) {
    expect((err as { code: string }).code).toBe('SHOAL_ERR_INVALID_ARGUMENT')
    expect((err as Error).message).toContain('Run shoal --help for usage.')
    return (err as Error).message
  }
  throw new Error(`parsed: ${argv.join(' ')}`)
}

describe('shoal arguments', () => {
  it('parses each command into plain options, with environment and defaults', () => {
    expect(parseCommand([], env)).toEqual({ kind: 'help' })
    expect(parseCommand(['--version'], env)).toEqual({ kind: 'version' })
    expect(
      parseCommand(['publish', './public', '--site', 'blog', '--replicas', '2', '--chunk-size', '1MiB'], env),
    ).toMatchObject({
      kind: 'publish',
      dir: './public',
      site: 'blog',
      tracker: 'http://127.0.0.1:7470',
      replicas: 2,
      chunkSize: 2 ** 20,
      includeHidden: false,
      progress: true,
      key: { keyFile: '/home/pub/.config/shoal/key.json', passphraseFile: undefined },
    })
    expect(parseCommand(['get', 'shoal://blog/a.css', '-o', 'a.css', '--no-progress'], env)).toEqual({
      kind: 'get',
      url: 'shoal://blog/a.css',
      output: 'a.css',
      tracker: 'http://127.0.0.1:7470',
      nodes: [],
      progress: false,
    })
    // https:// needs no tracker
    expect(parseCommand(['get', 'https://example.org/a'], {})).toMatchObject({
      kind: 'get',
      tracker: undefined,
    })
    expect(
      parseCommand(['purge', '--site', 'shop', '/a', '/b/', '--prefix'], {
        ...env,
        SHOAL_NODES: 'http://n1/, http://n2/',
      }),
    ).toMatchObject({
      kind: 'purge',
      paths: ['/a', '/b/'],
      prefix: true,
      nodes: ['http://n1/', 'http://n2/'],
    })
    expect(parseCommand(['site', 'show', 'blog', '--json'], env)).toEqual({
      kind: 'site-show',
      site: 'blog',
      tracker: 'http://127.0.0.1:7470',
      json: true,
    })
    expect(parseCommand(['key', 'create', '--scrypt-n', '1024'], { ...env, SHOAL_KEY: '/k.json' })).toEqual({
      kind: 'key-create',
      out: '/k.json',
      passphraseFile: undefined,
      scryptN: 1024,
    })
    expect(parseCommand(['key', 'show', '--key', '/x.json'], env)).toEqual({
      kind: 'key-show',
      keyFile: '/x.json',
    })
    expect(defaultKeyFile({ XDG_CONFIG_HOME: '/cfg' })).toBe('/cfg/shoal/key.json')
  })

  it('refuses bad usage with a message that says what to do', () => {
    expect(usageError(['frobnicate'])).toContain('unknown command "frobnicate"')
    expect(usageError(['site', 'list'])).toContain('use shoal site show')
    expect(usageError(['key'])).toContain('use shoal key create|show')
    expect(usageError(['publish', 'dir'])).toContain('needs --site NAME')
    expect(usageError(['publish', 'dir', '--site', 'blog'], {})).toContain('--tracker URL or SHOAL_TRACKER')
    expect(usageError(['publish', 'a', 'b', '--site', 'blog'])).toContain('takes exactly one directory')
    expect(usageError(['publish', 'd', '--site', 'blog', '--replicas', '0'])).toContain('--replicas: "0"')
    expect(usageError(['publish', 'd', '--site', 'blog', '--replicas', '33'])).toContain('from 1 to 32')
    expect(usageError(['publish', 'd', '--site', 'blog', '--chunk-size', 'big'])).toContain('is not a size')
    expect(usageError(['get'])).toContain('takes exactly one URL')
    expect(usageError(['get', 'x', '--replicas', '2'])).toContain('--replicas is not an option of shoal get')
    expect(usageError(['get', 'x', '--bogus'])).toContain("Unknown option '--bogus'")
    expect(usageError(['get', 'shoal://blog/a'], {})).toContain('needs a tracker')
    expect(usageError(['purge', '--site', 'shop'])).toContain('at least one path')
    expect(usageError(['purge', '--site', 'shop', '/a'])).toContain('--node URL or SHOAL_NODES')
    expect(usageError(['key', 'create', 'extra'])).toContain('takes no arguments')
  })

  it('draws a progress bar on a terminal and nothing on a pipe', () => {
    const sink = (isTTY: boolean) => {
      let text = ''
      const stream = new Writable({
        write(chunk, _enc, done) {
          text += chunk
          done()
        },
      }) as unknown as NodeJS.WriteStream
      Object.assign(stream, {
        isTTY,
        columns: 100,
        cursorTo: () => true,
        clearLine: () => true,
        moveCursor: () => true,
      })
      return { stream, text: () => text }
    }
    const tty = sink(true)
    const bar = createProgressBar(tty.stream, true)
    bar.update(512 * 1024, 2 ** 20, 'get')
    bar.update(2 ** 20, 2 ** 20)
    bar.stop()
    expect(tty.text()).toContain('100%')
    expect(tty.text()).toContain('1.0 MiB / 1.0 MiB')
    for (const [isTTY, enabled] of [
      [false, true],
      [true, false],
    ] as const) {
      const quiet = sink(isTTY)
      const none = createProgressBar(quiet.stream, enabled)
      none.update(1, 2, 'get')
      none.stop()
      expect(quiet.text()).toBe('')
    }
    expect(formatBytes(0)).toBe('0 B')
    expect(formatBytes(1536)).toBe('1.5 KiB')
    expect(formatBytes(300 * 2 ** 20)).toBe('300 MiB')
  })
})
