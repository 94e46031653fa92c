/**
 * Small helpers of the cache tiers. Internal.
 */
import { createHash } from 'node:crypto'
import { close as fsClose, fdatasync as fsFdatasync, open as fsOpen, write as fsWrite } from 'node:fs'
import { AbortError, InvalidArgumentError, TooLargeError } from '@shoal/protocol'
import { MAX_KEY_LENGTH } from './constants.ts'
import type { BodySource, StoreMeta } from './types.ts'

/** Throws `InvalidArgumentError` unless `key` is a non-empty string of bounded length. */
export function checkKey(key: unknown): asserts key is string {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH) {
    throw new InvalidArgumentError(`key must be a non-empty string of at most ${MAX_KEY_LENGTH} characters`)
  }
}

/** Throws `InvalidArgumentError` unless `value` is an integer in `[min, max]`. */
export function checkInteger(
  name: string,
  value: unknown,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new InvalidArgumentError(`${name} must be an integer in [${min}, ${max}]`)
  }
  return value
}

/** Normalised metadata and its JSON text. */
export interface NormalizedMeta {
  meta: StoreMeta
  text: string
}

/** The JSON text of each metadata object `normalizeMeta` returned (they are deeply frozen). */
const NORMALIZED_TEXT = new WeakMap<object, string>()

/**
 * Normalises metadata by a JSON round trip and deep-freezes the result, so what is
 * read back from memory and from disk is the same value.
 * Throws `InvalidArgumentError` when it is not a JSON object, `TooLargeError` past `maxBytes`.
 */
export function normalizeMeta(meta: unknown, maxBytes: number): NormalizedMeta {
  const { text, normalized } = metaText(meta, maxBytes)
  return { meta: normalized ?? parseMeta(text), text }
}

/**
 * The checked JSON text of metadata, and the metadata itself when it is already
 * normalised (`normalized`); `parseMeta(text)` gives the normalised value otherwise.
 * For a store that keeps the text and parses it only when the metadata is read.
 * Throws as `normalizeMeta`.
 */
export function metaText(meta: unknown, maxBytes: number): { text: string; normalized?: StoreMeta } {
  if (meta === null || typeof meta !== 'object' || Array.isArray(meta)) {
    throw new InvalidArgumentError('meta must be a JSON object')
  }
  // Metadata this module produced (deeply frozen, so its text still holds) is not
  // normalised again: a fill hands the disk's result to the memory tier.
  const known = NORMALIZED_TEXT.get(meta)
  let text: string
  try {
    text = known ?? JSON.stringify(meta)
  } catch (err) {
    throw new InvalidArgumentError('meta must be JSON-serialisable', { cause: err })
  }
  if (text.length > maxBytes || Buffer.byteLength(text) > maxBytes) {
    throw new TooLargeError(`meta is larger than ${maxBytes} bytes as JSON`)
  }
  return known === undefined ? { text } : { text, normalized: meta as StoreMeta }
}

/** The normalised (parsed, deeply frozen) metadata of a `metaText` text. */
export function parseMeta(text: string): StoreMeta {
  const normalized = deepFreeze(JSON.parse(text) as StoreMeta)
  NORMALIZED_TEXT.set(normalized, text)
  return normalized
}

/** Freezes `value` and everything it holds. */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const inner of Object.values(value)) deepFreeze(inner)
  }
  return value
}

/** SHA-256 of a string or bytes, lowercase hex. */
export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex')
}

/** The `AbortError` for an aborted signal. */
export function abortError(signal: AbortSignal | undefined, what = 'the operation was aborted'): Error {
  return new AbortError(what, { cause: signal?.reason })
}

/**
 * Iterates a body source, racing each pull of an async source against `signal` so a
 * stalled source cannot outlive it. The source is closed when iteration stops early.
 */
