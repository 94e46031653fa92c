import { type Address, parseEventLogs } from 'viem'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { publisherEscrowAbi, publisherEscrowBytecode, ROLES } from '../src/index.ts'
import { addr, createFixture, expectRevert, type Fixture, mined, NOTICE_PERIOD, ONE } from './fixture.ts'

describe('PublisherEscrow', () => {
  let f: Fixture
  let pub: Address
  let other: Address
  beforeAll(async () => {
    f = await createFixture()
    pub = addr(f.publishers[0]!)
    other = addr(f.publishers[1]!)
  })
  afterAll(() => f.close())
  beforeEach(async () => {
    await f.reset()
    for (const p of f.publishers) {
      await mined(f, f.token().write.mint([addr(p), 1000n * ONE]))
      await mined(f, f.token(p).write.approve([f.shoal.escrow, 1000n * ONE]))
    }
  })

  const escrowOf = (i: number) => f.escrow(f.publishers[i]!)
  const skip = (seconds: number) => f.chain.testClient.increaseTime({ seconds })

  describe('deposits', () => {
    it('deposit pulls tokens and credits the caller, with an event', async () => {
      const receipt = await mined(f, escrowOf(0).write.deposit([100n * ONE]))
      expect(await f.escrow().read.balanceOf([pub])).toBe(100n * ONE)
      expect(await f.token().read.balanceOf([f.shoal.escrow])).toBe(100n * ONE)
      expect(await f.token().read.balanceOf([pub])).toBe(900n * ONE)
      const [e] = parseEventLogs({ abi: publisherEscrowAbi, logs: receipt.logs, eventName: 'Deposited' })
      expect(e?.args).toEqual({ publisher: pub, from: pub, amount: 100n * ONE, balance: 100n * ONE })
    })

    it('depositFor credits another publisher from the caller', async () => {
      await mined(f, escrowOf(1).write.depositFor([pub, 30n * ONE]))
      expect(await f.escrow().read.balanceOf([pub])).toBe(30n * ONE)
      expect(await f.escrow().read.balanceOf([other])).toBe(0n)
      expect(await f.token().read.balanceOf([other])).toBe(970n * ONE)
    })

    it('depositWithPermit needs no prior approve', async () => {
      const p = f.publishers[0]!
      await mined(f, f.token(p).write.approve([f.shoal.escrow, 0n]))
      const deadline = BigInt(Math.floor(Date.now() / 1000) + 3600)
      const nonce = await f.token().read.nonces([pub])
      const signature = await p.signTypedData({
        domain: { name: 'Shoal', version: '1', chainId: f.chain.chainId, verifyingContract: f.shoal.token },
        types: {
          Permit: [
            { name: 'owner', type: 'address' },
            { name: 'spender', type: 'address' },
            { name: 'value', type: 'uint256' },
            { name: 'nonce', type: 'uint256' },
            { name: 'deadline', type: 'uint256' },
          ],
        },
        primaryType: 'Permit',
        message: { owner: pub, spender: f.shoal.escrow, value: 5n * ONE, nonce, deadline },
      })
      const r = signature.slice(0, 66) as `0x${string}`
      const s = `0x${signature.slice(66, 130)}` as `0x${string}`
      const v = Number.parseInt(signature.slice(130, 132), 16)
      await mined(f, escrowOf(0).write.depositWithPermit([5n * ONE, deadline, v, r, s]))
      expect(await f.escrow().read.balanceOf([pub])).toBe(5n * ONE)
    })

    it('refuses zero amounts and the zero address', async () => {
      await expectRevert(escrowOf(0).write.deposit([0n]), 'ZeroAmount')
      await expectRevert(
        escrowOf(0).write.depositFor(['0x0000000000000000000000000000000000000000', ONE]),
        'ZeroAddress',
      )
    })

    it('fails without allowance and credits nothing', async () => {
      await mined(f, f.token(f.publishers[0]).write.approve([f.shoal.escrow, 0n]))
      await expectRevert(escrowOf(0).write.deposit([ONE]), 'ERC20InsufficientAllowance')
      expect(await f.escrow().read.balanceOf([pub])).toBe(0n)
    })
  })

  describe('withdrawals', () => {
    beforeEach(async () => {
      await mined(f, escrowOf(0).write.deposit([100n * ONE]))
    })

    it('pays only after the notice period', async () => {
      const receipt = await mined(f, escrowOf(0).write.requestWithdrawal([40n * ONE]))
      const block = await f.chain.publicClient.getBlock({ blockNumber: receipt.blockNumber })
      const unlockAt = block.timestamp + BigInt(NOTICE_PERIOD)
      expect(await f.escrow().read.withdrawalOf([pub])).toEqual([40n * ONE, unlockAt])
      expect(await expectRevert(escrowOf(0).write.withdraw(), 'NoticePeriodNotOver')).toEqual([pub, unlockAt])
      await skip(NOTICE_PERIOD - 10)
      await expectRevert(escrowOf(0).write.withdraw(), 'NoticePeriodNotOver')
      await skip(10)
      const paid = await mined(f, escrowOf(0).write.withdraw())
      const [e] = parseEventLogs({ abi: publisherEscrowAbi, logs: paid.logs, eventName: 'Withdrawn' })
      expect(e?.args).toEqual({ publisher: pub, amount: 40n * ONE, balance: 60n * ONE })
      expect(await f.escrow().read.balanceOf([pub])).toBe(60n * ONE)
      expect(await f.token().read.balanceOf([pub])).toBe(940n * ONE)
      expect(await f.escrow().read.withdrawalOf([pub])).toEqual([0n, 0n])
      // The request is used up.
      await expectRevert(escrowOf(0).write.withdraw(), 'NoWithdrawalRequested')
    })

    it('refuses a withdrawal nobody requested, or a request above the balance or of zero', async () => {
      await expectRevert(escrowOf(0).write.withdraw(), 'NoWithdrawalRequested')
      expect(
        await expectRevert(escrowOf(0).write.requestWithdrawal([101n * ONE]), 'InsufficientBalance'),
      ).toEqual([pub, 100n * ONE, 101n * ONE])
      await expectRevert(escrowOf(0).write.requestWithdrawal([0n]), 'ZeroAmount')
      await expectRevert(escrowOf(1).write.requestWithdrawal([ONE]), 'InsufficientBalance')
    })

    it('debits during the notice period reduce what the withdrawal pays', async () => {
      await mined(f, f.escrow().write.grantRole([ROLES.DEBITER, addr(f.admin)]))
      await mined(f, escrowOf(0).write.requestWithdrawal([100n * ONE]))
      await mined(f, f.escrow().write.debit([pub, 30n * ONE]))
      expect(await f.escrow().read.withdrawable([pub])).toBe(70n * ONE)
      await skip(NOTICE_PERIOD)
      await mined(f, escrowOf(0).write.withdraw())
      expect(await f.token().read.balanceOf([pub])).toBe(970n * ONE)
      expect(await f.escrow().read.balanceOf([pub])).toBe(0n)
      expect(await f.token().read.balanceOf([f.shoal.escrow])).toBe(0n)
    })

    it('a fully debited request pays nothing and can be cancelled', async () => {
      await mined(f, f.escrow().write.grantRole([ROLES.DEBITER, addr(f.admin)]))
      await mined(f, escrowOf(0).write.requestWithdrawal([50n * ONE]))
      await mined(f, f.escrow().write.debit([pub, 100n * ONE]))
      await skip(NOTICE_PERIOD)
      await expectRevert(escrowOf(0).write.withdraw(), 'NothingToWithdraw')
      await mined(f, escrowOf(0).write.cancelWithdrawal())
      await expectRevert(escrowOf(0).write.withdraw(), 'NoWithdrawalRequested')
    })

    it('a new request replaces the old one and restarts the notice period', async () => {
      await mined(f, escrowOf(0).write.requestWithdrawal([10n * ONE]))
      await skip(NOTICE_PERIOD)
      await mined(f, escrowOf(0).write.requestWithdrawal([80n * ONE]))
      await expectRevert(escrowOf(0).write.withdraw(), 'NoticePeriodNotOver')
      await skip(NOTICE_PERIOD)
      await mined(f, escrowOf(0).write.withdraw())
      expect(await f.escrow().read.balanceOf([pub])).toBe(20n * ONE)
    })

    it('cancelWithdrawal clears the request', async () => {
      await expectRevert(escrowOf(0).write.cancelWithdrawal(), 'NoWithdrawalRequested')
      await mined(f, escrowOf(0).write.requestWithdrawal([10n * ONE]))
      await mined(f, escrowOf(0).write.cancelWithdrawal())
      expect(await f.escrow().read.withdrawalOf([pub])).toEqual([0n, 0n])
      await skip(NOTICE_PERIOD)
      await expectRevert(escrowOf(0).write.withdraw(), 'NoWithdrawalRequested')
    })
  })

  describe('debits', () => {
    beforeEach(async () => {
      await mined(f, escrowOf(0).write.deposit([100n * ONE]))
      await mined(f, escrowOf(1).write.deposit([50n * ONE]))
    })

    it('refuses a caller without DEBITER_ROLE (publisher, admin, stranger)', async () => {
      for (const wallet of [f.stranger, f.publishers[0]!, f.admin, f.settler]) {
        const args = await expectRevert(
          f.escrow(wallet).write.debit([pub, ONE]),
          'AccessControlUnauthorizedAccount',
        )
        expect(args).toEqual([addr(wallet), ROLES.DEBITER])
        await expectRevert(
          f.escrow(wallet).write.debitMany([[pub], [ONE]]),
          'AccessControlUnauthorizedAccount',
        )
      }
      expect(await f.escrow().read.balanceOf([pub])).toBe(100n * ONE)
    })

    it('debit sends the amount to the debiter; beyond the balance it reverts', async () => {
      await mined(f, f.escrow().write.grantRole([ROLES.DEBITER, addr(f.stranger)]))
      const receipt = await mined(f, f.escrow(f.stranger).write.debit([pub, 30n * ONE]))
      const [e] = parseEventLogs({ abi: publisherEscrowAbi, logs: receipt.logs, eventName: 'Debited' })
      expect(e?.args).toEqual({
        publisher: pub,
        debiter: addr(f.stranger),
        amount: 30n * ONE,
        balance: 70n * ONE,
      })
      expect(await f.token().read.balanceOf([addr(f.stranger)])).toBe(30n * ONE)
      expect(
        await expectRevert(f.escrow(f.stranger).write.debit([pub, 71n * ONE]), 'InsufficientBalance'),
      ).toEqual([pub, 70n * ONE, 71n * ONE])
      await expectRevert(f.escrow(f.stranger).write.debit([pub, 0n]), 'ZeroAmount')
    })

    it('debitMany debits each publisher and sends the sum at once, all or nothing', async () => {
      await mined(f, f.escrow().write.grantRole([ROLES.DEBITER, addr(f.stranger)]))
      const e = f.escrow(f.stranger)
      await expectRevert(
        e.write.debitMany([
          [pub, other],
          [10n * ONE, 51n * ONE],
        ]),
        'InsufficientBalance',
      )
      await expectRevert(e.write.debitMany([[pub, other], [10n * ONE]]), 'LengthMismatch')
      expect(await f.escrow().read.balanceOf([pub])).toBe(100n * ONE)
      await mined(
        f,
        e.write.debitMany([
          [pub, other, pub],
          [10n * ONE, 50n * ONE, 5n * ONE],
        ]),
      )
      expect(await f.escrow().read.balanceOf([pub])).toBe(85n * ONE)
      expect(await f.escrow().read.balanceOf([other])).toBe(0n)
      expect(await f.token().read.balanceOf([addr(f.stranger)])).toBe(65n * ONE)
    })
  })

  describe('constructor', () => {
    it('refuses a zero or over-long notice period and zero addresses', async () => {
      const deploy = (args: readonly [Address, Address, bigint]) =>
        f.admin.deployContract({ abi: publisherEscrowAbi, bytecode: publisherEscrowBytecode, args })
      const admin = addr(f.admin)
      await expectRevert(deploy([admin, f.shoal.token, 0n]), 'InvalidNoticePeriod')
      await expectRevert(deploy([admin, f.shoal.token, 365n * 86400n + 1n]), 'InvalidNoticePeriod')
      await expectRevert(deploy([admin, '0x0000000000000000000000000000000000000000', 60n]), 'ZeroAddress')
      expect(await f.escrow().read.noticePeriod()).toBe(BigInt(NOTICE_PERIOD))
      expect(await f.escrow().read.token()).toBe(f.shoal.token)
    })
  })
})
