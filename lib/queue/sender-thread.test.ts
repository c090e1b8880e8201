import { randomUUID } from 'node:crypto'
import { createServer, type Socket } from 'node:net'
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestDeps } from '../../tests/harness.ts'
import type { Deps } from '../deps.ts'
import type { LogFields } from '../logger.ts'
import { threadBatchSender } from './sender-thread.ts'

describe('the SQS sender thread', () => {
  let deps: Deps
  let url: string

  beforeAll(async () => {
    deps = await createTestDeps()
    url = (await deps.queueUrls()).chats
  })
  afterAll(() => deps.close())

  const errors: Array<{ msg: string; fields?: LogFields }> = []
  const logger = { error: (msg: string, fields?: LogFields) => errors.push({ msg, fields }) }
  const misbehaving = new URL('../../tests/misbehaving-sender.ts', import.meta.url)
  const settle = async (call: Promise<unknown>) => {
    const started = performance.now()
    const outcome = await call.then(
      (value) => ({ value, error: undefined }),
      (error: Error) => ({ value: undefined, error }),
    )
    return { ...outcome, ms: performance.now() - started }
  }

  it('sends each body as a message of one call and reports the entries SQS refused, by index', async () => {
    const sender = threadBatchSender(deps.config, logger)
    const tag = randomUUID()

    const refused = await sender.send(
      url,
      [`[{"tag":"${tag}","n":0}]`, 'bad \u0001', `[{"tag":"${tag}","n":2}]`],
      5_000,
    )

    expect(refused).toEqual([
      expect.objectContaining({ index: 1, code: 'InvalidMessageContents', senderFault: true }),
    ])
    const received: Array<{ tag: string; n: number }> = []
    for (let empty = 0; empty < 2; ) {
      const { Messages = [] } = await deps.sqs.send(
        new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
      )
      empty = Messages.length === 0 ? empty + 1 : 0
      for (const message of Messages) received.push(...JSON.parse(message.Body ?? '[]'))
    }
    expect(
      received
        .filter((job) => job.tag === tag)
        .map((job) => job.n)
        .sort(),
    ).toEqual([0, 2])
    await sender.close()
  })

  it('rejects a call that SQS accepts and never answers at the call deadline, not later', async () => {
    const sockets = new Set<Socket>()
    const silent = createServer((socket) => sockets.add(socket))
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
    const { port } = silent.address() as { port: number }
    const sender = threadBatchSender({ ...deps.config, SQS_ENDPOINT: `http://127.0.0.1:${port}` }, logger)
    await sender.send(url, ['warm'], 500).catch(() => {})

    const { error, ms } = await settle(sender.send(url, ['[]'], 500))

    expect(error).toBeInstanceOf(Error)
    expect(error?.message).not.toMatch(/did not answer/)
    expect(ms).toBeGreaterThanOrEqual(450)
    expect(ms).toBeLessThan(1_400)
    await sender.close()
    for (const socket of sockets) socket.destroy()
    silent.close()
  })

  it('gives up on a thread that does not answer a second past the deadline, and starts another', async () => {
    const sender = threadBatchSender(deps.config, logger, { script: misbehaving })
    errors.length = 0

    const stuck = await settle(sender.send(url, ['hang'], 300))
    const next = await settle(sender.send(url, ['ok'], 300))

    expect(stuck.error?.name).toBe('TimeoutError')
    expect(stuck.ms).toBeGreaterThanOrEqual(1_250)
    expect(stuck.ms).toBeLessThan(2_500)
    expect(errors.map((entry) => entry.msg)).toContain('the SQS sender thread is stuck; replacing it')
    expect(next).toMatchObject({ value: [], error: undefined })
    await sender.close()
  })

  it('rejects the calls in flight when the thread dies, and starts another for the next call', async () => {
    const sender = threadBatchSender(deps.config, logger, { script: misbehaving })
    await sender.send(url, ['ok'], 5_000)

    const [died, alongside] = await Promise.all([
      settle(sender.send(url, ['exit'], 5_000)),
      settle(sender.send(url, ['hang'], 5_000)),
    ])
    const next = await settle(sender.send(url, ['ok'], 5_000))

    expect(died.error?.name).toBe('SenderThreadExit')
    expect(alongside.error?.name).toBe('SenderThreadExit')
    expect(died.ms).toBeLessThan(1_000)
    expect(next).toMatchObject({ value: [], error: undefined })
    await sender.close()
  })
})