export async function* iterateSource(
  source: BodySource,
  signal: AbortSignal | undefined,
): AsyncGenerator<Uint8Array, void, undefined> {
  if (source instanceof Uint8Array) {
    yield source
    return
  }
  if (source == null || typeof source !== 'object') {
    throw new InvalidArgumentError('source must be a Uint8Array or an iterable of Uint8Array')
  }
  const isAsync = typeof (source as AsyncIterable<Uint8Array>)[Symbol.asyncIterator] === 'function'
  if (!isAsync) {
    if (typeof (source as Iterable<Uint8Array>)[Symbol.iterator] !== 'function') {
      throw new InvalidArgumentError('source must be a Uint8Array or an iterable of Uint8Array')
    }
    for (const piece of source as Iterable<Uint8Array>) {
      if (signal?.aborted) throw abortError(signal)
      yield checkPiece(piece)
    }
    return
  }
  const iterator = (source as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]()
  let finished = false
  let onAbort: (() => void) | undefined
  const aborted =
    signal === undefined
      ? undefined
      : new Promise<never>((_, reject) => {
          onAbort = () => reject(abortError(signal))
          signal.addEventListener('abort', onAbort, { once: true })
        })
  aborted?.catch(() => {})
  try {
    for (;;) {
      if (signal?.aborted) throw abortError(signal)
      const pull = iterator.next()
      const result = aborted === undefined ? await pull : await Promise.race([pull, aborted])
      if (result.done === true) {
        finished = true
        return
      }
      yield checkPiece(result.value)
    }
  } finally {
    if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort)
    if (!finished) {
      // Do not wait: a stalled source would hold the caller.
      Promise.resolve()
        .then(() => iterator.return?.())
        .catch(() => {})
    }
  }
}

function checkPiece(piece: unknown): Uint8Array {
  if (!(piece instanceof Uint8Array))
    throw new InvalidArgumentError('a body source must yield Uint8Array pieces')
  return piece
}

/** Serialises async sections per key: `withLock(key, fn)` runs after every earlier section for `key`. */
export function createKeyedLock(): <T>(key: string, fn: () => Promise<T>) => Promise<T> {
  const tails = new Map<string, Promise<void>>()
  return async <T>(key: string, fn: () => Promise<T>): Promise<T> => {
    const previous = tails.get(key)
    let release!: () => void
    const mine = new Promise<void>((resolve) => {
      release = resolve
    })
    const tail = previous === undefined ? mine : previous.then(() => mine)
    tails.set(key, tail)
    try {
      if (previous !== undefined) await previous
      return await fn()
    } finally {
      release()
      if (tails.get(key) === tail) tails.delete(key)
    }
  }
}

/** Runs `fn` over `items` with at most `limit` calls in flight. */
export async function mapLimit<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T
      await fn(item)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
}

/** A `code` property of an error, if any. */
export function errorCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined
  const code = (err as { code?: unknown }).code
  return typeof code === 'string' ? code : undefined
}

/**
 * Writes `data` to a new or truncated file in one go, with the callback API: one promise
 * for open, write, (fdatasync) and close, much cheaper per small file than `FileHandle`.
 * `flags` is `'wx'` (must not exist) or `'w'`. The file is left partial on failure.
 */
export function writeSmallFile(
  path: string,
  data: Uint8Array,
  flags: 'w' | 'wx',
  sync: boolean,
): Promise<void> {
  return new Promise((resolve, reject) => {
    fsOpen(path, flags, 0o600, (openErr, fd) => {
      if (openErr !== null) {
        reject(openErr)
        return
      }
      const done = (err: NodeJS.ErrnoException | null): void => {
        fsClose(fd, (closeErr) => {
          const failure = err ?? closeErr
          if (failure === null) resolve()
          else reject(failure)
        })
      }
      let at = 0
      const wrote = (err: NodeJS.ErrnoException | null, n: number): void => {
        if (err !== null) {
          done(err)
          return
        }
        at += n
        if (at < data.byteLength) fsWrite(fd, data, at, data.byteLength - at, at, wrote)
        else if (sync) fsFdatasync(fd, done)
        else done(null)
      }
      if (data.byteLength === 0) done(null)
      else fsWrite(fd, data, 0, data.byteLength, 0, wrote)
    })
  })
}
