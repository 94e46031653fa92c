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
  receipts: { message: BandwidthReceipt; signature: string }[]
}

export interface VerifyAnswer {
  id: number
  digests: string[]
  signers: string[]
}

const digester = createReceiptDigester()

parentPort?.on('message', (job: VerifyJob) => {
  const digests: string[] = new Array(job.receipts.length)
  const signers: string[] = new Array(job.receipts.length)
  for (let i = 0; i < job.receipts.length; i++) {
    const r = job.receipts[i]!
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
