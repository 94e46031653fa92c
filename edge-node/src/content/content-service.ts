/**
 * Content-addressed objects on this node: lookups, fills from untrusted sources and
 * publishers' pushes. The one rule: no byte becomes a cache entry, and none is
 * served as verified, before it matched the CID. Fills check each chunk against the
 * CID's leaves as it arrives (or, from an origin that has no leaves, the whole body
 * against the CID before the entry is committed).
 */
import {
  type Cid,
  computeCid,
  createChunkVerifier,
  IntegrityError,
  isShoalError,
  NotFoundError,
  TooLargeError,
  UpstreamError,
  verifyLeaves,
} from '@shoal/protocol'
import type { Logger } from 'pino'
import type { EdgeMetrics } from '../metrics.ts'
import type { ObjectStore, ObjectWriter, StoreEntry } from '../store/index.ts'
import { createPipe } from './pipe.ts'
import { type ContentSource, notFoundAnywhere } from './sources.ts'

const codeOf = (err: unknown): string | undefined => (isShoalError(err) ? err.code : undefined)

export const contentKey = (cid: Cid): string => `cid:${cid.text}`
export const leavesKey = (cid: Cid): string => `leaves:${cid.text}`

export interface ContentServiceInit {
  /** Largest object filled or accepted in a push. */
  maxObjectBytes: number
}

export interface ContentServiceComponents {
  store: ObjectStore
  /** Sources tried for every miss, after the request's own (e.g. peers). */
  sources?: ContentSource[]
  logger?: Logger
  metrics?: EdgeMetrics
  /** Told about every source that sent bytes not matching the CID (to report it). */
  onIntegrityFailure?: (source: ContentSource, cid: Cid, err: Error) => void
}

/** What `open` returns: a stored entry, or the live verified stream of a fill this request leads. */
export type OpenResult =
  | { kind: 'stored'; entry: StoreEntry }
  | { kind: 'live'; body: AsyncIterable<Uint8Array> }

export interface ContentService {
  /** The memory-tier entry for a CID, synchronously (the hit fast path). */
  peek(cid: Cid): StoreEntry | undefined
  has(cid: Cid): boolean
  /** The stored entry, or undefined (no I/O to sources). */
  get(cid: Cid, options?: { signal?: AbortSignal }): Promise<StoreEntry | undefined>
  /**
   * The object's bytes: from the store, or filled from sources. The request that
   * starts a fill streams the verified chunks live; concurrent requests wait for the
   * fill and then read the stored entry, so the sources see one request.
   */
  open(cid: Cid, options?: { signal?: AbortSignal; sources?: ContentSource[] }): Promise<OpenResult>
  /** The CID's verified leaves, from the store or a source. */
  leaves(cid: Cid, options?: { signal?: AbortSignal; sources?: ContentSource[] }): Promise<Uint8Array>
  /** A publisher's push: stored only if the bytes are exactly the CID's. True when newly stored. */
  push(cid: Cid, body: AsyncIterable<Uint8Array>, options?: { signal?: AbortSignal }): Promise<boolean>
  delete(cid: Cid): Promise<void>
}

interface Fill {
  done: Promise<void>
}

/**
 * @example
 * const content = createContentService({ maxObjectBytes: 4 * 2 ** 30 }, { store, logger })
 * const opened = await content.open(cid, { sources: [originSource(upstream, origin, path)] })
 */
