/**
 * The settlement seam of the simulation. The simulation hands settlement every delivery
 * and, at each epoch boundary, whatever attackers fabricated, and reads payouts back,
 * split into what paid real delivery and what paid fabricated claims. The tracker's real
 * settlement is plugged in by `trackerSettlement` (tracker-settlement.ts); the figures
 * `honest_paid_share`, `fabricated_paid_share` and the Gini of honest payouts come out of
 * the same run (docs/simulation.md, "Settlement").
 */

/** One delivery as settlement sees it: a receipt's worth of bytes from a node to a client. */
export interface Delivery {
  /** Simulated time (ms since the run's start). */
  time: number
  epoch: number
  /** The node's address (0x-hex), as in receipts. */
  node: string
  /** Client number (0..clients−1); attackers may use their own numbers. */
  client: number
  bytes: number
  /** Bytes really delivered (`true`), or claimed without delivery (`false`, attackers only). */
  delivered: boolean
  /** The nodes the tracker selected for the client's request (settlement pays only those). */
  selected?: readonly string[]
  /** For fabricated claims: which attack of the settlement attack simulation made it. */
  attack?: Attack
  /** `inflate`: the bytes the client really signed for (the claim reports more). */
  signedBytes?: number
  /** `replay`: the real delivery whose receipt is submitted again. */
  replayOf?: Delivery
}

/**
 * The attacks of tracker/test/settlement-attack.test.ts: a forged byte count (`inflate`),
 * a receipt submitted again (`replay`), a node's own second node as its client
 * (`self-deal`), clients the tracker never sent to the node (`sybil`), and receipts the
 * node signs itself on a made-up ticket (`garbage`).
 */
export type Attack = 'inflate' | 'replay' | 'self-deal' | 'sybil' | 'garbage'

/** What settlement paid a node for an epoch: for real delivery, and for fabricated claims. */
export interface NodePayout {
  delivered: number
  fabricated: number
}

/** What the simulation tells settlement; everything it needs to settle an epoch. */
export interface SettlementModel {
  /** Every delivery and every fabricated claim, in time order. */
  onDelivery(delivery: Delivery): void
  /** An epoch ended: settle it and return what each node address is paid for it. */
  onEpoch(epoch: number, time: number): ReadonlyMap<string, NodePayout>
}

/** Attackers: nodes or clients that claim bytes they never delivered. */
export interface AttackerModel {
  /** Node addresses run by attackers (their real deliveries still count as honest). */
  readonly nodes: ReadonlySet<string>
  /** Claims fabricated during an epoch, handed to settlement before it settles. */
  fabricate(epoch: number, time: number, honest: readonly Delivery[]): Delivery[]
}

export interface SettlementFigures {
  /** Share of all payouts that went to bytes really delivered (by any node). */
  honestPaidShare: number
  /** Share of all payouts that went to nodes that are not attackers. */
  honestNodesPaidShare: number
  /** Share of all payouts that went to fabricated bytes. */
  fabricatedPaidShare: number
  /** Gini coefficient of payout per delivered byte across honest nodes (0 = fair). */
  honestGini: number
  paidTotal: number
  /** Bytes really delivered, and bytes claimed without delivery, over the run. */
  deliveredBytes: number
  fabricatedBytes: number
  epochs: number
}

/** Gini coefficient of non-negative values (0 all equal, → 1 one holds all). */
export function gini(values: readonly number[]): number {
  const n = values.length
  if (n === 0) return 0
  const sorted = [...values].sort((a, b) => a - b)
  let sum = 0
  let weighted = 0
  for (let i = 0; i < n; i++) {
    sum += sorted[i]!
    weighted += (i + 1) * sorted[i]!
  }
  return sum === 0 ? 0 : (2 * weighted) / (n * sum) - (n + 1) / n
}

/**
 * Runs settlement over the run's deliveries and attackers' claims and sums the payouts,
 * as the model splits them between real delivery and fabrication.
 */
export class SettlementLedger {
  readonly #model: SettlementModel
  readonly #attackers: AttackerModel | undefined
  #epochDeliveries: Delivery[] = []
  #honestPaid = 0
  #honestNodesPaid = 0
  #fabricatedPaid = 0
  #paidTotal = 0
  #deliveredBytes = 0
  #fabricatedBytes = 0
  #epochs = 0
  readonly #perNode = new Map<string, { paid: number; delivered: number }>()

  constructor(model: SettlementModel, attackers?: AttackerModel) {
    this.#model = model
    this.#attackers = attackers
  }

  deliver(d: Delivery): void {
    this.#epochDeliveries.push(d)
    this.#count(d)
    this.#model.onDelivery(d)
  }

  #count(d: Delivery): void {
    if (!d.delivered) {
      this.#fabricatedBytes += d.bytes
      return
    }
    this.#deliveredBytes += d.bytes
    const n = this.#perNode.get(d.node) ?? { paid: 0, delivered: 0 }
    n.delivered += d.bytes
    this.#perNode.set(d.node, n)
  }

  endEpoch(epoch: number, time: number): void {
    for (const f of this.#attackers?.fabricate(epoch, time, this.#epochDeliveries) ?? []) {
      this.#count(f)
      this.#model.onDelivery(f)
    }
    for (const [node, p] of this.#model.onEpoch(epoch, time)) {
      const amount = p.delivered + p.fabricated
      this.#paidTotal += amount
      this.#honestPaid += p.delivered
      this.#fabricatedPaid += p.fabricated
      if (!(this.#attackers?.nodes.has(node) ?? false)) this.#honestNodesPaid += amount
      const n = this.#perNode.get(node) ?? { paid: 0, delivered: 0 }
      n.paid += amount
      this.#perNode.set(node, n)
    }
    this.#epochDeliveries = []
    this.#epochs++
  }

  figures(): SettlementFigures {
    const rates: number[] = []
    for (const [node, n] of this.#perNode) {
      if (this.#attackers?.nodes.has(node) === true || n.delivered === 0) continue
      rates.push(n.paid / n.delivered)
    }
    const total = this.#paidTotal
    return {
      honestPaidShare: total === 0 ? 0 : this.#honestPaid / total,
      honestNodesPaidShare: total === 0 ? 0 : this.#honestNodesPaid / total,
      fabricatedPaidShare: total === 0 ? 0 : this.#fabricatedPaid / total,
      honestGini: gini(rates),
      paidTotal: total,
      deliveredBytes: this.#deliveredBytes,
      fabricatedBytes: this.#fabricatedBytes,
      epochs: this.#epochs,
    }
  }
}

/**
 * A stand-in settlement that pays every claim at a flat price per byte, with no fraud
 * rules: what the real settlement must beat. It shows the seam works end to end, and
 * that without fraud rules fabricated claims get paid.
 */
export function payPerByteSettlement(pricePerByte = 1): SettlementModel {
  let claims = new Map<string, NodePayout>()
  return {
    onDelivery(d) {
      const c = claims.get(d.node) ?? { delivered: 0, fabricated: 0 }
      if (d.delivered) c.delivered += d.bytes * pricePerByte
      else c.fabricated += d.bytes * pricePerByte
      claims.set(d.node, c)
    },
    onEpoch() {
      const out = claims
      claims = new Map()
      return out
    },
  }
}
