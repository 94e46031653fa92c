/** The settlement rules as a pure function: budgets, capacity, fan-out, escrow pro rata, pricing. */
import { describe, expect, it } from 'vitest'
import { type ComputeInput, computeSettlement } from '../src/settlement/compute.ts'
import type { ReceiptRow, TicketRow } from '../src/store/types.ts'

const GIB = 2 ** 30
const hex = (n: number, bytes: number) => `0x${n.toString(16).padStart(bytes * 2, '0')}`
const node = (i: number) => hex(0x1000 + i, 20)
const payout = (i: number) => hex(0x2000 + i, 20)
const client = (i: number) => hex(0x3000 + i, 20)
const ticketId = (i: number) => hex(0x4000 + i, 32)
const P1 = hex(0x5001, 20)
const P2 = hex(0x5002, 20)

function ticket(i: number, over: Partial<TicketRow> = {}): TicketRow {
  return {
    id: ticketId(i),
    client: client(i),
    budget: 100 * GIB,
    expiry: 10 ** 10,
    issuedAt: 0,
    ticket: '{}',
    publisher: P1,
    ...over,
  }
}

let seq = 0
function receipt(n: number, c: number, bytes: number, over: Partial<ReceiptRow> = {}): ReceiptRow {
  seq++
  return {
    batch: hex(seq, 32),
    index: 0,
    node: node(n),
    client: client(c),
    session: hex(1000 * n + c, 32),
    bytes,
    epoch: 10,
    ticket: ticketId(c),
    kind: 0,
    signature: '0x',
    digest: '0x',
    ...over,
  }
}

function input(receipts: ReceiptRow[], over: Partial<ComputeInput> = {}): ComputeInput {
  const tickets = new Map<string, TicketRow>()
  for (const r of receipts)
    if (!tickets.has(r.ticket))
      tickets.set(r.ticket, ticket(Number.parseInt(r.ticket.slice(-4), 16) - 0x4000))
  const nodes = new Map(
    Array.from({ length: 10 }, (_, i) => [node(i), { node: node(i), payout: payout(i), capacity: 10 * GIB }]),
  )
  return {
    epoch: 10,
    epochSeconds: 1,
    receipts,
    signers: receipts.map((r) => r.client),
    tickets,
    selected: new Set(receipts.map((r) => r.ticket + r.node)),
    nodes,
    ticketUsage: new Map(),
    defaultPricePerGiB: 1000n,
    maxClientFanout: 4,
    previous: new Map(),
    ...over,
  }
}

describe('computeSettlement', () => {
  it('pays the latest cumulative receipt per session at the price per GiB, cumulatively', () => {
    const rs = [receipt(1, 1, GIB), receipt(1, 1, 2 * GIB), receipt(2, 1, GIB / 2)]
    const out = computeSettlement(input(rs, { previous: new Map([[payout(1), 5n]]) }))
    expect(out.verdicts).toEqual([{ batch: rs[0]!.batch, index: 0, reason: 'superseded' }])
    expect(out.cumulative.get(payout(1))).toBe(2005n)
    expect(out.cumulative.get(payout(2))).toBe(500n)
    expect(out.debits.get(P1)).toBe(2500n)
    expect(out.ticketBytes).toEqual([{ ticket: ticketId(1), bytes: 2.5 * GIB }])
  })

  it('pays relay receipts (kind 1) like content, against the same ticket budget and selections', () => {
    const relayed = receipt(1, 1, GIB, { kind: 1, session: hex(77, 32) })
    const content = receipt(1, 1, GIB)
    const t = ticket(1, { budget: 1.5 * GIB })
    const out = computeSettlement(input([relayed, content], { tickets: new Map([[t.id, t]]) }))
    expect(out.report.paidReceipts).toBe(2)
    expect(out.report.overBudgetBytes).toBe(GIB / 2)
    expect(out.cumulative.get(payout(1))).toBe(1500n)
    // a relay the tracker never handed to the ticket earns nothing, as for content
    const unselected = computeSettlement(input([relayed], { selected: new Set() }))
    expect(unselected.verdicts.map((v) => v.reason)).toEqual(['not-selected'])
  })

  it('cuts over-budget tickets (across epochs) and over-capacity nodes pro rata', () => {
    const rs = [receipt(1, 1, 2 * GIB), receipt(2, 1, 2 * GIB)]
    const t = ticket(1, { budget: 10 * GIB })
    let out = computeSettlement(
      input(rs, { tickets: new Map([[t.id, t]]), ticketUsage: new Map([[t.id, 8 * GIB]]) }),
    )
    expect(out.report.overBudgetBytes).toBe(2 * GIB)
    expect(out.debits.get(P1)).toBe(2000n)
    out = computeSettlement(
      input([receipt(3, 2, 4 * GIB)], {
        nodes: new Map([[node(3), { node: node(3), payout: payout(3), capacity: GIB }]]),
      }),
    )
    expect(out.report.overCapacityBytes).toBe(3 * GIB)
    expect(out.cumulative.get(payout(3))).toBe(1000n)
  })

  it('caps by escrow pro rata, prices per publisher, and refuses fan-out, self-dealing and unselected pairs', () => {
    const t2 = ticket(2, { publisher: P2 })
    const rs = [receipt(1, 1, GIB), receipt(2, 1, 3 * GIB), receipt(3, 2, GIB)]
    const base = input(rs)
    const tickets = new Map(base.tickets)
    tickets.set(t2.id, t2)
    let out = computeSettlement({
      ...base,
      tickets,
      escrow: new Map([
        [P1, 2000n],
        [P2, 10n ** 9n],
      ]),
      prices: new Map([[P2, 7000n]]),
    })
    expect(out.debits).toEqual(
      new Map([
        [P1, 2000n],
        [P2, 7000n],
      ]),
    )
    expect(out.cumulative.get(payout(1))).toBe(500n)
    expect(out.cumulative.get(payout(2))).toBe(1500n)
    expect(out.report.shortPublishers).toEqual([P1])

    // fan-out: client 1 pays 5 nodes (> 4): all refused
    const fan = [0, 1, 2, 3, 4].map((n) => receipt(n, 1, GIB))
    out = computeSettlement(input(fan))
    expect(out.verdicts.map((v) => v.reason)).toEqual(Array(5).fill('fan-out'))
    expect(out.debits.size).toBe(0)

    // self-dealing (client is a node, or a node's payout) and never selected
    const selfNode = receipt(1, 7, GIB, { client: node(2) })
    const selfPayout = receipt(1, 8, GIB, { client: payout(5) })
    const unselected = receipt(1, 9, GIB)
    const inp = input([selfNode, selfPayout, unselected])
    inp.tickets = new Map([
      [ticketId(7), ticket(7, { client: node(2) })],
      [ticketId(8), ticket(8, { client: payout(5) })],
      [ticketId(9), ticket(9)],
    ])
    inp.selected = new Set([ticketId(7) + node(1), ticketId(8) + node(1)])
    out = computeSettlement(inp)
    expect(out.verdicts.map((v) => v.reason)).toEqual(['self-dealing', 'self-dealing', 'not-selected'])
    // a forged signature and an expired ticket
    const forged = receipt(1, 1, GIB)
    const late = receipt(2, 3, GIB)
    const inp2 = input([forged, late], { signers: ['', client(3)] })
    inp2.tickets = new Map([
      [ticketId(1), ticket(1)],
      [ticketId(3), ticket(3, { expiry: 9 })],
    ])
    expect(computeSettlement(inp2).verdicts.map((v) => v.reason)).toEqual(['bad-signature', 'expired-ticket'])
  })
})
