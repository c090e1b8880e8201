import { SendMessageCommand } from '@aws-sdk/client-sqs'
import { eq } from 'drizzle-orm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { messages } from '../db/schema.ts'
import { insertApplicationRows } from '../tests/factories.ts'
import { createTestDeps } from '../tests/harness.ts'
import { createBacklogMonitor, readBacklog } from './backlog.ts'
import type { Deps } from './deps.ts'
import { silentLogger } from './logger.ts'
import { countUnindexed } from './search/outbox.ts'

describe('the backlog', () => {
  let deps: Deps
  const send = async (url: string) =>
    deps.sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: '[]' }))

  beforeAll(async () => {
    deps = await createTestDeps()
  })
  afterAll(() => deps.close())

  it('reads each queue, its dead-letter queue and the messages waiting to be indexed', async () => {
    const urls = await deps.queueUrls()
    await send(urls.messages)
    await send(urls.messages)
    await send((await deps.deadLetterUrls()).chats)
    // The worker's database is shared with other files: count what this test adds to the outbox.
    const before = await countUnindexed(deps.db)
    const { chatIds } = await insertApplicationRows(deps.db, [1])
    await deps.db.update(messages).set({ unindexedVersion: 5 }).where(eq(messages.chatId, chatIds[0]!))

    const backlog = await readBacklog({ ...deps, countIndexPending: () => countUnindexed(deps.db) })

    expect(backlog.queues).toEqual({
      chats: { visible: 0, in_flight: 0, dead_letter: 1 },
      messages: { visible: 2, in_flight: 0, dead_letter: 0 },
    })
    expect(backlog.search_index_pending).toBe(before + 1)
    await deps.db.update(messages).set({ unindexedVersion: 0 }).where(eq(messages.chatId, chatIds[0]!))
  })

  it('reads SQS at most once per interval, however often it is asked', async () => {
    const urls = await deps.queueUrls()
    const monitor = createBacklogMonitor({
      ...deps,
      logger: silentLogger,
      countIndexPending: () => countUnindexed(deps.db),
    })
    const first = await monitor.current()
    await send(urls.chats)

    const cached = await Promise.all([monitor.current(), monitor.current()])
    const fresh = await createBacklogMonitor(
      { ...deps, logger: silentLogger, countIndexPending: () => countUnindexed(deps.db) },
      { maxAgeMs: 0 },
    ).current()

    expect(cached).toEqual([first, first])
    expect(fresh.queues.chats.visible).toBe(first.queues.chats.visible + 1)
  })
})
