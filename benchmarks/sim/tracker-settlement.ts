/**
 * The tracker's real settlement plugged into the simulation: every delivery becomes a
 * bandwidth receipt, every epoch is settled by `computeSettlement` (@shoal/tracker: the
 * signature, ticket, selection, self-dealing, supersession, fan-out, budget, capacity and
 * pricing rules), and the payouts come back split into real delivery and fabrication.
 *
 * Signatures: a bounded sample of clients (every `signEvery`-th) and every attacker sign
 * their receipts for real (secp256k1 over the receipt's EIP-712 digest from
 * @shoal/protocol, the same bytes `signBandwidthReceipt` produces) and the tracker's
 * `recoverSigner` recovers them; the other clients' signatures are taken as recovering
 * their address (an honest client signs what it verified), which keeps the full run
 * within its time box. The attacks are those of tracker/test/settlement-attack.test.ts.
 */
import { createHash } from 'node:crypto'
import { secp256k1 } from '@noble/curves/secp256k1'
import { type BandwidthReceipt, hashBandwidthReceipt, RECEIPT_KIND } from '@shoal/protocol'
import {
  computeSettlement,
  DEFAULT_MAX_CLIENT_FANOUT,
  DEFAULT_PRICE_PER_GIB,
  DEFAULT_TICKET_BUDGET,
  DEFAULT_TICKET_TTL_SECONDS,
  type ReceiptRow,
  recoverSigner,
  type SettleNode,
  type TicketRow,
} from '@shoal/tracker'
import { getAddress, type Hex } from 'viem'
import { privateKeyToAddress } from 'viem/accounts'
import type { Attack, AttackerModel, Delivery, NodePayout, SettlementModel } from './settlement.ts'

const MiB = 2 ** 20

export interface TrackerSettlementInit {
  seed: number
  epochMs: number
  /** Wall-clock time (ms) of simulated time 0: epochs and ticket expiries are absolute. */
  startMs: number
  /** Every `signEvery`-th client (by number) signs its receipts for real. */
  signEvery: number
  /** A node's capacity (bytes/s), as its record offers it. */
  capacityOf(node: string): number
  pricePerGiB?: bigint
  maxClientFanout?: number
}

export interface TrackerSettlementStats {
  receipts: number
  /** Receipts signed and recovered for real. */
  signedReceipts: number
  /** Refused receipts per reason code (REJECT). */
  byReason: Record<string, number>
  /** Fabricated bytes per attack, and how many of them were paid. */
  attacks: Record<string, { bytes: number; paidBytes: number }>
}

const hex32 = (...parts: (string | number)[]): Hex =>
  `0x${createHash('sha256').update(parts.join(':')).digest('hex')}`

/**
 * A receipt's signature, synchronously (the simulation's loop is synchronous): the
 * secp256k1 signature of its EIP-712 digest, low-s, v 27/28 — the bytes
 * `signBandwidthReceipt` gives for the same key (the tests check it).
 */
export function signReceiptSync(key: Hex, message: BandwidthReceipt): Hex {
  const sig = secp256k1.sign(hashBandwidthReceipt(message).slice(2), key.slice(2), { lowS: true })
  return `0x${sig.toCompactHex()}${(27 + sig.recovery).toString(16)}`
}

