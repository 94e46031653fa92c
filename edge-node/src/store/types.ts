/**
 * Types shared by the cache tiers.
 */
import type { EdgeMetrics } from '../metrics.ts'

/**
 * What a caller stores beside a body: a JSON object (the HTTP cache puts response
 * headers and cache policy there). It is normalised by a JSON round trip and deeply
 * frozen when stored, so every reader sees the same immutable value, in memory and
 * after a restart.
 */
export type StoreMeta = { readonly [name: string]: unknown }

/**
 * Metadata as a caller hands it in: any JSON-serialisable object (an interface type
 * is fine). Read back as `StoreMeta`: validate it into your own type, as an entry may
 * have been written by an older version of the caller.
 */
export type StoreMetaInput = object

/** Bytes `[start, end)` of a body; both default to the whole body. */
export interface BodyRange {
  start?: number
  end?: number
}

/** Where a body comes from when it is put: one buffer, or a stream of pieces. */
export type BodySource = Uint8Array | AsyncIterable<Uint8Array> | Iterable<Uint8Array>

/** Structured, namespaced logs: `log.warn('corrupt cache entry', { key })`. */
export interface StoreLogger {
  debug(message: string, fields?: Record<string, unknown>): void
  info(message: string, fields?: Record<string, unknown>): void
  warn(message: string, fields?: Record<string, unknown>): void
}

/** The metrics the store updates (a subset of the edge node's `createMetrics`). */
export type StoreMetrics = Pick<EdgeMetrics, 'cacheBytes' | 'cacheObjects' | 'integrityFailures'>

export interface AbortOptions {
  signal?: AbortSignal
}

/** Size of a tier. */
export interface TierStats {
  /** Bytes accounted to the tier (see each tier for what is counted). */
  bytes: number
  /** Objects held. */
  objects: number
  /** The tier's bound in bytes. */
  maxBytes: number
}

/** What a stored object looks like once it is visible. */
export interface PutResult {
  key: string
  /** Body length in bytes. */
  size: number
  /** SHA-256 of the body, lowercase hex. */
  sha256: string
  /** The normalised, frozen metadata as stored. */
  meta: StoreMeta
  /** Increases every time the entry for this key changes (body or metadata); 0 for an entry held only in memory. */
  version: number
}

export interface PutOptions extends AbortOptions {
  /** Declared body length (e.g. `Content-Length`): refused early when too large, checked at commit. */
  expectedSize?: number
  /** Declared body SHA-256 (lowercase hex), checked at commit. */
  expectedSha256?: string
  /**
   * Admission to disk at the second use (the tiered store; the disk tier ignores it): a
   * body that fits in memory (declared by `expectedSize`, or found so as it is written)
   * is held only in memory, and written to disk off the response path when it is read
   * again. An object never asked
   * for again never touches the disk, and is lost at a restart. Written to disk at once
   * instead when its key is already on disk or was dropped from memory unread not long
   * ago (a second miss is a second use), or when it outgrows memory's `maxObjectBytes`.
   * Default false: on disk at the commit.
   */
  admitOnReuse?: boolean
  /**
   * Runs synchronously at the moment the entry becomes visible, in commit order for a
   * key. The tiered store uses it to keep the memory tier in step with the disk.
   */
  onCommit?: (result: PutResult) => void
}

export interface CommitOptions extends AbortOptions {
  /** Replaces the metadata given when the writer was made (e.g. once trailers are known). */
  meta?: StoreMetaInput
  /**
   * The last piece of the body (or all of it), handed over with the commit: unlike a
   * `write`, the writer may keep this buffer, so the caller must not change it after. A
   * small body given whole here is stored without a copy, in one file write.
   */
  body?: Uint8Array
}

/**
 * Fills one cache entry piece by piece, e.g. while teeing an upstream response to a
 * client. Nothing is visible until `commit()`, which the caller calls only once the
 * bytes are verified; `abort()` (or the writer's signal) throws them away. A writer
 * that is neither committed nor aborted holds a temp file until the process ends
 * (it is deleted at the next start).
 */
export interface ObjectWriter {
  readonly key: string
  /** Body bytes accepted so far. */
  readonly bytesWritten: number
  /**
   * Appends a piece. Resolves once the writer no longer needs `chunk` (it is copied
   * or written): do not reuse the buffer before. Rejects with `TooLargeError` past
   * the size limit (the writer is then aborted). One exception, with `admitOnReuse` and
   * `expectedSize`: pieces that are consecutive views of one `ArrayBuffer` of exactly
   * `expectedSize` bytes, from its start, are kept as the stored body without a copy, so
   * that buffer must never be modified afterwards.
   */
  write(chunk: Uint8Array, options?: AbortOptions): Promise<void>
  /** Makes the entry visible, atomically replacing any previous one for the key. */
  commit(options?: CommitOptions): Promise<PutResult>
  /** Throws the bytes away; idempotent, never rejects. */
  abort(reason?: unknown): Promise<void>
}

/** A key and what is stored for it, as listed by `entries()`. */
export interface EntryInfo {
  key: string
  size: number
  sha256: string
  meta: StoreMeta
}
