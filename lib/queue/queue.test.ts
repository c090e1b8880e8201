import { randomBytes } from 'node:crypto'
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
} from '@aws-sdk/client-sqs'
import type { SQSEvent } from 'aws-lambda'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startWorkers } from '../../functions/server.ts'
import { createTestDeps } from '../../tests/harness.ts'
import { eventually } from '../../tests/processes.ts'
import type { Deps } from '../deps.ts'
import { parseMessagePack } from '../jobs.ts'
import { silentLogger } from '../logger.ts'
import { createSqsClient } from './client.ts'
import { MAX_JOBS_PER_MESSAGE } from './message.ts'
import { startPoller } from './poller.ts'
import { createJobQueue } from './write-behind.ts'

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

  /** A client of the same SQS whose SendMessageBatch calls are recorded (what, and when they start), the first one answered `delayMs` late. */
  const slowFirstCall = (delayMs: number) => {
    const sqs = createSqsClient(deps.config)
    const calls: Array<{ entries: number; jobs: number }> = []
    const starts: number[] = []
    sqs.middlewareStack.add(
      (next) => async (args) => {
        const input = args.input as { Entries?: Array<{ MessageBody?: string }> }
        if (!input.Entries) return next(args)
        const jobs = input.Entries.reduce(
          (sum, entry) => sum + JSON.parse(entry.MessageBody ?? '[]').length,
          0,
        )
        calls.push({ entries: input.Entries.length, jobs })
        starts.push(performance.now())
        if (calls.length === 1) await new Promise((resolve) => setTimeout(resolve, delayMs))
        return next(args)
      },
      { step: 'initialize' },
    )
    const queueWith = (options: { patienceMs?: number; spacingMs?: number }) =>
      createJobQueue(sqs, deps.queueUrls, {
        flushMs: 1,
        timeoutMs: 5_000,
        maxJobs: 1_000,
        maxBytes: 1024 * 1024,
        logger: deps.logger,
        ...options,
      })
    return { sqs, calls, starts, queueWith }
  }
  const nextTurn = () => new Promise((resolve) => setImmediate(resolve))

  it('keeps one call in flight: what arrives meanwhile leaves in one call once it is answered', async () => {
    const { sqs, calls, queueWith } = slowFirstCall(300)
    const queue = queueWith({ patienceMs: 10_000 })
    const sent = [queue.send('chats', { n: 0 })]
    while (calls.length === 0) await nextTurn()
    for (let n = 1; n <= 30; n++) {
      sent.push(queue.send('chats', { n }))
      await nextTurn()
    }

    await Promise.all(sent)

    expect(calls).toEqual([
      { entries: 1, jobs: 1 },
      { entries: 2, jobs: 30 },
    ])
    sqs.destroy()
  })

  it('does not hold jobs behind a slow call: past its patience they leave in a call of their own', async () => {
    const { sqs, calls, queueWith } = slowFirstCall(2_000)
    const queue = queueWith({ patienceMs: 50 })
    const slow = queue.send('chats', { n: 0 })
    while (calls.length === 0) await nextTurn()
    const started = performance.now()

    await Promise.all([queue.send('chats', { n: 1 }), queue.send('chats', { n: 2 })])

    expect(performance.now() - started).toBeLessThan(1_000)
    expect(calls).toEqual([
      { entries: 1, jobs: 1 },
      { entries: 1, jobs: 2 },
    ])
    await slow
    sqs.destroy()
  })

  it('sends a steady trickle of jobs in calls spaced by the spacing, not one call per round trip', async () => {
    const { sqs, calls, starts, queueWith } = slowFirstCall(0)
    const queue = queueWith({ spacingMs: 25 })
    // The queues' URLs known first: a first call waiting for them would be slow, and let a second start.
    await deps.queueUrls()
    const sent: Array<Promise<void>> = []
    const started = performance.now()
    // A job every millisecond or so for 250 ms: without the spacing, a call per round trip (1–3 ms).
    for (let n = 0; n < 200; n++) {
      sent.push(queue.send('chats', { trickle: n }))
      await new Promise((resolve) => setTimeout(resolve, 1))
    }

    await Promise.all(sent)

    const elapsed = performance.now() - started
    expect(calls.reduce((sum, call) => sum + call.jobs, 0)).toBe(200)
    expect(calls.length).toBeLessThanOrEqual(Math.ceil(elapsed / 25) + 1)
    // Recorded a microtask or two after each call starts: a few ms of slack for a GC pause between.
    const gaps = starts.slice(1).map((at, i) => at - starts[i]!)
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(20)
    const received = (await receiveAll('chats')).flatMap((body) => JSON.parse(body) as object[])
    expect(received.filter((job) => 'trickle' in job)).toHaveLength(200)
    sqs.destroy()
  })

  it('does not hold a full batch for the spacing', async () => {
    const { sqs, starts, calls, queueWith } = slowFirstCall(0)
    const queue = queueWith({ spacingMs: 10_000 })

    await Promise.all(Array.from({ length: 500 }, (_, n) => queue.send('chats', { full: n })))

    expect(calls.map((call) => call.jobs)).toEqual([250, 250])
    expect(starts[1]! - starts[0]!).toBeLessThan(1_000)
    const received = (await receiveAll('chats')).flatMap((body) => JSON.parse(body) as object[])
    expect(received.filter((job) => 'full' in job)).toHaveLength(500)
    sqs.destroy()
  })

  it('does not hold a whole pack for the spacing: the jobs of the turn it filled in leave in one call', async () => {
    const { sqs, calls, queueWith } = slowFirstCall(0)
    const queue = queueWith({ spacingMs: 10_000 })
    await deps.queueUrls()
    await queue.send('chats', { pack: 0 })
    const started = performance.now()

    const few = Array.from({ length: 5 }, (_, n) => queue.send('chats', { pack: n + 1 }))
    await new Promise((resolve) => setTimeout(resolve, 300))
    const heldBack = calls.length
    const more = Array.from({ length: MAX_JOBS_PER_MESSAGE }, (_, n) => queue.send('chats', { pack: n + 6 }))
    await Promise.all([...few, ...more])

    expect(heldBack).toBe(1)
    expect(performance.now() - started).toBeLessThan(2_000)
    expect(calls.map((call) => call.jobs)).toEqual([1, 5 + MAX_JOBS_PER_MESSAGE])
    sqs.destroy()
  })

  it('rejects every caller with a 503 error when SQS cannot be reached', async () => {
    const queue = createJobQueue(
      deps.sqs,
      async () => ({ chats: 'http://127.0.0.1:1/q', messages: 'http://127.0.0.1:1/q' }),
      { flushMs: 1, timeoutMs: 1_000, maxJobs: 100, maxBytes: 1024 * 1024, logger: deps.logger },
    )

    const results = await Promise.allSettled([queue.send('chats', { a: 1 }), queue.send('chats', { a: 2 })])

    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected'])
    expect(results.map((r) => (r as PromiseRejectedResult).reason.status)).toEqual([503, 503])
  })

  it('refuses a job at once, with a 503 that says nothing was created, past the bytes held in flight', async () => {
    const queue = createJobQueue(deps.sqs, deps.queueUrls, {
      flushMs: 50,
      timeoutMs: 1_000,
      maxJobs: 100,
      maxBytes: 100_000,
      logger: deps.logger,
    })
    const big = { body: 'x'.repeat(60_000) }

    const first = queue.send('chats', big)
    const second = await queue.send('chats', big).catch((error: Error) => error)
    await first
    const third = queue.send('chats', big)

    expect(second).toMatchObject({ status: 503, message: expect.stringMatching(/nothing was created/) })
    await expect(third).resolves.toBeUndefined()
  })

  it('pauses polling while the backing services are down, so an outage does not burn receives', async () => {
    const paused = await createTestDeps({ SQS_VISIBILITY_TIMEOUT_S: '1' })
    const urls = await paused.queueUrls()
    await paused.sqs.send(new SendMessageCommand({ QueueUrl: urls.chats, MessageBody: '[]' }))
    let isDown = true
    let calls = 0
    let receivesWhenDone = 0
    const handler = async (event: SQSEvent) => {
      calls++
      if (isDown) throw new Error('database down')
      receivesWhenDone = Number(event.Records[0]!.attributes.ApproximateReceiveCount)
      return { batchItemFailures: [] }
    }

    const poller = startPoller(paused.sqs, urls.chats, 'arn:test', handler, {
      concurrency: 1,
      logger: silentLogger,
      waitSeconds: 1,
      isHealthy: async () => !isDown,
    })
    await new Promise((resolve) => setTimeout(resolve, 3_000))
    const callsWhileDown = calls
    isDown = false
    await eventually(async () => (await paused.inFlightJobs()) === 0, {
      what: 'the job persisted after recovery',
    })
    await poller.stop()

    // With a 1 s visibility timeout, 3 s of outage would otherwise have meant 3 or 4 receives.
    expect(callsWhileDown).toBe(1)
    expect(calls).toBe(2)
    expect(receivesWhenDone).toBe(2)
    await paused.close()
  })

  it('counts the jobs waiting in queues and dead-letter queues named as the AWS stack names them', async () => {
    const unique = randomBytes(3).toString('hex')
    const names = {
      SQS_CHATS_QUEUE: `Stack-ChatsQueue-${unique}`,
      SQS_MESSAGES_QUEUE: `Stack-MessagesQueue-${unique}`,
      SQS_CHATS_DEAD_LETTER_QUEUE: `Stack-ChatsDeadLetterQueue-${unique}`,
      SQS_MESSAGES_DEAD_LETTER_QUEUE: `Stack-MessagesDeadLetterQueue-${unique}`,
    }
    const urls = await Promise.all(
      Object.values(names).map(
        async (name) => (await deps.sqs.send(new CreateQueueCommand({ QueueName: name }))).QueueUrl!,
      ),
    )
    const stack = await createTestDeps({ ...names, SQS_CREATE_QUEUES: 'false' })
    await deps.sqs.send(new SendMessageCommand({ QueueUrl: urls[2], MessageBody: '[]' }))

    const inFlight = await stack.inFlightJobs()

    expect(inFlight).toBe(MAX_JOBS_PER_MESSAGE)
    await stack.close()
  })

  describe('a poller', () => {
    const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
    const inQueue = async (d: Deps, url: string) => {
      const { Attributes = {} } = await d.sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: url,
          AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
        }),
      )
      return (
        Number(Attributes.ApproximateNumberOfMessages) +
        Number(Attributes.ApproximateNumberOfMessagesNotVisible)
      )
    }

    it('lets an open receive finish when stopped, and persists what it got instead of stranding it', async () => {
      const d = await createTestDeps()
      const url = (await d.queueUrls()).chats
      const seen: string[] = []
      const poller = startPoller(
        d.sqs,
        url,
        'arn:test',
        async (event) => {
          seen.push(...event.Records.map((record) => record.body))
          return { batchItemFailures: [] }
        },
        { concurrency: 1, logger: silentLogger, waitSeconds: 3 },
      )
      await pause(1_000)

      const stopped = poller.stop()
      await d.sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'sent while stopping' }))
      await stopped

      expect(seen).toEqual(['sent while stopping'])
      expect(await inQueue(d, url)).toBe(0)
      await d.close()
    })

    it('lets a queue that keeps up fill for the batch window between receives', async () => {
      const d = await createTestDeps()
      const url = (await d.queueUrls()).chats
      const batches: number[] = []
      const poller = startPoller(
        d.sqs,
        url,
        'arn:test',
        async (event) => {
          batches.push(event.Records.length)
          return { batchItemFailures: [] }
        },
        { concurrency: 1, logger: silentLogger, waitSeconds: 1, batchWindowMs: 100 },
      )
      // A message every 5 ms or so: without the window, a receive (and a batch) per message or two.
      const started = performance.now()
      for (let n = 0; n < 120; n++) {
        await d.sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: `trickle ${n}` }))
        await pause(5)
      }

      await eventually(async () => batches.reduce((sum, size) => sum + size, 0) === 120, {
        what: 'every message handled',
      })
      const windows = Math.ceil((performance.now() - started) / 100)
      await poller.stop()

      // At most one short batch per window, besides the full ones.
      expect(batches.length).toBeLessThanOrEqual(windows + 120 / 10)
      expect(await inQueue(d, url)).toBe(0)
      await d.close()
    })

    it('keeps a slow batch invisible while it runs, so no other poller receives it again', async () => {
      const d = await createTestDeps({ SQS_VISIBILITY_TIMEOUT_S: '2' })
      const url = (await d.queueUrls()).chats
      await d.sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'slow' }))
      const receiveCounts: string[] = []
      const poller = startPoller(
        d.sqs,
        url,
        'arn:test',
        async (event) => {
          receiveCounts.push(...event.Records.map((record) => record.attributes.ApproximateReceiveCount))
          await pause(5_000)
          return { batchItemFailures: [] }
        },
        { concurrency: 2, logger: silentLogger, waitSeconds: 1, visibilityTimeoutS: 2 },
      )

      await eventually(async () => (await inQueue(d, url)) === 0, {
        what: 'the slow batch done',
        timeoutMs: 15_000,
      })
      await poller.stop()

      expect(receiveCounts).toEqual(['1'])
      await d.close()
    }, 30_000)

    it('retries the deletes SQS refuses, so a done job is not delivered again', async () => {
      const d = await createTestDeps()
      const url = (await d.queueUrls()).chats
      await d.sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'one' }))
      await d.sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'two' }))
      // SQS answers the first DeleteMessageBatch with one entry failed (as it does for an internal
      // error): that entry is really not deleted.
      const sqs = createSqsClient(d.config)
      let isRefusing = true
      sqs.middlewareStack.add(
        (next, context) => async (args) => {
          const input = args.input as { Entries?: Array<{ Id: string }> }
          if (
            context.commandName !== 'DeleteMessageBatchCommand' ||
            !isRefusing ||
            (input.Entries?.length ?? 0) < 2
          )
            return next(args)
          isRefusing = false
          const refused = input.Entries!.pop()!
          const result = await next(args)
          const output = result.output as {
            Failed?: Array<{ Id: string; Code: string; SenderFault: boolean }>
          }
          output.Failed = [
            ...(output.Failed ?? []),
            { Id: refused.Id, Code: 'InternalError', SenderFault: false },
          ]
          return result
        },
        { step: 'initialize' },
      )
      const seen: string[] = []
      const poller = startPoller(
        sqs,
        url,
        'arn:test',
        async (event) => {
          seen.push(...event.Records.map((record) => record.body))
          return { batchItemFailures: [] }
        },
        { concurrency: 1, logger: silentLogger, waitSeconds: 1 },
      )

      await eventually(async () => seen.length >= 2 && (await inQueue(d, url)) === 0, {
        what: 'both jobs done and deleted',
        timeoutMs: 10_000,
      })
      await poller.stop()

      expect(isRefusing).toBe(false)
      expect(seen.sort()).toEqual(['one', 'two'])
      sqs.destroy()
      await d.close()
    })
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
    expect(parseMessagePack('{"not":"a job"}')).toEqual([
      expect.objectContaining({ error: expect.anything() }),
    ])

    const workers = await startWorkers(poisoned)
    const dlqUrl = (await poisoned.deadLetterUrls()).messages
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
