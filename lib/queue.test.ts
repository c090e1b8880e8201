import { GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startWorkers } from '../functions/server.ts'
import { createTestDeps } from '../tests/harness.ts'
import { eventually } from '../tests/processes.ts'
import type { Deps } from './deps.ts'
import { parseMessageJobs } from './jobs.ts'
import { createJobQueue, deadLetterUrl, MAX_JOBS_PER_MESSAGE } from './queue.ts'

describe('the SQS job queue', () => {
  let deps: Deps

  beforeAll(async () => {
    deps = await createTestDeps({ SQS_FLUSH_MS: '5' })
  })
  afterAll(() => deps.close())

  const receiveAll = async (queue: 'chats' | 'messages') => {
    const url = (await deps.queueUrls())[queue]
    const bodies: string[] = []
    for (;;) {
      const { Messages = [] } = await deps.sqs.send(
        new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
      )
      if (Messages.length === 0) return bodies
      bodies.push(...Messages.map((m) => m.Body ?? ''))
    }
  }

  it('packs concurrent jobs into few SQS messages and settles every caller once SQS has them', async () => {
    const jobs = Array.from({ length: 120 }, (_, i) => ({ op: 'create', n: i, body: `héllo ${i} 🙂` }))

    await Promise.all(jobs.map((job) => deps.queue.send('messages', job)))

    const bodies = await receiveAll('messages')
    expect(bodies.length).toBe(Math.ceil(120 / MAX_JOBS_PER_MESSAGE))
    expect(bodies.every((body) => /^[\x20-\x7e]*$/.test(body))).toBe(true)
    const received = bodies.flatMap((body) => JSON.parse(body) as Array<{ n: number; body: string }>)
    expect(received.map((job) => job.n).sort((a, b) => a - b)).toEqual(jobs.map((job) => job.n))
    expect(received.find((job) => job.n === 7)?.body).toBe('héllo 7 🙂')
  })

  it('splits large jobs over calls that stay under the request size limit', async () => {
    const big = 'é'.repeat(10_000) // 60,000 bytes once escaped
    const jobs = Array.from({ length: 12 }, (_, i) => ({ op: 'create', n: i, body: big }))

    await Promise.all(jobs.map((job) => deps.queue.send('chats', job)))

    const received = (await receiveAll('chats')).flatMap((body) => JSON.parse(body) as Array<{ n: number }>)
    expect(received).toHaveLength(12)
  })

  it('rejects every caller with a 503 error when SQS cannot be reached', async () => {
    const queue = createJobQueue(
      deps.sqs,
      async () => ({ chats: 'http://127.0.0.1:1/q', messages: 'http://127.0.0.1:1/q' }),
      {
        flushMs: 1,
        logger: deps.logger,
      },
    )

    const results = await Promise.allSettled([queue.send('chats', { a: 1 }), queue.send('chats', { a: 2 })])

    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected'])
    expect(results.map((r) => (r as PromiseRejectedResult).reason.status)).toEqual([503, 503])
  })

  it('sends a job that keeps failing to the dead-letter queue after the receive limit', async () => {
    const poisoned = await createTestDeps({
      SQS_MAX_RECEIVES: '2',
      SQS_VISIBILITY_TIMEOUT_S: '1',
      SQS_POLLERS: '1',
    })
    const urls = await poisoned.queueUrls()
    await poisoned.sqs.send(
      new SendMessageCommand({ QueueUrl: urls.messages, MessageBody: '{"not":"a job"}' }),
    )
    expect(() => parseMessageJobs('{"not":"a job"}')).toThrow()

    const workers = await startWorkers(poisoned)
    const dlqUrl = deadLetterUrl(urls.messages)
    await eventually(
      async () => {
        const { Attributes } = await poisoned.sqs.send(
          new GetQueueAttributesCommand({
            QueueUrl: dlqUrl,
            AttributeNames: ['ApproximateNumberOfMessages'],
          }),
        )
        return Attributes?.ApproximateNumberOfMessages === '1'
      },
      { what: 'the poisoned job in the dead-letter queue', timeoutMs: 30_000 },
    )
    await workers.stop()
    await poisoned.close()
  })
})
