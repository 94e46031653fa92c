/**
 * Epoch settlement (docs/economics.md): once an epoch's submission window has closed,
 * the settler loads its receipts, verifies every client signature in worker threads,
 * applies the rules (`computeSettlement`), prices bytes per publisher, caps by escrow,
 * builds the cumulative payout tree and writes it all in one transaction (state
 * `built`). Every account keeps its leaf index for ever (the distributor remembers
 * what each index has claimed): the tree lists the previous epoch's accounts first, in
 * their order, then the new ones. With a chain it then posts the root in one
 * `postRoot` (`posted` with the transaction hash, then `confirmed`), after covering the
 * new indexes in `cover` transactions of `COVER_CHUNK` accounts when there are more
 * than one `postRoot` should write (a restart resumes from the distributor's count). Crash-safe: every step starts from the stored
 * state, and before (re)posting the settler reads the distributor's epoch and root, so a
 * restart mid-way never posts, nor debits, twice.
 */
import { buildPayoutTree, type PayoutTree } from '@shoal/contracts'
import { ConflictError, decodeNodeRecord, NotFoundError } from '@shoal/protocol'
import type { Logger } from 'pino'
import { type Address, getAddress, type Hex } from 'viem'
import { epochAt, epochInfo } from '../epochs/epochs.ts'
import type { ReceiptVerifier } from '../receipts/verifier.ts'
import type { EpochRow, StoreCallOptions, TrackerStore } from '../store/types.ts'
import type { SettlementChain } from './chain.ts'
import { computeSettlement, type SettleNode } from './compute.ts'

export interface SettlerInit {
  epochSeconds: number
  submitWindowSeconds: number
  /** Token base units per GiB delivered, unless `prices` names the publisher. */
  defaultPricePerGiB: bigint
  prices?: ReadonlyMap<string, bigint>
  maxClientFanout: number
  /** How often the settler looks for epochs to settle (ms); 0: only when asked. */
  intervalMs: number
  /** New leaf indexes covered per `cover` transaction (default `COVER_CHUNK`). */
  coverChunk?: number
}

export interface SettlerComponents {
  store: TrackerStore
  verifier: ReceiptVerifier
  clock: () => number
  chain?: SettlementChain
  logger?: Logger
  /** Writes state held in memory that settlement reads (the tracker's pending selections). */
  flush?: () => Promise<unknown>
}

export interface Settler {
  /** Settles (builds, then posts when there is a chain) epoch `n`; resumes where a crash left it. */
  settle(epoch: number, options?: StoreCallOptions): Promise<EpochRow>
  /** Settles every epoch whose window closed and that has receipts, oldest first. */
  settleDue(options?: StoreCallOptions): Promise<EpochRow[]>
  /** The public view of a settled epoch (`GET /v1/epochs/<n>`). */
  view(epoch: number, options?: StoreCallOptions): Promise<Record<string, unknown>>
  /** The payout proof of `address` in epoch `n`. */
  proof(epoch: number, address: string, options?: StoreCallOptions): Promise<Record<string, unknown>>
  start(): void
  stop(): Promise<void>
}

interface TreeJson {
  /** `[account, cumulative amount]` in leaf-index order. */
  entries: [string, string][]
}

/**
 * New leaf indexes the settler covers per transaction: each pair is one claimed word
 * written from zero (22,100 gas), so 1,000 accounts cost ~11.1M gas, well inside a block.
 */
export const COVER_CHUNK = 1_000

