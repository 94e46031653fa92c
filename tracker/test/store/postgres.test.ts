import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPostgresStore } from '../../src/store/postgres.ts'
import type { TrackerStore } from '../../src/store/types.ts'
import { type PgCluster, startPgCluster } from './pg-cluster.ts'
import { runStoreSuite } from './suite.ts'

let cluster: PgCluster
let databases = 0

beforeAll(async () => {
  cluster = await startPgCluster()
}, 600_000)

afterAll(async () => {
  await cluster?.stop()
})

runStoreSuite('postgres', async () => {
  const url = await cluster.createDatabase(`suite_${++databases}`)
  const opened: TrackerStore[] = [createPostgresStore({ connectionString: url })]
  await opened[0]!.open()
  return {
    store: opened[0]!,
    async open() {
      const s = createPostgresStore({ connectionString: url })
      opened.push(s)
      await s.open()
      return s
    },
    async cleanup() {
      for (const s of opened) await s.close()
    },
  }
})

describe('createPostgresStore', () => {
  it('refuses bad options with a typed error', () => {
    expect(() => createPostgresStore({ connectionString: 'mysql://x' })).toThrow(
      expect.objectContaining({ code: 'SHOAL_ERR_INVALID_ARGUMENT' }),
    )
    expect(() => createPostgresStore({ connectionString: 'postgres://x/y', maxConnections: 0 })).toThrow(
      expect.objectContaining({ code: 'SHOAL_ERR_INVALID_ARGUMENT' }),
    )
  })

  it('migrates once when replicas open together', async () => {
    const url = await cluster.createDatabase('replicas')
    const stores = [1, 2, 3].map(() => createPostgresStore({ connectionString: url }))
    await Promise.all(stores.map((s) => s.open()))
    expect(await stores[2]!.countNodes()).toBe(0)
    for (const s of stores) await s.close()
  })

  it('says UNAVAILABLE when the server cannot be reached', async () => {
    const store = createPostgresStore({ connectionString: `postgres://postgres@127.0.0.1:1/none` })
    await expect(store.open()).rejects.toMatchObject({ code: 'SHOAL_ERR_UNAVAILABLE' })
  })
})
