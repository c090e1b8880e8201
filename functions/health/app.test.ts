import { SendMessageCommand } from '@aws-sdk/client-sqs'
import { eq } from 'drizzle-orm'
import { describe, expect, it } from 'vitest'
import { messages } from '../../db/schema.ts'
import { errorOutput, readyOutput } from '../../lib/api/schemas.ts'
import { silentLogger } from '../../lib/logger.ts'
import { countUnindexed } from '../../lib/search/outbox.ts'
import { expectShape, insertApplicationRows } from '../../tests/factories.ts'
import { createTestDeps } from '../../tests/harness.ts'
import { createHealthApp } from './app.ts'

describe('GET /health and GET /ready', () => {
  it('answers /health while the process is up, whatever the backing services do', async () => {
    const app = createHealthApp({
      logger: silentLogger,
      probes: { mysql: () => Promise.reject(new Error('down')) },
    })

    const res = await app.request('/health')

    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ status: 'ok' })
  })

  it('answers /ready with 200 when every backing service answers', async () => {
    const deps = await createTestDeps()

    const res = await createHealthApp(deps).request('/ready')

    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({
      status: 'ready',
      services: { mysql: 'up', redis: 'up', sqs: 'up' },
    })
    await deps.close()
  })

  it('shows the queue, dead-letter and index backlog in /ready, and stays ready with dead letters', async () => {
    const deps = await createTestDeps()
    await deps.sqs.send(
      new SendMessageCommand({ QueueUrl: (await deps.deadLetterUrls()).messages, MessageBody: '[]' }),
    )
    // The worker's database is shared with other files: count what this test adds to the outbox.
    const before = await countUnindexed(deps.db)
    const { chatIds } = await insertApplicationRows(deps.db, [1])
    await deps.db.update(messages).set({ unindexedVersion: 3 }).where(eq(messages.chatId, chatIds[0]!))

    const res = await createHealthApp(deps).request('/ready')

    expect(res.status).toBe(200)
    const body = expectShape(readyOutput, await res.json())
    expect(body.backlog).toMatchObject({
      queues: { messages: { visible: 0, dead_letter: 1 }, chats: { dead_letter: 0 } },
      search_index_pending: before + 1,
    })
    await deps.db.update(messages).set({ unindexedVersion: 0 }).where(eq(messages.chatId, chatIds[0]!))
    await deps.close()
  })

  it('answers /ready with 503 naming the services that do not answer, within the probe timeout', async () => {
    const deps = await createTestDeps({
      REDIS_URL: 'redis://127.0.0.1:1',
      DATABASE_URL: 'mysql://root@127.0.0.1:1/x',
    })
    const started = Date.now()

    const res = await createHealthApp(deps).request('/ready')

    expect(Date.now() - started).toBeLessThan(5_000)
    expect(res.status).toBe(503)
    expect(res.headers.get('retry-after')).toBe('5')
    const body = expectShape(errorOutput, await res.json())
    expect(body.error.code).toBe('unavailable')
    expect(body.error.details.map((d) => d.field).sort()).toEqual(['mysql', 'redis'])
    await deps.close()
  })
})
