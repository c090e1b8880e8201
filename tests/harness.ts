import { randomBytes } from 'node:crypto'
import mysql from 'mysql2/promise'
import { inject } from 'vitest'
import { type Config, loadConfig } from '../lib/config.ts'
import { migrateDatabase } from '../lib/db.ts'
import { createDeps, type Deps } from '../lib/deps.ts'
import { silentLogger } from '../lib/logger.ts'

const worker = process.env.VITEST_POOL_ID ?? process.env.VITEST_WORKER_ID ?? '0'

/** The MySQL server under test: TEST_DATABASE_URL, else DATABASE_URL's server, else local root. */
const serverUrl = () => {
  const url = new URL(process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL ?? 'mysql://root@127.0.0.1:3306/')
  url.pathname = '/'
  return url
}

/** One database per test worker, so test files in parallel workers never share rows. */
export const workerDatabaseUrl = () => {
  const url = serverUrl()
  url.pathname = `/chat_test_w${worker}`
  return url.toString()
}

let migrated: Promise<void> | undefined

/** Migrates the worker's database once per worker process. */
export const prepareDatabase = () => {
  migrated ??= migrateDatabase(workerDatabaseUrl())
  return migrated
}

/**
 * Config for a test: the worker's database, a Redis key prefix of its own (so files never see each
 * other's keys), queue and index names of its own, and the emulators the global setup started.
 */
export const testConfig = (overrides: Record<string, string> = {}): Config => {
  const unique = `w${worker}${randomBytes(3).toString('hex')}`
  return loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    DATABASE_URL: workerDatabaseUrl(),
    REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    REDIS_KEY_PREFIX: `test:${unique}:`,
    SQS_ENDPOINT: inject('sqsEndpoint'),
    SQS_CHATS_QUEUE: `chats-${unique}`,
    SQS_MESSAGES_QUEUE: `messages-${unique}`,
    ELASTICSEARCH_URL: inject('elasticsearchUrl'),
    SEARCH_INDEX: `messages-${unique}`,
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    ...overrides,
  })
}

/** Deps against the real services, with a silent logger. Call `close()` after the file. */
export const createTestDeps = async (overrides: Record<string, string> = {}): Promise<Deps> => {
  await prepareDatabase()
  return createDeps(testConfig(overrides), { logger: silentLogger })
}

/** Empties the worker's tables: tests start from nothing. */
export const resetDatabase = async () => {
  const connection = await mysql.createConnection(workerDatabaseUrl())
  try {
    for (const table of ['messages', 'chats', 'applications']) await connection.query(`TRUNCATE TABLE ${table}`)
  } finally {
    await connection.end()
  }
}
