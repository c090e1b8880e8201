import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import mysql from 'mysql2/promise'
import { describe, expect, it } from 'vitest'
import { testConfig } from './harness.ts'
import { startServerProcess, toEnv } from './processes.ts'

describe('server start-up', () => {
  it('brings up two servers started at the same moment against one empty database', async () => {
    const url = new URL(testConfig().DATABASE_URL)
    url.pathname = `/${url.pathname.slice(1)}_fresh_${randomBytes(3).toString('hex')}`
    const env = toEnv(testConfig({ DATABASE_URL: url.toString(), RUN_WORKERS: 'false', LOG_LEVEL: 'warn' }))

    const servers = await Promise.all([startServerProcess(env), startServerProcess(env)])

    const statuses = await Promise.all(
      servers.map(async (server) => (await fetch(`${server.url}/ready`)).status),
    )
    expect(statuses).toEqual([200, 200])
    const connection = await mysql.createConnection(url.toString())
    const [tables] = await connection.query('SHOW TABLES')
    const [migrations] = await connection.query('SELECT COUNT(*) AS n FROM __drizzle_migrations')
    await connection.query(`DROP DATABASE \`${url.pathname.slice(1)}\``)
    await connection.end()
    expect((tables as object[]).map((row) => Object.values(row)[0]).sort()).toEqual([
      '__drizzle_migrations',
      'applications',
      'chats',
      'job_state',
      'messages',
    ])
    const journal = JSON.parse(
      readFileSync(new URL('../db/migrations/meta/_journal.json', import.meta.url), 'utf8'),
    )
    expect((migrations as Array<{ n: number }>)[0]!.n).toBe(journal.entries.length) // each applied once
    await Promise.all(servers.map((server) => server.stop()))
  })

  it.each([
    'functions/server.ts',
    'scripts/local.ts',
    'scripts/migrate.ts',
    'scripts/reconcile.ts',
    'scripts/reindex.ts',
  ])('%s stops at once with exit code 78 and names every malformed variable', async (entry) => {
    const child = spawn(process.execPath, [fileURLToPath(new URL(`../${entry}`, import.meta.url))], {
      env: {
        PATH: process.env.PATH ?? '',
        PORT: 'eighty',
        DATABASE_URL: 'postgres://wrong',
        SQS_POLLERS: '-1',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stderr = ''
    child.stderr.on('data', (chunk) => {
      stderr += chunk
    })

    const code = await new Promise((resolve) => child.once('exit', resolve))

    expect(code).toBe(78)
    expect(stderr).toMatch(/^invalid environment/)
    expect(stderr).toMatch(/PORT="eighty": must be a whole number/)
    expect(stderr).toMatch(/DATABASE_URL="postgres:\/\/wrong": must start with mysql:\/\//)
    expect(stderr).toMatch(/SQS_POLLERS="-1"/)
  })

  it('shuts down gracefully on SIGTERM with exit code 0', async () => {
    const server = await startServerProcess(toEnv(testConfig({ LOG_LEVEL: 'warn' })))

    const code = await server.stop()

    expect(code).toBe(0)
  })
})
