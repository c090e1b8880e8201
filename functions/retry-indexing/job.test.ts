import { sql } from 'drizzle-orm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { messages } from '../../db/schema.ts'
import { createApplication } from '../../lib/applications.ts'
import { createChat } from '../../lib/chats.ts'
import { migrateDatabase } from '../../lib/db.ts'
import type { Deps } from '../../lib/deps.ts'
import type { MessageJob } from '../../lib/jobs.ts'
import { silentLogger } from '../../lib/logger.ts'
import { createMessage, updateMessage } from '../../lib/messages.ts'
import { persistMessages } from '../../lib/persistence/messages.ts'
import { createSearch, type Search } from '../../lib/search/client.ts'
import { initialIndexName } from '../../lib/search/index-settings.ts'
import { countUnindexed } from '../../lib/search/outbox.ts'
import { createTestDeps, drainQueues, poolOf, refreshSearch, workerDatabaseUrl } from '../../tests/harness.ts'
import { createRetryIndexingJob } from './job.ts'

// The job and these tests read the whole outbox of their database: a database of this file's own
// keeps it to this file's rows. In the worker's, an earlier file's consumers can leave rows there
// (a bulk write that timed out on a busy machine is the outbox's job), and one CI run found 553.
const databaseUrl = workerDatabaseUrl('_retry_indexing')

describe('createRetryIndexingJob', () => {
  let deps: Deps
  let dead: Search
  let offline: Deps
  let token: string

  const numbersFor = async (q: string) => {
    await refreshSearch(deps)
    const chatId = (await readChatId()) ?? 0
    return (await deps.search.search(chatId, { q, limit: 100, offset: 0 })).data
      .map((hit) => hit.number)
      .sort()
  }
  const readChatId = async () => {
    const [rows] = await poolOf(deps).query(
      'SELECT c.id FROM chats c JOIN applications a ON a.id = c.application_id WHERE a.token = ? AND c.number = 1',
      [token],
    )
    return (rows as Array<{ id: number }>)[0]?.id
  }

  beforeAll(async () => {
    await migrateDatabase(databaseUrl)
    deps = await createTestDeps({ DATABASE_URL: databaseUrl })
    dead = createSearch({ ...deps.config, ELASTICSEARCH_URL: 'http://127.0.0.1:1' }, { logger: silentLogger })
    // The same services, but a search engine that does not answer: what the consumers see in an outage.
    offline = { ...deps, search: dead }
    token = (await createApplication(deps, { name: 'retry' })).token
    await createChat(deps, token, {})
    await drainQueues(deps)
  })
  afterAll(async () => {
    await deps.search.client.indices.delete({ index: initialIndexName(deps.config.SEARCH_INDEX) })
    await dead.close()
    await deps.close()
  })

  it('indexes what the consumers could not, from MySQL, and empties the outbox', async () => {
    await createMessage(deps, token, 1, { body: 'written during the outage' })
    await createMessage(deps, token, 1, { body: 'also during the outage' })
    await drainQueues(offline)
    const pendingBefore = await countUnindexed(deps.db)

    const summary = await createRetryIndexingJob(deps)()

    expect(pendingBefore).toBe(2)
    expect(summary).toMatchObject({ pending: 2, indexed: 2, failed: 0 })
    expect(await countUnindexed(deps.db)).toBe(0)
    expect(await numbersFor('during the outage')).toEqual([1, 2])
  })

  it('indexes the body MySQL holds now, not the one that failed', async () => {
    const number = await createMessage(deps, token, 1, { body: 'first draft' })
    await drainQueues(offline)
    await updateMessage(deps, token, 1, number, { body: 'final wording' })
    await drainQueues(offline)

    await createRetryIndexingJob(deps)()

    expect(await numbersFor('final wording')).toEqual([number])
    expect(await numbersFor('first draft')).toEqual([])
  })

  it('keeps a message pending when a newer version failed after its row was read', async () => {
    const number = await createMessage(deps, token, 1, { body: 'racing an update' })
    await drainQueues(offline)
    // A consumer persisted a newer body and failed to index it, after the job read the row.
    await deps.db
      .update(messages)
      .set({ unindexedVersion: sql`body_version + 1` })
      .where(sql`unindexed_version > 0`)

    const summary = await createRetryIndexingJob(deps)()

    expect(summary).toMatchObject({ indexed: 1 })
    expect(await countUnindexed(deps.db)).toBe(1)
    expect(await numbersFor('racing an update')).toEqual([number])
    await deps.db.update(messages).set({ unindexedVersion: 0 })
  })

  it('leaves everything pending while the engine is still down', async () => {
    await createMessage(deps, token, 1, { body: 'still down' })
    await drainQueues(offline)

    const summary = await createRetryIndexingJob(offline)()

    expect(summary).toMatchObject({ pending: 1, unavailable: true, indexed: 0 })
    expect(await countUnindexed(deps.db)).toBe(1)
    await createRetryIndexingJob(deps)()
    expect(await countUnindexed(deps.db)).toBe(0)
  })

  it('runs once at a time: a concurrent run skips', async () => {
    await createMessage(deps, token, 1, { body: 'one run' })
    await drainQueues(offline)
    const job = createRetryIndexingJob(deps)

    const results = await Promise.all([job(), job()])

    expect(results.filter((result) => result.skipped)).toHaveLength(1)
    expect(await countUnindexed(deps.db)).toBe(0)
  })

  it('does nothing, without asking the engine, when nothing is pending', async () => {
    expect(await createRetryIndexingJob(offline)()).toEqual({ pending: 0, indexed: 0, stale: 0, failed: 0 })
  })

  it('indexes all 10,000 messages persisted during an outage after Redis lost everything meanwhile', {
    timeout: 60_000,
  }, async () => {
    const { token: other, id: app } = await createApplication(deps, { name: 'outage' }).then(async (a) => ({
      token: a.token,
      id: Number(await deps.redis.get(`a:{${a.token}}`)),
    }))
    const base = Date.parse('2026-11-24T10:00:00.000Z') * 1000
    const jobs: MessageJob[] = Array.from({ length: 10_000 }, (_, i) => ({
      op: 'create',
      app,
      token: other,
      chat: 1,
      message: i + 1,
      body: `lost in the flush ${i + 1}`,
      version: base + i,
    }))
    for (let i = 0; i < jobs.length; i += 250) await persistMessages(offline, jobs.slice(i, i + 250))
    // Redis loses everything it held (this file's keys: the Redis is shared with other test files).
    const keys = await deps.redis.keys('*')
    const prefix = deps.config.REDIS_KEY_PREFIX
    if (keys.length > 0) await deps.redis.del(...keys.map((key) => key.slice(prefix.length)))

    const summary = await createRetryIndexingJob(deps)()
    await refreshSearch(deps)
    const [chat] = await poolOf(deps).query('SELECT id FROM chats WHERE application_id = ? AND number = 1', [
      app,
    ])
    const chatId = (chat as Array<{ id: number }>)[0]!.id
    const { count } = await deps.search.client.count({
      index: deps.search.alias,
      query: { term: { chat_id: chatId } },
    })

    expect(summary).toMatchObject({ pending: 10_000, indexed: 10_000, failed: 0 })
    expect(count).toBe(10_000)
    expect(await countUnindexed(deps.db)).toBe(0)
  })
})