/** A settlement model driving the tracker's `computeSettlement`; `stats()` tells what it refused. */
export function trackerSettlement(
  init: TrackerSettlementInit,
): SettlementModel & { stats(): TrackerSettlementStats } {
  const price = init.pricePerGiB ?? DEFAULT_PRICE_PER_GIB
  const epochSeconds = init.epochMs / 1000
  const publisher = getAddress(`0x${hex32('publisher', init.seed).slice(2, 42)}`)
  const keys = new Map<number, { key: Hex; address: string }>()
  const keyed = (client: number) => client < 0 || client % init.signEvery === 0
  const identity = (client: number) => {
    let k = keys.get(client)
    if (k === undefined) {
      const key = hex32('client-key', init.seed, client)
      k = { key, address: privateKeyToAddress(key).toLowerCase() }
      keys.set(client, k)
    }
    return k
  }
  const clientAddress = (client: number) =>
    keyed(client) ? identity(client).address : `0x${hex32('client', init.seed, client).slice(26)}`
  const payoutOf = (node: string) => `0x${hex32('payout', init.seed, node).slice(26)}`

  // tickets: one per client at a time, issued when it first fetches, renewed on expiry
  const tickets = new Map<number, TicketRow & { generation: number }>()
  const ticketFor = (client: number, address: string, epochStart: number): TicketRow => {
    let t = tickets.get(client)
    if (t === undefined || epochStart > t.expiry) {
      const generation = t === undefined ? 0 : t.generation + 1
      t = {
        generation,
        id: hex32('ticket', init.seed, client, generation),
        client: address,
        budget: DEFAULT_TICKET_BUDGET,
        issuedAt: epochStart,
        expiry: epochStart + DEFAULT_TICKET_TTL_SECONDS,
        ticket: '',
        publisher,
      }
      tickets.set(client, t)
    }
    return t
  }
  const ticketUsage = new Map<string, number>()
  let previous = new Map<string, bigint>()
  const nodes = new Map<string, SettleNode>()
  const nodeFor = (node: string, payout = payoutOf(node)) => {
    if (!nodes.has(node)) nodes.set(node, { node, payout, capacity: init.capacityOf(node) })
  }

  // the epoch's receipts
  let receipts: ReceiptRow[] = []
  let signers: string[] = []
  let genuine: boolean[] = []
  let attackOf: (Attack | undefined)[] = []
  let epochTickets = new Map<string, TicketRow>()
  let selected = new Set<string>()
  const batchIndex = new Map<string, number>()
  /** The receipt each real delivery became, for replays of it. */
  let receiptOf = new WeakMap<Delivery, number>()
  let sessions = 0
  const stats: TrackerSettlementStats = { receipts: 0, signedReceipts: 0, byReason: {}, attacks: {} }

  const sign = (client: number, message: BandwidthReceipt) => signReceiptSync(identity(client).key, message)

  const add = (
    d: Delivery,
    epoch: number,
    message: Omit<BandwidthReceipt, 'epoch' | 'kind'>,
    signWith: { client: number; bytes?: number } | undefined,
    ticket: TicketRow | undefined,
  ) => {
    const full: BandwidthReceipt = { ...message, epoch, kind: RECEIPT_KIND.content }
    let signature = ''
    let signer = full.client.toLowerCase()
    if (signWith !== undefined) {
      const typed = { ...full, node: getAddress(full.node), client: getAddress(full.client) }
      signature = sign(signWith.client, { ...typed, bytes: signWith.bytes ?? full.bytes })
      signer = recoverSigner(Buffer.from(hashBandwidthReceipt(typed).slice(2), 'hex'), signature) ?? ''
      stats.signedReceipts++
    }
    const batch = `${d.node}:${epoch}`
    const index = batchIndex.get(batch) ?? 0
    batchIndex.set(batch, index + 1)
    if (ticket !== undefined) epochTickets.set(ticket.id, ticket)
    receipts.push({
      batch,
      index,
      node: full.node,
      client: full.client,
      session: full.session,
      bytes: full.bytes,
      epoch,
      ticket: full.ticket,
      kind: full.kind,
      signature,
      digest: '',
    })
    signers.push(signer)
    genuine.push(d.delivered)
    attackOf.push(d.attack)
    if (d.attack !== undefined) {
      const a = stats.attacks[d.attack] ?? { bytes: 0, paidBytes: 0 }
      a.bytes += d.bytes
      stats.attacks[d.attack] = a
    }
    return receipts.length - 1
  }

  return {
    onDelivery(d) {
      const epoch = Math.floor(init.startMs / init.epochMs) + d.epoch
      const epochStart = epoch * epochSeconds
      nodeFor(d.node)
      if (d.attack === 'replay') {
        // the same receipt again (same session, bytes and signature)
        const i = d.replayOf === undefined ? undefined : receiptOf.get(d.replayOf)
        if (i === undefined) return
        receipts.push({ ...receipts[i]!, index: batchIndex.get(receipts[i]!.batch)! })
        batchIndex.set(receipts[i]!.batch, receipts[i]!.index + 1)
        signers.push(signers[i]!)
        genuine.push(false)
        attackOf.push('replay')
        const a = stats.attacks.replay ?? { bytes: 0, paidBytes: 0 }
        a.bytes += d.bytes
        stats.attacks.replay = a
        return
      }
      const address = clientAddress(d.client)
      if (d.attack === 'self-deal') nodeFor(address, payoutOf(d.node)) // its other node, same payout
      const ticket = d.attack === 'garbage' ? undefined : ticketFor(d.client, address, epochStart)
      for (const n of d.selected ?? []) if (ticket !== undefined) selected.add(ticket.id + n)
      const session = hex32('session', init.seed, sessions++)
      const i = add(
        d,
        epoch,
        {
          // lowercase, as the store keeps them; checksummed only where a receipt is signed
          node: d.node as Hex,
          client: address as Hex,
          session,
          bytes: d.bytes,
          ticket: (ticket?.id as Hex | undefined) ?? hex32('made-up-ticket', init.seed, sessions),
        },
        keyed(d.client)
          ? { client: d.client, ...(d.signedBytes === undefined ? {} : { bytes: d.signedBytes }) }
          : undefined,
        ticket,
      )
      if (d.delivered) receiptOf.set(d, i)
    },

    onEpoch(simEpoch) {
      const epoch = Math.floor(init.startMs / init.epochMs) + simEpoch
      const result = computeSettlement({
        epoch,
        epochSeconds,
        receipts,
        signers,
        tickets: epochTickets,
        selected,
        nodes,
        ticketUsage,
        defaultPricePerGiB: price,
        maxClientFanout: init.maxClientFanout ?? DEFAULT_MAX_CLIENT_FANOUT,
        previous,
      })
      for (const [reason, n] of Object.entries(result.report.byReason))
        stats.byReason[reason] = (stats.byReason[reason] ?? 0) + n
      stats.receipts += receipts.length
      for (const { ticket, bytes } of result.ticketBytes)
        ticketUsage.set(ticket, (ticketUsage.get(ticket) ?? 0) + bytes)
      previous = result.cumulative

      // split each node's amount between its accepted genuine and fabricated bytes
      const refused = new Set(result.verdicts.map((v) => `${v.batch}#${v.index}`))
      const accepted = new Map<string, { genuine: number; fabricated: number }>()
      receipts.forEach((r, i) => {
        if (refused.has(`${r.batch}#${r.index}`)) return
        const node = r.node.toLowerCase()
        const a = accepted.get(node) ?? { genuine: 0, fabricated: 0 }
        if (genuine[i]) a.genuine += r.bytes
        else {
          a.fabricated += r.bytes
          const attack = stats.attacks[attackOf[i] ?? '']
          if (attack !== undefined) attack.paidBytes += r.bytes
        }
        accepted.set(node, a)
      })
      const out = new Map<string, NodePayout>()
      for (const [node, p] of Object.entries(result.report.perNode)) {
        const amount = Number(BigInt(p.amount))
        const a = accepted.get(node) ?? { genuine: 0, fabricated: 0 }
        const total = a.genuine + a.fabricated
        const fabricated = total === 0 ? 0 : (amount * a.fabricated) / total
        out.set(node, { delivered: amount - fabricated, fabricated })
      }
      receipts = []
      signers = []
      genuine = []
      attackOf = []
      epochTickets = new Map()
      selected = new Set()
      receiptOf = new WeakMap()
      batchIndex.clear()
      return out
    },

    stats: () => stats,
  }
}

