/**
 * Turns the receipt book into payment: once an epoch has ended (and a little more, so
 * clients' last receipts are in), the node signs its receipts of that epoch as one
 * `ReceiptBatch` and submits it to the tracker (`POST /v1/receipts`), then marks the
 * epoch submitted. A submission the tracker answered is never sent twice; one that
 * failed to reach it is retried on the next round (resubmitting is idempotent on the
 * tracker, so a crash between the answer and the mark costs nothing).
 */
import { isShoalError, type RecordSigner } from '@shoal/protocol'
import { type BatchResult, submitReceiptBatch } from '@shoal/tracker/client'
import type { Logger } from 'pino'
import type { ReceiptBook } from './book.ts'

export interface ReceiptSubmitterInit {
  trackerUrl: string
  epochSeconds: number
  /** Wait after an epoch ends before submitting it (s). Default a fifth of an epoch, at most 10 s. */
  graceSeconds?: number
  /** How often to look for epochs to submit (ms). Default a fifth of an epoch, at most 30 s. */
  intervalMs?: number
}

export interface ReceiptSubmitter {
  /** Submits every ended epoch now; resolves with what the tracker answered. */
  submitDue(): Promise<{ epoch: number; result: BatchResult }[]>
  start(): void
  stop(): Promise<void>
}

/**
 * @example
 * const submitter = createReceiptSubmitter({ trackerUrl, epochSeconds: 3600 }, { book: node.receipts, account, logger })
 * submitter.start()
 */
export function createReceiptSubmitter(
  init: ReceiptSubmitterInit,
  components: { book: ReceiptBook; account: RecordSigner; logger: Logger; clock?: () => number },
): ReceiptSubmitter {
  const { book, account, logger } = components
  const clock = components.clock ?? Date.now
  const grace = init.graceSeconds ?? Math.min(10, Math.ceil(init.epochSeconds / 5))
  const interval = init.intervalMs ?? Math.min(30_000, init.epochSeconds * 200)
  const stopController = new AbortController()
  let timer: NodeJS.Timeout | undefined
  let running: Promise<unknown> | undefined

  const submitDue = async () => {
    const nowSeconds = Math.floor(clock() / 1000)
    const done: { epoch: number; result: BatchResult }[] = []
    for (const epoch of book.pendingEpochs()) {
      if ((epoch + 1) * init.epochSeconds + grace > nowSeconds) break
      const { receipts } = book.epoch(epoch)
      try {
        const result = await submitReceiptBatch({
          trackerUrl: init.trackerUrl,
          account,
          epoch,
          receipts,
          signal: stopController.signal,
        })
        book.markSubmitted(epoch)
        logger.info({ epoch, receipts: receipts.length, result }, 'receipts submitted for settlement')
        done.push({ epoch, result })
      } catch (err) {
        if (stopController.signal.aborted) break
        // the tracker refused the batch as a whole (window closed, not ours…): it will not
        // change its mind, so stop offering it; anything else is retried next round
        const refused =
          isShoalError(err) && !['SHOAL_ERR_UNAVAILABLE', 'SHOAL_ERR_RATE_LIMITED'].includes(err.code)
        logger[refused ? 'error' : 'warn'](
          { epoch, err: (err as Error).message },
          'receipt submission failed',
        )
        if (refused) book.markSubmitted(epoch)
        else break
      }
    }
    return done
  }

  const tick = () => {
    running = submitDue()
      .catch((err: unknown) =>
        logger.warn({ err: (err as Error).message }, 'receipt submission round failed'),
      )
      .finally(() => {
        running = undefined
        if (!stopController.signal.aborted) {
          timer = setTimeout(tick, interval)
          timer.unref()
        }
      })
  }

  return {
    submitDue,
    start() {
      if (timer !== undefined || running !== undefined) return
      tick()
    },
    async stop() {
      stopController.abort()
      if (timer !== undefined) clearTimeout(timer)
      await running
    },
  }
}
