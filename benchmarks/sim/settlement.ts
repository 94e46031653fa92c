/**
 * The settlement seam of the simulation. Settlement (receipts → fraud rules → payouts)
 * is being written on another branch; the simulation hands it every delivery and, at
 * each epoch boundary, whatever attackers fabricated, and reads payouts back. When the
 * real code lands, `tracker`'s settlement is wrapped as a `SettlementModel` (see
 * docs/simulation.md, "Plugging in settlement") and the figures `honest_paid_share`,
 * `fabricated_paid_share` and the Gini of honest payouts come out of the same run.
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
}

/** What the simulation tells settlement; everything it needs to settle an epoch. */
export interface SettlementModel {
  /** Every delivery and every fabricated claim, in time order. */
  onDelivery(delivery: Delivery): void
  /** An epoch ended: settle it and return what each node address is paid for it. */
  onEpoch(epoch: number, time: number): ReadonlyMap<string, number>
}

/** Attackers: nodes or clients that claim bytes they never delivered. */
export interface AttackerModel {
  /** Node addresses run by attackers (their real deliveries still count as honest). */
  readonly nodes: ReadonlySet<string>
  /** Claims fabricated during an epoch, handed to settlement before it settles. */
  fabricate(epoch: number, time: number, honest: readonly Delivery[]): Delivery[]
}

export interface SettlementFigures {
  /** Share of all payouts that went to bytes really delivered by honest nodes. */
  honestPaidShare: number
  /** Share of all payouts that went to fabricated bytes. */
  fabricatedPaidShare: number
  /** Gini coefficient of payout per delivered byte across honest nodes (0 = fair). */
  honestGini: number
  paidTotal: number
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
 * Runs settlement over the run's deliveries and attackers' claims and sums the payouts.
 * Payout to a node is attributed to honest delivery in proportion to the bytes it really
 * delivered in that epoch, the rest to fabrication.
 */
export class SettlementLedger {
  readonly #model: SettlementModel
  readonly #attackers: AttackerModel | undefined
  #epochDeliveries: Delivery[] = []
  #epochClaimed = new Map<string, { delivered: number; fabricated: number }>()
  #honestPaid = 0
  #fabricatedPaid = 0
  #paidTotal = 0
  #epochs = 0
  readonly #perNode = new Map<string, { paid: number; delivered: number }>()

  constructor(model: SettlementModel, attackers?: AttackerModel) {
    this.#model = model
    this.#attackers = attackers
  }

  deliver(d: Delivery): void {
    this.#epochDeliveries.push(d)
    this.#claim(d)
    this.#model.onDelivery(d)
  }

  #claim(d: Delivery): void {
    let c = this.#epochClaimed.get(d.node)
    if (c === undefined) {
      c = { delivered: 0, fabricated: 0 }
      this.#epochClaimed.set(d.node, c)
    }
    if (d.delivered) c.delivered += d.bytes
    else c.fabricated += d.bytes
  }

  endEpoch(epoch: number, time: number): void {
    for (const f of this.#attackers?.fabricate(epoch, time, this.#epochDeliveries) ?? []) {
      this.#claim(f)
      this.#model.onDelivery(f)
    }
    const payouts = this.#model.onEpoch(epoch, time)
    for (const [node, amount] of payouts) {
      const c = this.#epochClaimed.get(node) ?? { delivered: 0, fabricated: 0 }
      const claimed = c.delivered + c.fabricated
      const honestPart = claimed === 0 ? 0 : (amount * c.delivered) / claimed
      this.#paidTotal += amount
      this.#fabricatedPaid += amount - honestPart
      if (!(this.#attackers?.nodes.has(node) ?? false)) this.#honestPaid += honestPart
      const n = this.#perNode.get(node) ?? { paid: 0, delivered: 0 }
      n.paid += amount
      this.#perNode.set(node, n)
    }
    for (const [node, c] of this.#epochClaimed) {
      const n = this.#perNode.get(node) ?? { paid: 0, delivered: 0 }
      n.delivered += c.delivered
      this.#perNode.set(node, n)
    }
    this.#epochDeliveries = []
    this.#epochClaimed = new Map()
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
      fabricatedPaidShare: total === 0 ? 0 : this.#fabricatedPaid / total,
      honestGini: gini(rates),
      paidTotal: total,
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
  let claims = new Map<string, number>()
  return {
    onDelivery(d) {
      claims.set(d.node, (claims.get(d.node) ?? 0) + d.bytes * pricePerByte)
    },
    onEpoch() {
      const out = claims
      claims = new Map()
      return out
    },
  }
}
