/**
 * The settlement rules of one epoch as a pure function (docs/economics.md): from the
 * stored receipts, the recovered signers, the tickets, selections, nodes and escrow
 * balances, decide what each receipt earns, what each publisher pays and what each
 * payout address is owed. No I/O: the settler gathers the inputs and writes the result.
 */
import type { ReceiptRow, TicketRow } from '../store/types.ts'
import { REJECT } from './reasons.ts'

const GIB = 2n ** 30n

export interface SettleNode {
  /** Lowercase node key. */
  node: string
  /** Lowercase payout address. */
  payout: string
  /** Egress bytes/s the node's record offers (its probed capacity). */
  capacity: number
}

export interface ComputeInput {
  epoch: number
  epochSeconds: number
  receipts: readonly ReceiptRow[]
  /** Lowercase recovered signer per receipt (`''` when none), same order. */
  signers: readonly string[]
  /** Tickets by id. */
  tickets: ReadonlyMap<string, TicketRow>
  /** `ticket + lowercase node` of every selection. */
  selected: ReadonlySet<string>
  /** Registered nodes by lowercase key. */
  nodes: ReadonlyMap<string, SettleNode>
  /** Bytes earlier epochs paid per ticket. */
  ticketUsage: ReadonlyMap<string, number>
  /** Escrow balance per lowercase publisher; a publisher absent here has no cap. */
  escrow?: ReadonlyMap<string, bigint>
  /** Price per GiB per lowercase publisher (token base units); else `defaultPricePerGiB`. */
  prices?: ReadonlyMap<string, bigint>
  defaultPricePerGiB: bigint
  /** A client paying more than this many nodes in one epoch is not a real client. */
  maxClientFanout: number
  /** Cumulative amounts of the last paid epoch, by lowercase payout address. */
  previous: ReadonlyMap<string, bigint>
}

export interface ComputeResult {
  /** Why each refused receipt earns nothing (receipts not listed earn their bytes). */
  verdicts: { batch: string; index: number; reason: string }[]
  /** Bytes each paid receipt's ticket now used, per ticket. */
  ticketBytes: { ticket: string; bytes: number }[]
  /** What each publisher is debited (lowercase → base units), only non-zero ones. */
  debits: Map<string, bigint>
  /** New cumulative amount per payout address (every address ever paid). */
  cumulative: Map<string, bigint>
  report: {
    receipts: number
    paidReceipts: number
    paidBytes: number
    byReason: Record<string, number>
    /** Bytes cut because a node claimed more than its capacity allows in the epoch. */
    overCapacityBytes: number
    /** Bytes cut because a ticket's budget ran out. */
    overBudgetBytes: number
    /** Publishers whose escrow could not cover what they owed (paid pro rata). */
    shortPublishers: string[]
    perNode: Record<string, { bytes: number; amount: string }>
  }
}

/**
 * @example
 * const result = computeSettlement({ epoch, epochSeconds: 3600, receipts, signers, tickets, selected, nodes,
 *   ticketUsage, defaultPricePerGiB: 10n ** 16n, maxClientFanout: 32, previous })
 */
