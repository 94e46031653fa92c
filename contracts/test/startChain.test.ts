import { createPublicClient, createWalletClient, http, parseEther } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { hardhat } from 'viem/chains'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { deployShoal, type ShoalChain, serveJsonRpc, shoalTokenAbi, startChain } from '../src/index.ts'

describe('startChain', () => {
  let chain: ShoalChain
  beforeAll(async () => {
    chain = await startChain({ accounts: 3 })
  })
  afterAll(() => chain.close())

  it('gives funded accounts whose keys match the wallet clients', async () => {
    expect(chain.chainId).toBe(31337)
    expect(await chain.publicClient.getChainId()).toBe(31337)
    expect(chain.accounts).toHaveLength(3)
    expect(chain.walletClients).toHaveLength(3)
    // Hardhat's well-known first development account.
    expect(chain.accounts[0]!.address).toBe('0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266')
    for (const [i, account] of chain.accounts.entries()) {
      expect(privateKeyToAccount(account.privateKey).address).toBe(account.address)
      expect(chain.walletClients[i]!.account.address.toLowerCase()).toBe(account.address.toLowerCase())
      expect(await chain.publicClient.getBalance({ address: account.address })).toBe(parseEther('10000'))
    }
  })

  it('mines each transaction at once and supports test actions', async () => {
    const before = await chain.publicClient.getBlockNumber()
    const to = chain.accounts[2]!.address
    const hash = await chain.walletClients[0]!.sendTransaction({ to, value: 1n })
    const receipt = await chain.publicClient.waitForTransactionReceipt({ hash })
    expect(receipt.blockNumber).toBe(before + 1n)
    await chain.testClient.setBalance({ address: to, value: 5n })
    expect(await chain.publicClient.getBalance({ address: to })).toBe(5n)
  })

  it('validates its options with typed errors', async () => {
    await expect(startChain({ accounts: 0 })).rejects.toMatchObject({ code: 'SHOAL_ERR_INVALID_ARGUMENT' })
    await expect(startChain({ chainId: -1 })).rejects.toMatchObject({ code: 'SHOAL_ERR_INVALID_ARGUMENT' })
    await expect(startChain({ signal: AbortSignal.abort() })).rejects.toMatchObject({
      code: 'SHOAL_ERR_ABORTED',
    })
  })

  describe('serve (JSON-RPC over HTTP on 127.0.0.1)', () => {
    it('serves the same chain to viem over HTTP, reads and signed transactions alike', async () => {
      const server = await chain.serve()
      try {
        expect(server.hostname).toBe('127.0.0.1')
        expect(server.url).toBe(`http://127.0.0.1:${server.port}`)
        const shoal = await deployShoal({
          walletClient: chain.walletClients[0]!,
          publicClient: chain.publicClient,
        })
        const remote = createPublicClient({ chain: hardhat, transport: http(server.url) })
        expect(await remote.getChainId()).toBe(31337)
        expect(
          await remote.readContract({ address: shoal.token, abi: shoalTokenAbi, functionName: 'symbol' }),
        ).toBe('SHOAL')
        // A wallet holding a key (as MetaMask would) signs locally and sends raw transactions.
        const account = privateKeyToAccount(chain.accounts[1]!.privateKey)
        const wallet = createWalletClient({ account, chain: hardhat, transport: http(server.url) })
        const to = '0x000000000000000000000000000000000000bEEF'
        const hash = await wallet.sendTransaction({ to, value: 123n })
        await remote.waitForTransactionReceipt({ hash, pollingInterval: 10 })
        expect(await chain.publicClient.getBalance({ address: to })).toBe(123n)
      } finally {
        await server.close()
      }
      await expect(fetch(server.url, { method: 'POST', body: '{}' })).rejects.toThrow()
    })

    it('answers batches, CORS preflights and malformed requests per JSON-RPC', async () => {
      const server = await chain.serve()
      const post = async (body: string) => {
        const res = await fetch(server.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
        })
        expect(res.headers.get('access-control-allow-origin')).toBe('*')
        return { status: res.status, json: await res.json() }
      }
      try {
        const batch = await post(
          JSON.stringify([
            { jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: [] },
            { jsonrpc: '2.0', id: 'b', method: 'eth_blockNumber' },
          ]),
        )
        expect(batch.status).toBe(200)
        expect(batch.json).toMatchObject([
          { jsonrpc: '2.0', id: 1, result: '0x7a69' },
          { jsonrpc: '2.0', id: 'b', result: expect.stringMatching(/^0x/) },
        ])
        expect((await post('{not json')).json).toMatchObject({ id: null, error: { code: -32700 } })
        expect((await post('[]')).json).toMatchObject({ error: { code: -32600 } })
        expect((await post('{"jsonrpc":"2.0","id":7}')).json).toMatchObject({
          id: 7,
          error: { code: -32600 },
        })
        const unknown = await post('{"jsonrpc":"2.0","id":8,"method":"eth_noSuchMethod","params":[]}')
        expect(unknown.json).toMatchObject({
          id: 8,
          error: { code: expect.any(Number), message: expect.any(String) },
        })
        const preflight = await fetch(server.url, { method: 'OPTIONS' })
        expect(preflight.status).toBe(204)
        expect(preflight.headers.get('access-control-allow-methods')).toContain('POST')
        expect((await fetch(server.url)).status).toBe(405)
      } finally {
        await server.close()
      }
    })

    it('refuses oversized bodies and bad options, and closes on abort', async () => {
      const controller = new AbortController()
      const server = await serveJsonRpc(chain.provider, { maxBodyBytes: 64, signal: controller.signal })
      const res = await fetch(server.url, { method: 'POST', body: 'x'.repeat(1000) }).catch(() => undefined)
      expect(res?.status).toBe(413)
      controller.abort()
      await server.close()
      await expect(fetch(server.url, { method: 'POST', body: '{}' })).rejects.toThrow()
      await expect(serveJsonRpc(chain.provider, { port: 70_000 })).rejects.toMatchObject({
        code: 'SHOAL_ERR_INVALID_ARGUMENT',
      })
      await expect(serveJsonRpc(chain.provider, { signal: AbortSignal.abort() })).rejects.toMatchObject({
        code: 'SHOAL_ERR_ABORTED',
      })
    })
  })
})
