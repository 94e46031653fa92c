/**
 * `shoal get <url> [-o FILE]`: a verified fetch through the SDK. With `-o` the bytes go
 * to a temp file beside FILE that is renamed over it only once the whole body was
 * received and verified: FILE is never left partial, and is left as it was on error.
 */
import { randomBytes } from 'node:crypto'
import { open, rename, unlink } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { UpstreamError } from '@shoal/protocol'
import { createClient } from '../client.ts'
import type { Command } from './args.ts'
import { formatBytes } from './format.ts'
import { createProgressBar } from './progress.ts'

type GetCommand = Extract<Command, { kind: 'get' }>

async function writeAtomically(path: string, body: AsyncIterable<Uint8Array>): Promise<number> {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.part`)
  const handle = await open(tmp, 'wx', 0o644)
  let written = 0
  try {
    for await (const piece of body) {
      await handle.write(piece)
      written += piece.length
    }
    await handle.sync()
    await handle.close()
    await rename(tmp, path)
    return written
  } catch (err) {
    await handle.close().catch(() => {})
    await unlink(tmp).catch(() => {})
    throw err
  }
}

async function writeTo(stream: NodeJS.WritableStream, body: AsyncIterable<Uint8Array>): Promise<number> {
  let written = 0
  for await (const piece of body) {
    written += piece.length
    if (!stream.write(piece)) await new Promise((resolve) => stream.once('drain', resolve))
  }
  return written
}

async function* counted(
  body: AsyncIterable<Uint8Array>,
  onBytes: (loaded: number) => void,
): AsyncGenerator<Uint8Array> {
  let loaded = 0
  for await (const piece of body) {
    loaded += piece.length
    onBytes(loaded)
    yield piece
  }
}

/**
 * `shoal://` URLs go through the SDK (verified); `http(s)://` URLs too when a tracker or
 * nodes are configured (the SDK fetches them directly, or through the nodes' origin-pull
 * route), else with plain `fetch`, which is what the SDK would do.
 *
 * @example
 * await runGet({ kind: 'get', url: 'shoal://blog/index.html', output: 'index.html', … }, signal)
 */
export async function runGet(cmd: GetCommand, signal: AbortSignal): Promise<number> {
  const direct = /^https?:\/\//i.test(cmd.url) && cmd.tracker === undefined && cmd.nodes.length === 0
  const client = direct
    ? undefined
    : createClient({
        ...(cmd.tracker === undefined ? {} : { tracker: cmd.tracker }),
        ...(cmd.nodes.length === 0 ? {} : { nodes: cmd.nodes }),
      })
  // a bar only on a terminal, and never over content written to that terminal
  const bar = createProgressBar(
    process.stderr,
    cmd.progress && (cmd.output !== undefined || !process.stdout.isTTY),
  )
  try {
    let res: Response
    if (client !== undefined) res = await client.fetch(cmd.url, { signal })
    else {
      try {
        res = await fetch(cmd.url, { signal })
      } catch (err) {
        if (signal.aborted) throw err
        throw new UpstreamError(`${cmd.url} did not answer: ${(err as Error).message}`, { cause: err })
      }
    }
    if (!res.ok || res.body === null) {
      await res.body?.cancel()
      throw new UpstreamError(`${cmd.url} answered ${res.status} ${res.statusText}`.trim())
    }
    const total = Number(res.headers.get('content-length') ?? Number.NaN)
    const body = counted(res.body as unknown as AsyncIterable<Uint8Array>, (loaded) =>
      bar.update(loaded, Number.isSafeInteger(total) ? total : undefined, 'get'),
    )
    const written =
      cmd.output === undefined ? await writeTo(process.stdout, body) : await writeAtomically(cmd.output, body)
    bar.stop()
    if (cmd.output !== undefined && process.stderr.isTTY) {
      process.stderr.write(`wrote ${formatBytes(written)} to ${cmd.output}\n`)
    }
    return 0
  } finally {
    bar.stop()
    await client?.stop()
  }
}
