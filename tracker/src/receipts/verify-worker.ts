/**
 * Worker thread of the receipt verifier pool: for each receipt of a chunk, its digest
 * and the address its signature recovers (lowercase, `''` when none).
 */
import { parentPort } from 'node:worker_threads'
import type { BandwidthReceipt } from '@shoal/protocol'
import { createReceiptDigester, digestHex } from './digest.ts'
import { recoverSigner } from './recover.ts'

export interface VerifyJob {
  id: number
  /** Receipts to digest and recover. */
  receipts?: { message: BandwidthReceipt; signature: string }[]
  /** Or digests the tracker computed itself at submission, and signatures, concatenated hex without 0x (64 + 130 per item). */
  packed?: string
}

export interface VerifyAnswer {
  id: number
  digests: string[]
  signers: string[]
}

const digester = createReceiptDigester()

const digestBuf = new Uint8Array(32)

function recoverPacked(job: VerifyJob & { packed: string }): VerifyAnswer {
  const n = job.packed.length / 194
  const signers: string[] = new Array(n)
  for (let i = 0; i < n; i++) {
    const at = i * 194
    Buffer.from(digestBuf.buffer).write(job.packed.slice(at, at + 64), 'hex')
    signers[i] = recoverSigner(digestBuf, `0x${job.packed.slice(at + 64, at + 194)}`) ?? ''
  }
  return { id: job.id, digests: [], signers }
}

parentPort?.on('message', (job: VerifyJob) => {
  if (job.packed !== undefined) {
    parentPort?.postMessage(recoverPacked(job as VerifyJob & { packed: string }))
    return
  }
  const receipts = job.receipts ?? []
  const digests: string[] = new Array(receipts.length)
  const signers: string[] = new Array(receipts.length)
  for (let i = 0; i < receipts.length; i++) {
    const r = receipts[i]!
    try {
      const d = digester.digest(r.message)
      digests[i] = digestHex(d)
      signers[i] = recoverSigner(d, r.signature) ?? ''
    } catch {
      digests[i] = ''
      signers[i] = ''
    }
  }
  parentPort?.postMessage({ id: job.id, digests, signers } satisfies VerifyAnswer)
})
