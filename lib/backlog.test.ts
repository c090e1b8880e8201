import { SendMessageCommand } from '@aws-sdk/client-sqs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestDeps } from '../tests/harness.ts'
import { createBacklogMonitor, readBacklog } from './backlog.ts'
import type { Deps } from './deps.ts'
import { silentLogger } from './logger.ts'
import { deadLetterUrl } from './queue.ts'
import { addPending, countPending } from './search.ts'

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
    await send(deadLetterUrl(urls.chats))
    await addPending(deps.redis, [{ chatId: 1, number: 1, version: 5 }])

    const backlog = await readBacklog({ ...deps, countIndexPending: () => countPending(deps.redis) })

    expect(backlog.queues).toEqual({
      chats: { visible: 0, in_flight: 0, dead_letter: 1 },
      messages: { visible: 2, in_flight: 0, dead_letter: 0 },
    })
    expect(backlog.search_index_pending).toBe(1)
  })

  it('reads SQS at most once per interval, however often it is asked', async () => {
    const urls = await deps.queueUrls()
    const monitor = createBacklogMonitor({
      ...deps,
      logger: silentLogger,
      countIndexPending: () => countPending(deps.redis),
    })
    const first = await monitor.current()
    await send(urls.chats)

    const cached = await Promise.all([monitor.current(), monitor.current()])
    const fresh = await createBacklogMonitor(
      { ...deps, logger: silentLogger, countIndexPending: () => countPending(deps.redis) },
      { maxAgeMs: 0 },
    ).current()

    expect(cached).toEqual([first, first])
    expect(fresh.queues.chats.visible).toBe(first.queues.chats.visible + 1)
  })
})