export function createContentService(
  init: ContentServiceInit,
  components: ContentServiceComponents,
): ContentService {
  const { store, logger, metrics } = components
  const fills = new Map<string, Fill>()

  const storedLeaves = async (cid: Cid, signal?: AbortSignal): Promise<Uint8Array | undefined> => {
    const entry = store.memory.get(leavesKey(cid)) ?? (await store.get(leavesKey(cid), { signal }))
    if (entry === undefined) return undefined
    const bytes = entry.tier === 'memory' ? entry.body : await entry.readAll({ signal })
    try {
      return await verifyLeaves(cid, bytes)
    } catch (err) {
      // a stored leaf list that no longer matches is dropped, never trusted
      await store.delete(leavesKey(cid))
      logger?.warn(
        { cid: cid.text, err: (err as Error).message },
        'dropped stored leaves that do not match their CID',
      )
      return undefined
    }
  }

  const saveLeaves = async (cid: Cid, leaves: Uint8Array): Promise<void> => {
    if (store.has(leavesKey(cid))) return
    await store.put(leavesKey(cid), { kind: 'leaves', cid: cid.text }, leaves)
  }

  const integrityFailure = (source: ContentSource, cid: Cid, err: Error): void => {
    metrics?.integrityFailures.inc({ source: source.kind })
    logger?.warn(
      { cid: cid.text, source: source.name, err: err.message },
      'source sent bytes that do not match the CID',
    )
    components.onIntegrityFailure?.(source, cid, err)
  }

  /**
   * Pulls the body from one source into `writer`, verified chunk by chunk against
   * `leaves`, passing verified bytes past `skip` to `emit`. Returns the leaves used.
   */
  const pullVerified = async (
    cid: Cid,
    body: AsyncIterable<Uint8Array>,
    leaves: Uint8Array,
    writer: ObjectWriter,
    emit: (piece: Uint8Array) => Promise<void>,
  ): Promise<void> => {
    const verifier = createChunkVerifier(cid, leaves)
    const take = async (chunks: Awaited<ReturnType<typeof verifier.write>>) => {
      for (const chunk of chunks) {
        for (const piece of chunk.pieces) {
          await writer.write(piece)
          await emit(piece)
        }
      }
    }
    for await (const piece of body) await take(await verifier.write(piece))
    await take(await verifier.end())
  }

  /** From a source without leaves: stage the whole body, commit only if it is the CID. */
  const pullUnverified = async (
    cid: Cid,
    body: AsyncIterable<Uint8Array>,
    writer: ObjectWriter,
  ): Promise<Uint8Array> => {
    let total = 0
    async function* staged() {
      for await (const piece of body) {
        total += piece.length
        if (total > cid.size)
          throw new IntegrityError(`source sent more than the ${cid.size} bytes of ${cid.text}`)
        await writer.write(piece)
        yield piece
      }
    }
    const computed = await computeCid(staged(), { chunkSize: cid.chunkSize })
    if (computed.cid.text !== cid.text) {
      throw new IntegrityError(`source bytes hash to ${computed.cid.text}, not ${cid.text}`)
    }
    return computed.leaves
  }

  const fill = async (
    cid: Cid,
    sources: ContentSource[],
    emit: (piece: Uint8Array) => Promise<void>,
    signal: AbortSignal | undefined,
  ): Promise<void> => {
    if (cid.size > init.maxObjectBytes) {
      throw new TooLargeError(`${cid.text} is ${cid.size} bytes, above this node's ${init.maxObjectBytes}`)
    }
    let leaves = await storedLeaves(cid, signal)
    let emitted = 0
    let lastError: unknown
    for (const source of sources) {
      let writer: ObjectWriter | undefined
      const started = performance.now()
      try {
        if (leaves === undefined && source.leaves !== undefined) {
          const offered = await source.leaves(cid, { signal })
          if (offered !== undefined) {
            try {
              leaves = await verifyLeaves(cid, offered)
            } catch (err) {
              integrityFailure(source, cid, err as Error)
              continue
            }
          }
        }
        const body = await source.body(cid, { signal })
        if (body === undefined) continue
        metrics?.upstreamSeconds.observe({ upstream: source.kind }, (performance.now() - started) / 1000)
        writer = store.createWriter(
          contentKey(cid),
          { kind: 'content', cid: cid.text },
          { expectedSize: cid.size, signal },
        )
        const w = writer
        if (leaves !== undefined) {
          // bytes already sent live by an earlier source are skipped, never repeated
          let position = 0
          await pullVerified(cid, body, leaves, w, async (piece) => {
            const end = position + piece.length
            if (end > emitted) {
              await emit(position >= emitted ? piece : piece.subarray(emitted - position))
              emitted = end
            }
            position = end
            metrics?.upstreamBytes.inc({ upstream: source.kind }, piece.length)
          })
        } else {
          leaves = await pullUnverified(cid, body, w)
          metrics?.upstreamBytes.inc({ upstream: source.kind }, cid.size)
        }
        await w.commit()
        await saveLeaves(cid, leaves)
        logger?.debug({ cid: cid.text, source: source.name }, 'filled content')
        return
      } catch (err) {
        await writer?.abort(err)
        if (signal?.aborted === true) throw err
        if (codeOf(err) === 'SHOAL_ERR_INTEGRITY' || codeOf(err) === 'SHOAL_ERR_INVALID_LEAVES') {
          integrityFailure(source, cid, err as Error)
        } else {
          logger?.info(
            { cid: cid.text, source: source.name, err: (err as Error).message },
            'content source failed',
          )
        }
        lastError = err
      }
    }
    if (lastError !== undefined) {
      throw isShoalError(lastError) && lastError.code !== 'SHOAL_ERR_INTEGRITY'
        ? lastError
        : new UpstreamError(`no source delivered ${cid.text} intact`, { cause: lastError })
    }
    throw notFoundAnywhere(cid)
  }

  const service: ContentService = {
    peek: (cid) => store.memory.get(contentKey(cid)),
    has: (cid) => store.has(contentKey(cid)),
    get: (cid, options = {}) => store.get(contentKey(cid), options),

    async open(cid, options = {}) {
      const key = contentKey(cid)
      const hit = store.memory.get(key) ?? (await store.get(key, options))
      if (hit !== undefined) {
        metrics?.cacheHits.inc({ tier: hit.tier })
        return { kind: 'stored', entry: hit }
      }
      const running = fills.get(key)
      if (running !== undefined) {
        await running.done
        const entry = await store.get(key, options)
        if (entry === undefined) throw new NotFoundError(`${cid.text} was filled and then evicted; retry`)
        return { kind: 'stored', entry }
      }
      metrics?.cacheMisses.inc({ kind: 'content' })
      // a source named by the request and by the node (the mesh) is tried once
      const sources = [...new Set([...(options.sources ?? []), ...(components.sources ?? [])])]
      const pipe = createPipe()
      // The fill belongs to the node, not to this request: it goes on when the client leaves.
      const done = fill(cid, sources, (piece) => pipe.push(piece), undefined).then(
        () => pipe.end(),
        (err: unknown) => {
          pipe.fail(err)
          throw err
        },
      )
      const entry: Fill = { done: done.catch(() => {}) }
      fills.set(key, entry)
      void entry.done.finally(() => fills.delete(key))
      // a failure before the first byte reaches the caller as the stream's first error
      return { kind: 'live', body: pipe.readable }
    },

    async leaves(cid, options = {}) {
      const stored = await storedLeaves(cid, options.signal)
      if (stored !== undefined) return stored
      for (const source of [...(options.sources ?? []), ...(components.sources ?? [])]) {
        if (source.leaves === undefined) continue
        try {
          const offered = await source.leaves(cid, { signal: options.signal })
          if (offered === undefined) continue
          const leaves = await verifyLeaves(cid, offered)
          await saveLeaves(cid, leaves)
          return leaves
        } catch (err) {
          if (codeOf(err) === 'SHOAL_ERR_INVALID_LEAVES') integrityFailure(source, cid, err as Error)
        }
      }
      // no source has leaves: fill the object, which computes them from the bytes
      if (!store.has(contentKey(cid))) {
        const opened = await service.open(cid, options)
        if (opened.kind === 'live') for await (const _ of opened.body);
      }
      const after = await storedLeaves(cid, options.signal)
      if (after === undefined) throw new NotFoundError(`no leaves for ${cid.text}`)
      return after
    },

    async push(cid, body, options = {}) {
      if (cid.size > init.maxObjectBytes) {
        throw new TooLargeError(`${cid.text} is ${cid.size} bytes, above this node's ${init.maxObjectBytes}`)
      }
      if (store.has(contentKey(cid))) {
        // drain the body so the connection can be reused; nothing to store
        for await (const _ of body);
        return false
      }
      const writer = store.createWriter(
        contentKey(cid),
        { kind: 'content', cid: cid.text },
        {
          expectedSize: cid.size,
          signal: options.signal,
        },
      )
      try {
        const leaves = await pullUnverified(cid, body, writer)
        await writer.commit()
        await saveLeaves(cid, leaves)
        return true
      } catch (err) {
        await writer.abort(err)
        throw err
      }
    },

    async delete(cid) {
      await store.delete(contentKey(cid))
      await store.delete(leavesKey(cid))
    },
  }
  return service
}
