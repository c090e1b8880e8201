import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createApplication } from '../../lib/applications.ts'
import { createChat } from '../../lib/chats.ts'
import type { Deps } from '../../lib/deps.ts'
import { silentLogger } from '../../lib/logger.ts'
import { createMessage, updateMessage } from '../../lib/messages.ts'
import {
  addPending,
  countPending,
  createSearch,
  initialIndexName,
  readPending,
  SEARCH_PENDING_KEY,
  type Search,
} from '../../lib/search.ts'
import { createTestDeps, drainQueues } from '../../tests/harness.ts'
import { createRetryIndexingJob } from './job.ts'

describe('createRetryIndexingJob', () => {
  let deps: Deps
  let dead: Search
  let offline: Deps
  let token: string

  const numbersFor = async (q: string) => {
    await deps.search.refresh()
    const chatId = (await readChatId()) ?? 0
    return (await deps.search.search(chatId, { q, limit: 100, offset: 0 })).data
      .map((hit) => hit.number)
      .sort()
  }
  const readChatId = async () => {
    const [rows] = await deps.database.pool.query(
      'SELECT c.id FROM chats c JOIN applications a ON a.id = c.application_id WHERE a.token = ? AND c.number = 1',
      [token],
    )
    return (rows as Array<{ id: number }>)[0]?.id
  }

  beforeAll(async () => {
    deps = await createTestDeps()
    dead = createSearch(
      { ...deps.config, ELASTICSEARCH_URL: 'http://127.0.0.1:1' },
      { redis: deps.redis, logger: silentLogger },
    )
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
    const pendingBefore = await countPending(deps.redis)

    const summary = await createRetryIndexingJob(deps)()

    expect(pendingBefore).toBe(2)
    expect(summary).toMatchObject({ pending: 2, indexed: 2, failed: 0, missing: 0 })
    expect(await countPending(deps.redis)).toBe(0)
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
    const [pending] = await readPending(deps.redis, 0, 1)
    // A consumer persisted a newer body and failed to index it, after the job read the row.
    await addPending(deps.redis, [{ chatId: pending!.chatId, number, version: pending!.version + 1 }])

    const summary = await createRetryIndexingJob(deps)()

    expect(summary).toMatchObject({ indexed: 1 })
    expect(await readPending(deps.redis, 0, 10)).toEqual([
      { chatId: pending!.chatId, number, version: pending!.version + 1 },
    ])
    await deps.redis.del(SEARCH_PENDING_KEY)
  })

  it('forgets pending messages that have no row', async () => {
    await addPending(deps.redis, [{ chatId: 987_654, number: 1, version: 5 }])

    const summary = await createRetryIndexingJob(deps)()

    expect(summary).toMatchObject({ pending: 1, missing: 1, indexed: 0 })
    expect(await countPending(deps.redis)).toBe(0)
  })

  it('leaves everything pending while the engine is still down', async () => {
    await createMessage(deps, token, 1, { body: 'still down' })
    await drainQueues(offline)

    const summary = await createRetryIndexingJob(offline)()

    expect(summary).toMatchObject({ pending: 1, unavailable: true, indexed: 0 })
    expect(await countPending(deps.redis)).toBe(1)
    await createRetryIndexingJob(deps)()
    expect(await countPending(deps.redis)).toBe(0)
  })

  it('runs once at a time: a concurrent run skips', async () => {
    await addPending(deps.redis, [{ chatId: 987_655, number: 1, version: 5 }])
    const job = createRetryIndexingJob(deps)

    const results = await Promise.all([job(), job()])

    expect(results.filter((result) => result.skipped)).toHaveLength(1)
    expect(await countPending(deps.redis)).toBe(0)
  })

  it('does nothing, without asking the engine, when nothing is pending', async () => {
    expect(await createRetryIndexingJob(offline)()).toEqual({
      pending: 0,
      indexed: 0,
      stale: 0,
      failed: 0,
      missing: 0,
    })
  })
})
