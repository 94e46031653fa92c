/**
 * `createMeshDispatch`: the client pipeline's base dispatch for nodes reachable only
 * through the mesh (Node only). It answers the two requests the content fetcher makes of
 * a node — `…/c/<cid>/leaves` and `…/c/<cid>` with or without a range — over the mesh
 * chunk protocol (`/shoal/chunk/1.0.0`) instead of HTTP, so `createClient` reaches a node
 * behind NAT through its circuit relay address.
 *
 * The mesh client checks every chunk against the CID's leaves on arrival; the content
 * fetcher then verifies the bytes again, as from any node, races and fails over.
 *
 * The dispatch carries the mesh's payment channel (`payments`): a client with an account
 * opens its sessions with mesh-only nodes and sends them receipts over
 * `/shoal/receipt/1.0.0`, and each chunk request names the session (`shoal-session`).
 *
 * @example
 * const mesh = createMeshClient()
 * await mesh.start()
 * const client = createClient({ tracker }, { mesh: createMeshDispatch(mesh) })
 */
import { InvalidArgumentError, isCidText, parseCid } from '@shoal/protocol'
import { failureOf } from '../errors.ts'
import { createLeavesCache, leavesLength } from '../leaves.ts'
import type { Dispatch, SourceEnd, SourceProgress, SourceResponse } from '../pipeline/dispatch.ts'
import type { PaymentChannel } from '../receipts/payments.ts'
import type { MeshClient } from './mesh-client.ts'
import { meshPaymentChannel } from './mesh-receipts.ts'

const CONTENT_PATH = /\/c\/([^/?#]+)(\/leaves)?$/

/** Bytes of verified leaf lists the dispatch keeps to hand to its chunk requests. */
export const DEFAULT_MESH_DISPATCH_LEAVES_BYTES = 4 * 2 ** 20

export interface MeshDispatchInit {
  /** Bytes of verified leaf lists kept (default 4 MiB). */
  leavesBytes?: number
}

/** A mesh dispatch and the channel that pays the nodes it reads from. */
export interface MeshDispatch extends Dispatch {
  readonly payments: PaymentChannel
}

/**
 * @example
 * const client = createClient({ tracker: trackerUrl, account }, { mesh: createMeshDispatch(meshClient) })
 */
export function createMeshDispatch(
  mesh: Pick<MeshClient, 'leaves' | 'range' | 'openSession' | 'sendReceipt'>,
  init: MeshDispatchInit = {},
): MeshDispatch {
  const leavesBytes = init.leavesBytes ?? DEFAULT_MESH_DISPATCH_LEAVES_BYTES
  if (!Number.isSafeInteger(leavesBytes) || leavesBytes < 0)
    throw new InvalidArgumentError('mesh dispatch leavesBytes must be a non-negative integer')
  // leaves the mesh client verified against the CID: a chunk request that carries them
  // does not make the node send (and meter) the leaf list a second time
  const verifiedLeaves = createLeavesCache(leavesBytes)
  const dispatch: Dispatch = async (req) => {
    const node = req.source.mesh
    if (node === undefined) throw new InvalidArgumentError(`${req.source.url} is not a mesh node`)
    const m = CONTENT_PATH.exec(req.url)
    if (m === null || !isCidText(m[1]!))
      throw new InvalidArgumentError(`the mesh serves /c/<cid> and /c/<cid>/leaves, not ${req.url}`)
    const cid = parseCid(m[1]!)
    const { signal } = req
    const session = req.headers?.['shoal-session']
    const paid = session === undefined ? { signal } : { signal, session }
    const from = `mesh node ${node.peerId}`
    const started = performance.now()
    const progress: SourceProgress = { waitingSince: performance.now(), bytes: 0 }
    let pieces: AsyncIterator<Uint8Array>
    let length: number
    if (m[2] !== undefined) {
      length = leavesLength(cid)
      const leaves = mesh.leaves(node, cid, paid).then((l) => {
        verifiedLeaves.set(cid, l)
        return l
      })
      pieces = (async function* () {
        yield await leaves
      })()
    } else {
      const start = req.range?.start ?? 0
      const end = req.range?.end ?? cid.size
      length = end - start
      const leaves = verifiedLeaves.get(cid)
      pieces = mesh
        .range(node, cid, start, end, leaves === undefined ? paid : { ...paid, leaves })
        [Symbol.asyncIterator]()
    }

    let ended: SourceEnd | undefined
    const listeners: ((end: SourceEnd) => void)[] = []
    const end = (outcome: SourceEnd) => {
      if (ended !== undefined) return
      ended = outcome
      progress.waitingSince = undefined
      if (!outcome.complete) void pieces.return?.().catch(() => {})
      for (const fn of listeners) fn(outcome)
    }
    const read = async (): Promise<Uint8Array | undefined> => {
      progress.waitingSince = performance.now()
      try {
        const r = await pieces.next()
        progress.waitingSince = undefined
        return r.done === true ? undefined : r.value
      } catch (err) {
        const error = failureOf(err, signal, `${from} broke off the body`)
        end({ complete: false, error })
        throw error
      }
    }
    const first = length === 0 ? undefined : await read()
    const ttfbMs = performance.now() - started

    async function* body(): AsyncGenerator<Uint8Array> {
      try {
        let piece = first
        while (piece !== undefined) {
          progress.bytes += piece.length
          yield piece
          if (progress.bytes >= length) break
          piece = await read()
        }
        end({ complete: progress.bytes === length })
      } finally {
        end({ complete: false })
      }
    }

    const response: SourceResponse = {
      status: req.range === undefined ? 200 : 206,
      headers: new Headers({ 'content-length': String(length) }),
      body: body(),
      ttfbMs,
      progress,
      // chunks were checked against their leaves on arrival: no bad piece ever reaches here
      recent: () => undefined,
      onEnd(fn) {
        if (ended !== undefined) fn(ended)
        else listeners.push(fn)
      },
      close: () => end({ complete: false }),
    }
    return response
  }
  return Object.assign(dispatch, { payments: meshPaymentChannel(mesh) })
}