export function computeSettlement(input: ComputeInput): ComputeResult {
  const { receipts, signers, tickets, selected, nodes } = input
  const verdicts: ComputeResult['verdicts'] = []
  const byReason: Record<string, number> = {}
  const reject = (r: ReceiptRow, reason: string) => {
    verdicts.push({ batch: r.batch, index: r.index, reason })
    byReason[reason] = (byReason[reason] ?? 0) + 1
  }
  const epochStart = input.epoch * input.epochSeconds

  // 1. per receipt: signature, ticket, selection, one party on both sides
  const nodeKeys = new Set(nodes.keys())
  const payoutOwners = new Map<string, string>() // payout → node keys sharing it (any)
  for (const n of nodes.values()) payoutOwners.set(n.payout, n.node)
  const latest = new Map<string, number>() // node+session → receipt position
  for (let i = 0; i < receipts.length; i++) {
    const r = receipts[i]!
    const client = r.client.toLowerCase()
    const nodeKey = r.node.toLowerCase()
    const ticket = tickets.get(r.ticket)
    const node = nodes.get(nodeKey)
    if (signers[i] !== client) reject(r, REJECT.badSignature)
    else if (ticket === undefined || ticket.publisher === undefined || node === undefined)
      reject(r, REJECT.unknownTicket)
    else if (epochStart > ticket.expiry) reject(r, REJECT.expiredTicket)
    else if (client === nodeKey || client === node.payout || nodeKeys.has(client) || payoutOwners.has(client))
      reject(r, REJECT.selfDealing)
    else if (!selected.has(r.ticket + nodeKey)) reject(r, REJECT.notSelected)
    else {
      const key = nodeKey + r.session
      const held = latest.get(key)
      if (held === undefined) latest.set(key, i)
      else if (receipts[held]!.bytes >= r.bytes) reject(r, REJECT.superseded)
      else {
        reject(receipts[held]!, REJECT.superseded)
        latest.set(key, i)
      }
    }
  }

  // 2. implausible fan-out: a client paying too many nodes in one epoch
  const fanout = new Map<string, Set<string>>()
  for (const i of latest.values()) {
    const r = receipts[i]!
    const c = r.client.toLowerCase()
    const set = fanout.get(c) ?? new Set<string>()
    fanout.set(c, set)
    set.add(r.node.toLowerCase())
  }
  const kept: number[] = []
  for (const i of latest.values()) {
    const r = receipts[i]!
    if (fanout.get(r.client.toLowerCase())!.size > input.maxClientFanout) reject(r, REJECT.fanout)
    else kept.push(i)
  }

  // 3. ticket budgets across all epochs: pro rata when this epoch would overrun one
  const wanted = new Map<string, number>()
  for (const i of kept)
    wanted.set(receipts[i]!.ticket, (wanted.get(receipts[i]!.ticket) ?? 0) + receipts[i]!.bytes)
  const paidBytes = new Map<number, number>()
  let overBudgetBytes = 0
  const ticketBytes: ComputeResult['ticketBytes'] = []
  const ticketPaid = new Map<string, number>()
  for (const i of kept) {
    const r = receipts[i]!
    const t = tickets.get(r.ticket)!
    const remaining = Math.max(0, t.budget - (input.ticketUsage.get(r.ticket) ?? 0))
    const want = wanted.get(r.ticket)!
    const bytes = want <= remaining ? r.bytes : Math.floor((r.bytes * remaining) / want)
    overBudgetBytes += r.bytes - bytes
    paidBytes.set(i, bytes)
    ticketPaid.set(r.ticket, (ticketPaid.get(r.ticket) ?? 0) + bytes)
  }
  for (const [ticket, bytes] of ticketPaid) if (bytes > 0) ticketBytes.push({ ticket, bytes })

  // 4. capacity: a node is paid at most capacity × epoch length bytes
  const nodeBytes = new Map<string, number>()
  for (const i of kept) {
    const n = receipts[i]!.node.toLowerCase()
    nodeBytes.set(n, (nodeBytes.get(n) ?? 0) + paidBytes.get(i)!)
  }
  let overCapacityBytes = 0
  for (const i of kept) {
    const n = receipts[i]!.node.toLowerCase()
    const cap = nodes.get(n)!.capacity * input.epochSeconds
    const total = nodeBytes.get(n)!
    if (total > cap) {
      const b = paidBytes.get(i)!
      const cut = Math.floor((b * cap) / total)
      overCapacityBytes += b - cut
      paidBytes.set(i, cut)
    }
  }

  // 5. price per publisher: amount owed per (publisher, node), capped by escrow pro rata
  const owed = new Map<string, Map<string, bigint>>() // publisher → node → amount
  for (const i of kept) {
    const r = receipts[i]!
    const publisher = tickets.get(r.ticket)!.publisher!.toLowerCase()
    const price = input.prices?.get(publisher) ?? input.defaultPricePerGiB
    const amount = (BigInt(paidBytes.get(i)!) * price) / GIB
    const m = owed.get(publisher) ?? new Map<string, bigint>()
    owed.set(publisher, m)
    const n = r.node.toLowerCase()
    m.set(n, (m.get(n) ?? 0n) + amount)
  }
  const debits = new Map<string, bigint>()
  const earned = new Map<string, bigint>() // node → amount
  const shortPublishers: string[] = []
  for (const [publisher, perNode] of owed) {
    let due = 0n
    for (const a of perNode.values()) due += a
    const balance = input.escrow?.get(publisher)
    const short = balance !== undefined && balance < due
    if (short) shortPublishers.push(publisher)
    let debit = 0n
    for (const [n, a] of perNode) {
      const pay = short ? (a * balance) / due : a
      debit += pay
      earned.set(n, (earned.get(n) ?? 0n) + pay)
    }
    if (debit > 0n) debits.set(publisher, debit)
  }

  // 6. cumulative amounts per payout address
  const cumulative = new Map(input.previous)
  const perNode: ComputeResult['report']['perNode'] = {}
  for (const [n, amount] of earned) {
    const payout = nodes.get(n)!.payout
    cumulative.set(payout, (cumulative.get(payout) ?? 0n) + amount)
    perNode[n] = { bytes: nodeBytes.get(n) ?? 0, amount: amount.toString() }
  }

  let paid = 0
  let paidTotal = 0
  for (const i of kept) {
    if (paidBytes.get(i)! > 0) paid++
    paidTotal += paidBytes.get(i)!
  }
  return {
    verdicts,
    ticketBytes,
    debits,
    cumulative,
    report: {
      receipts: receipts.length,
      paidReceipts: paid,
      paidBytes: paidTotal,
      byReason,
      overCapacityBytes,
      overBudgetBytes,
      shortPublishers,
      perNode,
    },
  }
}
