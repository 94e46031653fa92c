import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { describe, expect, it } from 'vitest'
import { createSqliteStore } from '../../src/store/sqlite.ts'
import { runStoreSuite } from './suite.ts'

runStoreSuite('sqlite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-tracker-sqlite-'))
  const path = join(dir, 'tracker.db')
  const opened = [createSqliteStore({ path })]
  await opened[0]!.open()
  return {
    store: opened[0]!,
    async open() {
      const s = createSqliteStore({ path })
      opened.push(s)
      await s.open()
      return s
    },
    async cleanup() {
      for (const s of opened) await s.close()
      await rm(dir, { recursive: true, force: true })
    },
  }
})

describe('createSqliteStore', () => {
  it('refuses bad options with a typed error', () => {
    expect(() => createSqliteStore({ path: '' })).toThrow(
      expect.objectContaining({ code: 'SHOAL_ERR_INVALID_ARGUMENT' }),
    )
    expect(() => createSqliteStore({ path: 'x', busyTimeoutMs: -1 })).toThrow(
      expect.objectContaining({ code: 'SHOAL_ERR_INVALID_ARGUMENT' }),
    )
  })

  it('keeps its file in WAL mode', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shoal-tracker-sqlite-'))
    try {
      const path = join(dir, 'tracker.db')
      const store = createSqliteStore({ path })
      await store.open()
      await store.close()
      // WAL is a property of the file: another connection reads it back
      const db = new DatabaseSync(path)
      expect(db.prepare('PRAGMA journal_mode').get()).toEqual({ journal_mode: 'wal' })
      db.close()
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('answers UNAVAILABLE before open and after close', async () => {
    const store = createSqliteStore({ path: ':memory:' })
    await expect(store.countNodes()).rejects.toMatchObject({ code: 'SHOAL_ERR_UNAVAILABLE' })
    await store.open()
    expect(await store.countNodes()).toBe(0)
    await store.close()
    await expect(store.countNodes()).rejects.toMatchObject({ code: 'SHOAL_ERR_UNAVAILABLE' })
  })
})
