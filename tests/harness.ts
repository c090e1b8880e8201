import { randomBytes } from 'node:crypto'
import { inject } from 'vitest'
import { type Config, loadConfig } from '../lib/config.ts'
import { migrateDatabase, poolOf as poolOfDb } from '../lib/db.ts'
import { createDeps, type Deps } from '../lib/deps.ts'
import { silentLogger } from '../lib/logger.ts'
import { initialIndexName } from '../lib/search/index-settings.ts'
import { serverUrl } from './harness-url.ts'
import { runDatabasePrefix, runNames } from './run-resources.ts'

const worker = process.env.VITEST_POOL_ID ?? process.env.VITEST_WORKER_ID ?? '0'

/**
 * One database per test worker and run, so test files in parallel workers never share rows; a
 * `suffix` names another of the run's databases, for a file that needs one of its own.
 */
export const workerDatabaseUrl = (suffix = '') => {
  const url = new URL(serverUrl())
  url.pathname = `/${runDatabasePrefix(inject('runId'))}w${worker}${suffix}`
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
    ...runNames(inject('runId'), unique),
    SQS_ENDPOINT: inject('sqsEndpoint'),
    ELASTICSEARCH_URL: inject('elasticsearchUrl'),
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    ...overrides,
  })
}

/**
 * Deps against the real services, with a silent logger. Call `close()` after the file: it also
 * deletes the file's search index, which would otherwise pile up on a real cluster.
 */
export const createTestDeps = async (overrides: Record<string, string> = {}): Promise<Deps> => {
  await prepareDatabase()
  const deps = createDeps(testConfig(overrides), { logger: silentLogger })
  return {
    ...deps,
    close: async () => {
      await deps.search.client.indices
        .delete(
          { index: initialIndexName(deps.config.SEARCH_INDEX) },
          { ignore: [404], requestTimeout: 2_000 },
        )
        .catch(() => undefined)
      await deps.close()
    },
  }
}

/** Makes everything written through the deps' search alias searchable now, not within a second. */
export const refreshSearch = async (deps: Pick<Deps, 'search'>) => {
  await deps.search.client.indices.refresh({ index: deps.search.alias })
}

/** The deps' mysql2 pool (drizzle's client), for tests that watch or bypass the query builder. */
export const poolOf = (deps: Pick<Deps, 'db'>) => poolOfDb(deps.db)

/** Counts the queries the deps' MySQL pool runs from now on (each takes a connection). */
export const countQueries = (deps: Deps) => {
  let count = 0
  const listener = () => {
    count++
  }
  poolOf(deps).on('acquire', listener)
  return {
    get count() {
      return count
    },
    stop: () => poolOf(deps).off('acquire', listener),
  }
}

/**
 * Feeds everything queued for these deps to the real consumer functions, the way the server's
 * pollers do, until both queues stay empty. Returns how many jobs were persisted.
 */
export const drainQueues = async (deps: Deps, { timeoutMs = 20_000 } = {}) => {
  const { deleteDone, receiveRecords } = await import('../lib/queue/poller.ts')
  const { createPersistChatsConsumer } = await import('../functions/persist-chats/consumer.ts')
  const { createPersistMessagesConsumer } = await import('../functions/persist-messages/consumer.ts')
  const consumers = { chats: createPersistChatsConsumer(deps), messages: createPersistMessagesConsumer(deps) }
  await deps.queue.flush()
  const urls = await deps.queueUrls()
  const deadline = Date.now() + timeoutMs
  let persisted = 0
  // Chats first, so that message batches usually find their chat (the consumers cope either way).
  for (const queue of ['chats', 'messages'] as const) {
    for (let empty = 0; empty < 2; ) {
      if (Date.now() > deadline) throw new Error(`queue ${queue} did not drain in ${timeoutMs} ms`)
      // The queue's URL stands in for its ARN, which only labels the records.
      const records = await receiveRecords(deps.sqs, urls[queue], urls[queue], 0)
      if (records.length === 0) {
        empty++
        continue
      }
      empty = 0
      // A consumer throws when every record failed: they all stay in the queue, as with Lambda.
      const { batchItemFailures } = await consumers[queue]({ Records: records }).catch(() => ({
        batchItemFailures: records.map((record) => ({ itemIdentifier: record.messageId })),
      }))
      const failed = new Set(batchItemFailures.map((f) => f.itemIdentifier))
      const done = records.filter((record) => !failed.has(record.messageId))
      persisted += done.length
      if (done.length > 0) await deleteDone(deps.sqs, urls[queue], done, deps.logger)
    }
  }
  return persisted
}