export interface SettlementAttackersInit {
  /** Nodes of the simulation run by attackers, one attack each in turn. */
  nodes: readonly string[]
  /** Fabricated bytes per attacker and epoch, as in the attack test. */
  inflateFactor?: number
}

/**
 * The attackers of the settlement attack simulation, on simulation nodes. Their real
 * deliveries are paid like anyone's; each epoch they also claim bytes never delivered:
 * an inflater reports 50× what a client of its own signed for, a replayer submits each
 * of its receipts twice, a self-dealer pays itself from its second node, a Sybil farmer
 * makes ten clients the tracker never sent to it, and a garbage server signs receipts
 * itself on a made-up ticket.
 */
export function settlementAttackers(init: SettlementAttackersInit): AttackerModel {
  const kinds: Attack[] = ['inflate', 'replay', 'self-deal', 'sybil', 'garbage']
  const factor = init.inflateFactor ?? 50
  let clients = 0
  const nextClient = () => -1 - clients++
  return {
    nodes: new Set(init.nodes),
    fabricate(epoch, time, honest) {
      const out: Delivery[] = []
      const base = { time, epoch, delivered: false }
      init.nodes.forEach((node, i) => {
        const attack = kinds[i % kinds.length]!
        if (attack === 'inflate') {
          const signed = 3 * MiB
          out.push({
            ...base,
            node,
            client: nextClient(),
            bytes: signed * factor,
            signedBytes: signed,
            selected: [node],
            attack,
          })
        } else if (attack === 'replay') {
          for (const d of honest) {
            if (d.node === node && d.delivered)
              out.push({ ...base, node, client: d.client, bytes: d.bytes, attack, replayOf: d })
          }
        } else if (attack === 'self-deal') {
          out.push({ ...base, node, client: -1_000_000 - i, bytes: 500 * MiB, selected: [node], attack })
        } else if (attack === 'sybil') {
          for (let s = 0; s < 10; s++)
            out.push({ ...base, node, client: nextClient(), bytes: 100 * MiB, selected: [], attack })
        } else {
          out.push({ ...base, node, client: nextClient(), bytes: 900 * MiB, attack })
        }
      })
      return out
    },
  }
}
