import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { type CompileResult, compileContracts, PACKAGE_ROOT, renderAll } from '../scripts/compile.ts'

describe('build', () => {
  let result: CompileResult
  // The IR pipeline makes a full compile take 15–25 s on a busy 2-core machine.
  beforeAll(() => {
    result = compileContracts()
  }, 120_000)

  it('the committed generated modules are up to date (run `npm run build -w contracts`)', () => {
    const files = renderAll(result.contracts)
    for (const [path, contents] of files) {
      expect(readFileSync(join(PACKAGE_ROOT, path), 'utf8'), `${path} is stale`).toBe(contents)
    }
    // No leftovers from contracts that no longer exist.
    const onDisk = ['src/generated', 'test/generated'].flatMap((dir) =>
      readdirSync(join(PACKAGE_ROOT, dir)).map((name) => `${dir}/${name}`),
    )
    expect(onDisk.sort()).toEqual([...files.keys()].sort())
  })

  it('compiles without warnings', () => {
    expect(result.warnings).toEqual([])
  })

  it('packs the distributor totals into the pause flag slot, so claims read one slot for all three', () => {
    const distributor = result.contracts.find((c) => c.name === 'RewardDistributor')!
    const slotOf = (label: string) => distributor.storageLayout.storage.find((s) => s.label === label)?.slot
    expect(slotOf('_paused')).toBeDefined()
    expect(slotOf('totalFunded')).toBe(slotOf('_paused'))
    expect(slotOf('totalClaimed')).toBe(slotOf('_paused'))
    // The covered-accounts count shares the epoch's slot (postRoot writes both).
    expect(slotOf('accounts')).toBe(slotOf('epoch'))
  })
})
