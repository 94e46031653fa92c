/**
 * Receipt signature verification across worker threads: receipts are cut into chunks,
 * each worker computes the fixed-layout digest (`digest.ts`) and recovers the signer with
 * libsecp256k1 (`recover.ts`). Settlement compares the recovered signer with the
 * receipt's `client`.
 */
import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import { type BandwidthReceipt, InvalidArgumentError } from '@shoal/protocol'
import type { VerifyAnswer, VerifyJob } from './verify-worker.ts'

export const DEFAULT_VERIFY_CHUNK = 4_096

export interface ReceiptVerifierInit {
  /** Worker threads; default: the machine's parallelism. */
  threads?: number
  /** Receipts per message to a worker. */
  chunk?: number
}

export interface VerifyResult {
  /** Lowercase hex digest per receipt (`''` when the message could not be encoded). */
  digests: string[]
  /** Lowercase recovered signer per receipt (`''` when the signature recovers none). */
  signers: string[]
}

export interface ReceiptVerifier {
  verify(receipts: readonly { message: BandwidthReceipt; signature: string }[]): Promise<VerifyResult>
  /**
   * Recovers signers of digests the caller computed itself (e.g. stored at submission),
   * skipping the digest: lowercase 0x-hex digest and 65-byte signature per item.
   */
  recover(items: readonly { digest: string; signature: string }[]): Promise<string[]>
  close(): Promise<void>
}

/**
 * @example
 * const verifier = createReceiptVerifier({ threads: 2 })
 * const { signers } = await verifier.verify(receipts)
 * await verifier.close()
 */
export function createReceiptVerifier(init: ReceiptVerifierInit = {}): ReceiptVerifier {
  const threads = init.threads ?? availableParallelism()
  const chunk = init.chunk ?? DEFAULT_VERIFY_CHUNK
  if (!Number.isSafeInteger(threads) || threads < 1 || threads > 256)
    throw new InvalidArgumentError('threads must be an integer from 1 to 256')
  if (!Number.isSafeInteger(chunk) || chunk < 1)
    throw new InvalidArgumentError('chunk must be a positive integer')
  let workers: Worker[] | undefined
  let nextId = 0
  const waiting = new Map<number, { resolve: (a: VerifyAnswer) => void; reject: (e: Error) => void }>()

  const start = (): Worker[] => {
    if (workers !== undefined) return workers
    workers = Array.from({ length: threads }, () => {
      const w = new Worker(new URL('./verify-worker.ts', import.meta.url))
      w.on('message', (a: VerifyAnswer) => {
        const p = waiting.get(a.id)
        waiting.delete(a.id)
        p?.resolve(a)
      })
      w.on('error', (err) => {
        for (const p of waiting.values()) p.reject(err)
        waiting.clear()
      })
      w.unref()
      return w
    })
    return workers
  }

  const run = async (
    count: number,
    make: (from: number, to: number) => Omit<VerifyJob, 'id'>,
  ): Promise<VerifyAnswer[]> => {
    const pool = start()
    const jobs: Promise<VerifyAnswer>[] = []
    for (let i = 0, k = 0; i < count; i += chunk, k++) {
      const id = nextId++
      const job: VerifyJob = { id, ...make(i, Math.min(count, i + chunk)) }
      jobs.push(
        new Promise<VerifyAnswer>((resolve, reject) => {
          waiting.set(id, { resolve, reject })
          pool[k % pool.length]!.postMessage(job)
        }),
      )
    }
    // workers keep the process alive only while they have work
    for (const w of pool) w.ref()
    try {
      return await Promise.all(jobs)
    } finally {
      if (workers === pool) for (const w of pool) w.unref()
    }
  }

  return {
    async verify(receipts) {
      const answers = await run(receipts.length, (from, to) => ({
        receipts: receipts.slice(from, to).map((r) => ({ message: r.message, signature: r.signature })),
      }))
      const digests: string[] = []
      const signers: string[] = []
      for (const a of answers) {
        for (const d of a.digests) digests.push(d)
        for (const s of a.signers) signers.push(s)
      }
      return { digests, signers }
    },
    async recover(items) {
      const answers = await run(items.length, (from, to) => {
        let packed = ''
        for (let i = from; i < to; i++) {
          const it = items[i]!
          const sig = it.signature.length === 132 ? it.signature.slice(2) : '00'.repeat(65)
          packed += (it.digest.length === 66 ? it.digest.slice(2) : '00'.repeat(32)) + sig
        }
        return { packed }
      })
      const signers: string[] = []
      for (const a of answers) for (const s of a.signers) signers.push(s)
      return signers
    },
    async close() {
      const ws = workers
      workers = undefined
      if (ws !== undefined) await Promise.all(ws.map((w) => w.terminate()))
    },
  }
}
