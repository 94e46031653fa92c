/**
 * A throwaway PostgreSQL 15 cluster for tests: installed with apt when missing (as
 * root), initialized in a temp dir, listening on 127.0.0.1 on a free port, stopped and
 * removed after. Never skips: when PostgreSQL cannot be installed or started, it throws
 * an error that says why.
 */
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { chown, mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import pg from 'pg'

const run = promisify(execFile)
export const PG_BIN = '/usr/lib/postgresql/15/bin'

export interface PgCluster {
  port: number
  /** Connection string of database `name` on the cluster. */
  url(name: string): string
  /** Creates an empty database and returns its connection string. */
  createDatabase(name: string): Promise<string>
  stop(): Promise<void>
}

async function sh(cmd: string, args: string[], timeout = 600_000): Promise<string> {
  const { stdout } = await run(cmd, args, { timeout, maxBuffer: 16 * 2 ** 20 })
  return stdout
}

/** Installs Debian's postgresql (v15) when `initdb` is missing. */
export async function ensurePostgresInstalled(): Promise<void> {
  if (existsSync(join(PG_BIN, 'initdb'))) return
  if (process.getuid?.() !== 0) {
    throw new Error(
      `PostgreSQL 15 is not installed (${PG_BIN}/initdb is missing) and the tests are not running as root, ` +
        'so they cannot install it: run `apt-get install -y postgresql` (see .ci/run)',
    )
  }
  try {
    await sh('apt-get', ['install', '-y', 'postgresql'])
  } catch {
    try {
      await sh('apt-get', ['update'])
      await sh('apt-get', ['install', '-y', 'postgresql'])
    } catch (err) {
      throw new Error(`could not install PostgreSQL with apt-get: ${(err as Error).message}`)
    }
  }
  if (!existsSync(join(PG_BIN, 'initdb'))) {
    throw new Error(`apt-get installed postgresql but ${PG_BIN}/initdb is still missing (not version 15?)`)
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

/**
 * Starts a cluster owned by `postgres` (when root) or by the current user.
 *
 * @example
 * const cluster = await startPgCluster()
 * const url = await cluster.createDatabase('t1')
 * await cluster.stop()
 */
export async function startPgCluster(): Promise<PgCluster> {
  await ensurePostgresInstalled()
  const dir = await mkdtemp(join(tmpdir(), 'shoal-pg-'))
  const root = process.getuid?.() === 0
  const as = async (cmd: string, args: string[]) =>
    root ? sh('runuser', ['-u', 'postgres', '--', cmd, ...args]) : sh(cmd, args)
  if (root) {
    const { uid, gid } = await sh('id', ['-u', 'postgres']).then(async (u) => ({
      uid: Number(u.trim()),
      gid: Number((await sh('id', ['-g', 'postgres'])).trim()),
    }))
    await chown(dir, uid, gid)
  }
  const data = join(dir, 'data')
  const port = await freePort()
  try {
    await as(join(PG_BIN, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync'])
    await as(join(PG_BIN, 'pg_ctl'), [
      '-D',
      data,
      '-o',
      `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`,
      '-l',
      join(dir, 'log'),
      '-w',
      'start',
    ])
  } catch (err) {
    await rm(dir, { recursive: true, force: true })
    throw new Error(`could not start a PostgreSQL cluster: ${(err as Error).message}`)
  }
  const url = (name: string) => `postgres://postgres@127.0.0.1:${port}/${name}`
  return {
    port,
    url,
    async createDatabase(name) {
      const client = new pg.Client({ connectionString: url('postgres') })
      await client.connect()
      try {
        await client.query(`CREATE DATABASE ${name}`)
      } finally {
        await client.end()
      }
      return url(name)
    },
    async stop() {
      try {
        await as(join(PG_BIN, 'pg_ctl'), ['-D', data, '-m', 'fast', '-w', 'stop'])
      } finally {
        await rm(dir, { recursive: true, force: true })
      }
    },
  }
}
