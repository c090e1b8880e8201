import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestDeps, drainQueues, refreshSearch, workerDatabaseUrl } from '../../tests/harness.ts'
import { createApplication } from '../applications.ts'
import { createChat } from '../chats.ts'
import { migrateDatabase } from '../db.ts'
import type { Deps } from '../deps.ts'
import type { MessageJob } from '../jobs.ts'
import { createMessage, updateMessage } from '../messages.ts'
import { persistMessages } from '../persistence/messages.ts'
import { type ReindexProgress, reindex } from './reindex.ts'
import { resolveChatId } from './resolve-chat.ts'

// A reindex copies every message of its database: a database of this file's own keeps it to this
// file's rows, whatever the test files before it in the same worker wrote.
const databaseUrl = workerDatabaseUrl('_reindex')
const ownDeps = () => createTestDeps({ DATABASE_URL: databaseUrl })

describe('npm run reindex', () => {
  let deps: Deps
  let token: string
  let chatId: number

  const numbersFor = async (q: string) => {
    await refreshSearch(deps)
    return (await deps.search.search(chatId, { q, limit: 100, offset: 0 })).data
      .map((hit) => hit.number)
      .sort((a, b) => a - b)
  }
  const indicesOfAlias = async () =>
    Object.keys(await deps.search.client.indices.getAlias({ name: deps.search.alias }))

  beforeAll(async () => {
    await migrateDatabase(databaseUrl)
    deps = await ownDeps()
    token = (await createApplication(deps, { name: 'reindex' })).token
    await createChat(deps, token, {})
    for (let i = 1; i <= 25; i++) await createMessage(deps, token, 1, { body: `original message ${i}` })
    await drainQueues(deps)
    chatId = await resolveChatId(deps.db, token, 1)
  })
  afterAll(async () => {
    const names = await indicesOfAlias().catch(() => [])
    if (names.length > 0) await deps.search.client.indices.delete({ index: names })
    await deps.close()
  })

  it('rebuilds into a new index, swaps the alias, and keeps the writes made meanwhile', async () => {
    const before = await indicesOfAlias()
    const progress: ReindexProgress[] = []

    const summary = await reindex(deps, {
      batchSize: 10,
      // No margin: the catch-up is asked to find the rows written during the rebuild, no others.
      catchUpMarginMs: 0,
      onProgress: (p) => progress.push(p),
      // Writes during the rebuild land in the old index, through the alias.
      afterBatch: async (batch) => {
        if (batch !== 1) return
        await updateMessage(deps, token, 1, 1, { body: 'edited during the rebuild' })
        await createMessage(deps, token, 1, { body: 'created during the rebuild' })
        await drainQueues(deps)
      },
    })

    expect(summary.previous).toEqual(before)
    expect(await indicesOfAlias()).toEqual([summary.index])
    expect(summary.index).not.toEqual(before[0])
    expect(await deps.search.client.indices.exists({ index: before[0]! })).toBe(true)
    expect(progress.filter((p) => p.phase === 'rebuild').at(-1)).toMatchObject({ done: summary.indexed })
    expect(await numbersFor('original message')).toEqual(Array.from({ length: 24 }, (_, i) => i + 2))
    expect(await numbersFor('during the rebuild')).toEqual([1, 26])
  })

  it('catches up the rows persisted during the rebuild, however long before they were accepted', async () => {
    const late = (await createApplication(deps, { name: 'late' })).token
    const app = Number(await deps.redis.get(`a:{${late}}`))
    const hourAgo = (Date.now() - 60 * 60_000) * 1000
    const job = (fields: Partial<MessageJob>): MessageJob => ({
      op: 'create',
      app,
      token: late,
      chat: 1,
      message: 1,
      body: 'accepted an hour ago',
      version: hourAgo,
      ...fields,
    })
    await persistMessages(deps, [job({})])
    const lateChat = await resolveChatId(deps.db, late, 1)

    await reindex(deps, {
      // One batch: the row is copied before the late update reaches MySQL (a redriven backlog).
      afterBatch: () =>
        persistMessages(deps, [job({ op: 'update', body: 'edited an hour ago', version: hourAgo + 1 })]),
    })
    await refreshSearch(deps)
    const hits = await deps.search.search(lateChat, { q: 'an hour ago', limit: 10, offset: 0 })

    expect(hits.data.map((hit) => hit.body)).toEqual(['edited an hour ago'])
  })

  it('keeps indexing through the alias after the swap', async () => {
    const number = await createMessage(deps, token, 1, { body: 'after the swap' })
    await drainQueues(deps)

    expect(await numbersFor('after the swap')).toEqual([number])
  })

  it('deletes the previous index on request', async () => {
    const [previous] = await indicesOfAlias()

    const summary = await reindex(deps, { deleteOld: true })

    expect(summary.deleted).toEqual([previous])
    expect(await deps.search.client.indices.exists({ index: previous! })).toBe(false)
    expect((await numbersFor('original message')).length).toBe(24)
  })

  it('replaces a concrete index that took the alias name', async () => {
    const other = await ownDeps()
    await other.search.client.indices.create({ index: other.search.alias })

    const summary = await reindex(other)

    expect(summary.previous).toEqual([other.search.alias])
    expect(Object.keys(await other.search.client.indices.getAlias({ name: other.search.alias }))).toEqual([
      summary.index,
    ])
    await other.search.client.indices.delete({ index: summary.index })
    await other.close()
  })
})