export function createSettler(init: SettlerInit, components: SettlerComponents): Settler {
  const { store, verifier, clock, chain, logger } = components
  const trees = new Map<number, PayoutTree>()
  let timer: NodeJS.Timeout | undefined
  let running: Promise<unknown> | undefined

  const treeOf = (row: EpochRow): PayoutTree | undefined => {
    if (row.tree === undefined) return undefined
    let tree = trees.get(row.epoch)
    if (tree === undefined) {
      const json = JSON.parse(row.tree) as TreeJson
      tree = buildPayoutTree(json.entries.map(([account, amount]) => ({ account, amount: BigInt(amount) })))
      if (trees.size >= 8) trees.delete(trees.keys().next().value as number)
      trees.set(row.epoch, tree)
    }
    return tree
  }

  const build = async (epoch: number, options?: StoreCallOptions): Promise<EpochRow> => {
    const now = clock()
    const { endsAt } = epochInfo(epoch, init.epochSeconds)
    if (now / 1000 <= endsAt + init.submitWindowSeconds) {
      throw new ConflictError(`epoch ${epoch}: its submission window has not closed`)
    }
    const previousRow = await store.getLatestPaidEpoch(options)
    if (previousRow !== undefined && previousRow.epoch >= epoch) {
      throw new ConflictError(`epoch ${epoch} is before the last paid epoch ${previousRow.epoch}`)
    }
    if (previousRow !== undefined && chain !== undefined && previousRow.state !== 'confirmed') {
      await post(previousRow, options)
    }
    await components.flush?.()
    const receipts = await store.listEpochReceipts(epoch, options)
    const started = performance.now()
    // the digests were computed by this tracker from the validated receipts at submission
    const signers = await verifier.recover(receipts)
    const verifySeconds = (performance.now() - started) / 1000
    const ticketIds = [...new Set(receipts.map((r) => r.ticket))]
    const tickets = new Map((await store.getTickets(ticketIds, options)).map((t) => [t.id, t]))
    const selected = new Set(
      (await store.listSelectionsOf(ticketIds, options)).map((s) => s.ticket + s.node.toLowerCase()),
    )
    const nodes = new Map<string, SettleNode>()
    for (let after: string | undefined, first = true; first || after !== undefined; first = false) {
      const page = await store.listNodes(
        { ...(after !== undefined ? { after } : {}), limit: 10_000 },
        options,
      )
      for (const { node } of page.nodes) {
        const record = decodeNodeRecord(node.record).message
        nodes.set(node.address.toLowerCase(), {
          node: node.address.toLowerCase(),
          payout: record.payout.toLowerCase(),
          capacity: node.capacity,
        })
      }
      after = page.next
    }
    const publishers = new Set<string>()
    for (const t of tickets.values()) if (t.publisher !== undefined) publishers.add(t.publisher.toLowerCase())
    let escrow: Map<string, bigint> | undefined
    if (chain !== undefined) {
      escrow = new Map()
      for (const p of publishers) escrow.set(p, await chain.escrowBalance(getAddress(p)))
    }
    const previous = new Map<string, bigint>()
    const previousTree = previousRow !== undefined ? treeOf(previousRow) : undefined
    for (const e of previousTree?.entries ?? []) previous.set(e.account.toLowerCase(), e.amount)

    const result = computeSettlement({
      epoch,
      epochSeconds: init.epochSeconds,
      receipts,
      signers,
      tickets,
      selected,
      nodes,
      ticketUsage: await store.getTicketUsage(ticketIds, options),
      ...(escrow !== undefined ? { escrow } : {}),
      ...(init.prices !== undefined ? { prices: init.prices } : {}),
      defaultPricePerGiB: init.defaultPricePerGiB,
      maxClientFanout: init.maxClientFanout,
      previous,
    })
    let total = 0n
    for (const d of result.debits.values()) total += d
    // `cumulative` starts from `previous` (a Map keeps insertion order): every account
    // paid before keeps its index, and new ones are appended.
    const entries = [...result.cumulative].filter(([, a]) => a > 0n)
    const kept = [...previous.keys()]
    if (kept.some((account, i) => entries[i]?.[0].toLowerCase() !== account)) {
      throw new ConflictError(`epoch ${epoch}: the payout tree would move an account to another leaf index`)
    }
    const tree =
      total > 0n ? buildPayoutTree(entries.map(([account, amount]) => ({ account, amount }))) : undefined
    const at = clock()
    const row: EpochRow = {
      epoch,
      state: tree === undefined ? 'empty' : 'built',
      root: tree?.root,
      total: total.toString(),
      debits: JSON.stringify({
        publishers: [...result.debits.keys()].map((p) => getAddress(p)),
        amounts: [...result.debits.values()].map(String),
      }),
      tree:
        tree === undefined
          ? undefined
          : JSON.stringify({
              entries: tree.entries.map((e) => [e.account, e.amount.toString()]),
            } satisfies TreeJson),
      report: JSON.stringify({ ...result.report, verifySeconds: Number(verifySeconds.toFixed(3)) }),
      builtAt: at,
      updatedAt: at,
    }
    await store.putEpochSettlement(
      row,
      result.verdicts,
      tree === undefined ? [] : result.ticketBytes,
      options,
    )
    logger?.info(
      {
        epoch,
        state: row.state,
        receipts: receipts.length,
        paid: result.report.paidReceipts,
        total: row.total,
      },
      'epoch settled',
    )
    return row
  }

  const post = async (row: EpochRow, options?: StoreCallOptions): Promise<EpochRow> => {
    if (chain === undefined || row.state === 'empty' || row.state === 'confirmed') return row
    const root = row.root as Hex
    const confirm = async (txHash?: string): Promise<EpochRow> => {
      const at = clock()
      await store.setEpochState(row.epoch, 'confirmed', txHash, at, options)
      logger?.info({ epoch: row.epoch, root }, 'epoch root confirmed on chain')
      return { ...row, state: 'confirmed', ...(txHash !== undefined ? { txHash } : {}), updatedAt: at }
    }
    const onChain = await chain.posted()
    if (onChain.epoch === row.epoch && onChain.root.toLowerCase() === root.toLowerCase()) return confirm()
    if (row.state === 'posted' && row.txHash !== undefined) {
      const outcome = await chain.outcome(row.txHash as Hex)
      if (outcome === 'success') return confirm()
    }
    if (onChain.epoch >= row.epoch && onChain.root !== `0x${'0'.repeat(64)}`) {
      throw new ConflictError(
        `the distributor is at epoch ${onChain.epoch}: epoch ${row.epoch} cannot be posted`,
      )
    }
    const debits = JSON.parse(row.debits) as { publishers: Address[]; amounts: string[] }
    const accounts = treeOf(row)?.accounts ?? 0
    if (accounts < onChain.accounts) {
      // Another store's accounts hold these indexes: posting would pay against their claims.
      throw new ConflictError(
        `the distributor already covers ${onChain.accounts} leaf indexes and epoch ${row.epoch}'s tree has ${accounts}: a distributor serves one settlement store`,
      )
    }
    // Many new accounts: cover their indexes ahead, a chunk per transaction (a restart
    // resumes from what the chain says is covered).
    const chunk = init.coverChunk ?? COVER_CHUNK
    for (let covered = onChain.accounts; accounts - covered > chunk; ) {
      covered += chunk
      const coverTx = await chain.cover(covered)
      const covering = await chain.outcome(coverTx)
      if (covering !== 'success')
        throw new ConflictError(`cover(${covered}) before epoch ${row.epoch} ${covering}`)
      logger?.info({ epoch: row.epoch, covered, txHash: coverTx }, 'leaf indexes covered')
    }
    const txHash = await chain.postRoot({
      epoch: row.epoch,
      root,
      total: BigInt(row.total),
      accounts,
      publishers: debits.publishers,
      amounts: debits.amounts.map(BigInt),
    })
    await store.setEpochState(row.epoch, 'posted', txHash, clock(), options)
    logger?.info({ epoch: row.epoch, root, txHash }, 'epoch root posted')
    const outcome = await chain.outcome(txHash)
    if (outcome !== 'success') throw new ConflictError(`postRoot of epoch ${row.epoch} ${outcome}`)
    return confirm(txHash)
  }

  const settle = async (epoch: number, options?: StoreCallOptions): Promise<EpochRow> => {
    const held = await store.getEpoch(epoch, options)
    return post(held ?? (await build(epoch, options)), options)
  }

  const settleDue = async (options?: StoreCallOptions): Promise<EpochRow[]> => {
    const now = clock()
    const through = epochAt(now - init.submitWindowSeconds * 1000, init.epochSeconds) - 1
    const out: EpochRow[] = []
    const latest = await store.getLatestPaidEpoch(options)
    if (latest !== undefined && latest.state !== 'confirmed') out.push(await post(latest, options))
    for (const e of await store.listUnsettledEpochs(through, options)) {
      if (latest !== undefined && e <= latest.epoch) continue
      out.push(await settle(e, options))
    }
    return out
  }

  const rowOf = async (epoch: number, options?: StoreCallOptions): Promise<EpochRow> => {
    const row = await store.getEpoch(epoch, options)
    if (row === undefined) throw new NotFoundError(`epoch ${epoch} is not settled`)
    return row
  }

  return {
    settle,
    settleDue,
    async view(epoch, options) {
      const row = await rowOf(epoch, options)
      const tree = treeOf(row)
      return {
        epoch: row.epoch,
        state: row.state,
        root: row.root ?? null,
        total: row.total,
        debits: JSON.parse(row.debits),
        txHash: row.txHash ?? null,
        accounts: tree?.entries.length ?? 0,
        cumulativeTotal: (tree?.total ?? 0n).toString(),
        report: JSON.parse(row.report),
        builtAt: row.builtAt,
      }
    },
    async proof(epoch, address, options) {
      const row = await rowOf(epoch, options)
      const tree = treeOf(row)
      const amount = tree?.amountOf(address)
      if (tree === undefined || amount === undefined) {
        throw new NotFoundError(`${address} has no payout in epoch ${epoch}`)
      }
      return {
        epoch: row.epoch,
        state: row.state,
        root: tree.root,
        index: tree.indexOf(address),
        account: getAddress(address),
        amount: amount.toString(),
        proof: tree.proofFor(address),
      }
    },
    start() {
      if (init.intervalMs <= 0 || timer !== undefined) return
      timer = setInterval(() => {
        if (running !== undefined) return
        running = settleDue()
          .catch((err: unknown) =>
            logger?.error({ err: (err as Error).message }, 'settlement failed; will retry'),
          )
          .finally(() => {
            running = undefined
          })
      }, init.intervalMs)
      timer.unref()
    },
    async stop() {
      if (timer !== undefined) clearInterval(timer)
      timer = undefined
      await running
      await verifier.close()
    },
  }
}
