import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { ROLES } from '../src/index.ts'
import { addr, createFixture, expectRevert, type Fixture, mined, ONE } from './fixture.ts'

describe('ShoalToken', () => {
  let f: Fixture
  beforeAll(async () => {
    f = await createFixture()
  })
  afterAll(() => f.close())
  beforeEach(() => f.reset())

  it('is an 18-decimal ERC-20 named Shoal', async () => {
    expect(await f.token().read.name()).toBe('Shoal')
    expect(await f.token().read.symbol()).toBe('SHOAL')
    expect(await f.token().read.decimals()).toBe(18)
    expect(await f.token().read.totalSupply()).toBe(0n)
  })

  it('mints only for MINTER_ROLE', async () => {
    const to = addr(f.publishers[0]!)
    await mined(f, f.token().write.mint([to, 7n * ONE]))
    expect(await f.token().read.balanceOf([to])).toBe(7n * ONE)
    expect(
      await expectRevert(f.token(f.stranger).write.mint([to, ONE]), 'AccessControlUnauthorizedAccount'),
    ).toEqual([addr(f.stranger), ROLES.MINTER])
    await mined(f, f.token().write.grantRole([ROLES.MINTER, addr(f.stranger)]))
    await mined(f, f.token(f.stranger).write.mint([to, ONE]))
    expect(await f.token().read.totalSupply()).toBe(8n * ONE)
  })

  it('lets only the admin grant MINTER_ROLE', async () => {
    await expectRevert(
      f.token(f.stranger).write.grantRole([ROLES.MINTER, addr(f.stranger)]),
      'AccessControlUnauthorizedAccount',
    )
  })
})
