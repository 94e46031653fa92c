/**
 * The whole network in one test: the real chain, tracker, edge-node processes, origin,
 * SDK, settlement and claims, exactly as `npm start` runs them.
 */
import { publisherEscrowAbi, shoalTokenAbi } from '@shoal/contracts'
import { describe, expect, it } from 'vitest'
import { useBrowser, watchPage } from '../../test-support/browser.ts'
import { isAlive } from '../../test-support/processes.ts'
import { parseDevnetArgs } from '../src/args.ts'
import { DEVNET_PRICE_PER_GIB, PUBLISHER_DEPOSIT, startDevnet } from '../src/devnet.ts'
import { requireFreePorts } from '../src/ports.ts'
import { runScenario } from '../src/scenario.ts'

const QUIET = { step() {}, done() {} }

describe('the devnet', () => {
  const browser = useBrowser()

  it('publishes, serves verified bytes, catches the corrupt node, settles an epoch on chain and pays every claim', async () => {
    const devnet = await startDevnet({ nodes: 3, basePort: 17_470, keep: false, exit: true }, QUIET)
    const pids = devnet.nodes.map((n) => n.pid)
    try {
      const result = await runScenario(devnet, QUIET)
      expect(result.fetched.verifiedEqual).toBe(true)
      expect(result.fetched.requests).toBeGreaterThan(0)
      expect(result.receiptsAccepted).toBeGreaterThan(0)
      expect(result.settledEpochs.length).toBeGreaterThanOrEqual(1)

      const corrupt = result.nodes.find((n) => n.node.corrupt)!
      expect(corrupt.integrityFailures).toBeGreaterThanOrEqual(1)
      // out of selection: cooling off after a proven failure, or flagged after several
      expect(['cooling-off', 'flagged']).toContain(corrupt.status)
      // paid for verified bytes only (clients receipt a chunk after checking it, so the
      // corrupt node's bad chunks are never paid), and no node for more than its receipts
      for (const n of result.nodes) {
        expect(n.earned).toBeLessThanOrEqual(
          (BigInt(n.receiptedBytes) * DEVNET_PRICE_PER_GIB) / 2n ** 30n + 1n,
        )
      }

      // what the nodes hold is exactly what left the publisher's escrow
      const { publicClient } = devnet.chain.client
      const earned = result.nodes.reduce((sum, n) => sum + n.earned, 0n)
      expect(earned).toBeGreaterThan(0n)
      const escrowLeft = await publicClient.readContract({
        address: devnet.contracts.escrow,
        abi: publisherEscrowAbi,
        functionName: 'balanceOf',
        args: [devnet.publisher.address],
      })
      const unclaimed = await publicClient.readContract({
        address: devnet.contracts.token,
        abi: shoalTokenAbi,
        functionName: 'balanceOf',
        args: [devnet.contracts.distributor],
      })
      expect(PUBLISHER_DEPOSIT - escrowLeft).toBe(earned + unclaimed)
      expect(unclaimed).toBe(0n)
      expect(result.table).toContain('node X (corrupt)')

      // the dashboards, in a real browser, show what the APIs say
      const page = await browser().newPage()
      const watch = watchPage(page)
      await page.goto(`${devnet.tracker.url}/dashboard`)
      for (const n of devnet.nodes) {
        const api = (await (await fetch(`${devnet.tracker.url}/v1/nodes/${n.address}`)).json()) as {
          status: string
        }
        await page.waitForFunction(
          ([node, status]) =>
            document.querySelector(`#nodes tr[data-node="${node}"] td[data-field="status"]`)?.textContent ===
            status,
          [n.address, api.status] as const,
          { timeout: 15_000 },
        )
      }
      const node = devnet.nodes[0]!
      const data = (await (await fetch(`${node.url}/dashboard/data.json`)).json()) as {
        traffic: { totalBytes: number }
      }
      await page.goto(`${node.url}/dashboard`)
      expect(await page.locator('#node-address').textContent()).toBe(node.address)
      await page.waitForFunction(
        (least) => Number(document.getElementById('total-bytes')?.dataset.value) >= least,
        data.traffic.totalBytes,
        { timeout: 15_000 },
      )
      expect(watch.requested.every((url) => url.startsWith('http://127.0.0.1:'))).toBe(true)
      expect(watch.problems).toEqual([])
      await page.close()
    } finally {
      await devnet.stop()
    }
    // every process it started has ended, and its ports are free again
    expect(pids.filter(isAlive)).toEqual([])
    await requireFreePorts([17_470, 17_480], 'ports left open')
  }, 180_000)

  it('refuses bad arguments with clear messages', () => {
    for (const nodes of ['0', '10000', 'many']) {
      expect(() => parseDevnetArgs(['--nodes', nodes])).toThrow(
        expect.objectContaining({
          code: 'SHOAL_ERR_INVALID_ARGUMENT',
          message: expect.stringContaining('--nodes'),
        }),
      )
    }
    expect(() => parseDevnetArgs(['--bogus'])).toThrow(
      expect.objectContaining({ code: 'SHOAL_ERR_INVALID_ARGUMENT' }),
    )
    expect(parseDevnetArgs(['--nodes', '20', '--keep'])).toMatchObject({ kind: 'run', nodes: 20, keep: true })
  })

  it('says which ports are taken instead of failing half-way', async () => {
    const { createServer } = await import('node:net')
    const server = createServer().listen(17_570, '127.0.0.1')
    await new Promise((r) => server.once('listening', r))
    try {
      await expect(
        startDevnet({ nodes: 1, basePort: 17_570, keep: false, exit: true }, QUIET),
      ).rejects.toThrow(/17570.*in use.*--base-port/)
    } finally {
      server.close()
    }
  })
})
