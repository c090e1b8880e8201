import { GetQueueAttributesCommand, SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs'
import { UnavailableError } from '../errors.ts'
import type { Logger } from '../logger.ts'
import { recordJobsAccepted, trackBufferDepth } from '../metrics.ts'
import { deadline } from './client.ts'
import { MAX_JOBS_PER_MESSAGE, toSqsBody } from './message.ts'
import type { QueueName } from './provisioning.ts'

/** Sends jobs to SQS. `send` resolves only once SQS has accepted the job. */
export interface JobQueue {
  send(queue: QueueName, job: object): Promise<void>
  /** Resolves when SQS answers a call on the messages queue within `timeoutMs`. */
  ping(): Promise<void>
  /** Sends what is buffered. */
  flush(): Promise<void>
  close(): Promise<void>
}

interface Pending {
  body: string
  bytes: number
  resolve: () => void
  reject: (error: unknown) => void
}

const MAX_BATCH_ENTRIES = 10
// SQS caps a whole SendMessageBatch request at 256 KiB on LocalStack and older regions.
const MAX_BATCH_BYTES = 240 * 1024
const MAX_PACK_BYTES = MAX_BATCH_BYTES / MAX_BATCH_ENTRIES

/** Groups jobs into SQS message bodies: JSON arrays of up to MAX_JOBS_PER_MESSAGE jobs. */
const packJobs = (items: Pending[]) => {
  const packs: Array<{ items: Pending[]; bytes: number }> = []
  for (const item of items) {
    const last = packs[packs.length - 1]
    if (last && last.items.length < MAX_JOBS_PER_MESSAGE && last.bytes + item.bytes + 1 <= MAX_PACK_BYTES) {
      last.items.push(item)
      last.bytes += item.bytes + 1
    } else packs.push({ items: [item], bytes: item.bytes + 2 })
  }
  return packs
}

export interface JobQueueOptions {
  flushMs: number
  /** Deadline of one SendMessageBatch call, retries included. */
  timeoutMs: number
  /** Jobs and bytes buffered or being sent; past either bound a job is refused at once. */
  maxJobs: number
  maxBytes: number
  logger: Pick<Logger, 'warn'>
}

// What a client may assume about its create after a 503. A refusal SQS stated, or a job never
// sent, created nothing. A call that timed out or broke may have delivered the batch: the job may
// persist, and since the Idempotency-Key record was written with the number, a retry under the same
// key gets the same number and re-sends the same job, which the consumer's upsert makes a no-op.
const NOT_CREATED = 'the queue is unavailable and nothing was created or changed; try again shortly'
const MAYBE_CREATED =
  'the queue did not confirm in time, so this create or update may have happened; retrying is safe, and a create retried with the same Idempotency-Key gets the same number'

/**
 * A write-behind buffer in front of SendMessageBatch: jobs sent within `flushMs` of each other
 * share SQS messages (packs of up to 25) and calls (up to 10 messages), which is what lets one
 * server take thousands of writes a second. Each caller's promise settles with its own pack's
 * outcome, so a request answers 202 only after SQS accepted its job, and 503 when SQS refused it
 * or did not answer within `timeoutMs`. The buffer is bounded: when SQS stalls, requests past
 * `maxJobs` or `maxBytes` get their 503 at once instead of piling up in memory.
 */
export const createJobQueue = (
  sqs: SQSClient,
  urls: () => Promise<Record<QueueName, string>>,
  { flushMs, timeoutMs, maxJobs, maxBytes, logger }: JobQueueOptions,
): JobQueue => {
  const pending: Record<QueueName, Pending[]> = { chats: [], messages: [] }
  const timers: Partial<Record<QueueName, NodeJS.Timeout>> = {}
  const inFlightSends = new Set<Promise<void>>()
  const held = { jobs: 0, bytes: 0 }
  const untrackBuffer = trackBufferDepth(() => ({
    chats: pending.chats.length,
    messages: pending.messages.length,
  }))

  const sendBatch = async (queue: QueueName, packs: Array<{ items: Pending[] }>) => {
    const settle = (index: number, error?: unknown) => {
      for (const item of packs[index]!.items) {
        held.jobs--
        held.bytes -= item.bytes
        error ? item.reject(error) : item.resolve()
      }
      if (!error) recordJobsAccepted(queue, packs[index]!.items.length)
    }
    let url: string
    try {
      url = (await urls())[queue]
    } catch (error) {
      for (const index of packs.keys())
        settle(index, new UnavailableError('the queue is', { cause: error, message: NOT_CREATED }))
      return
    }
    try {
      const result = await sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: url,
          Entries: packs.map((pack, index) => ({
            Id: String(index),
            MessageBody: `[${pack.items.map((item) => item.body).join(',')}]`,
          })),
        }),
        deadline(timeoutMs),
      )
      const failed = new Map((result.Failed ?? []).map((entry) => [Number(entry.Id), entry]))
      for (const index of packs.keys()) {
        const failure = failed.get(index)
        if (!failure) settle(index)
        else {
          logger.warn('SQS refused a message', { code: failure.Code, sender_fault: failure.SenderFault })
          settle(
            index,
            new UnavailableError('the queue is', {
              cause: new Error(failure.Message ?? failure.Code),
              message: NOT_CREATED,
            }),
          )
        }
      }
    } catch (error) {
      for (const index of packs.keys())
        settle(index, new UnavailableError('the queue is', { cause: error, message: MAYBE_CREATED }))
    }
  }

  const drain = (queue: QueueName) => {
    clearTimeout(timers[queue])
    delete timers[queue]
    const batches: Array<Array<{ items: Pending[]; bytes: number }>> = []
    let bytes = 0
    for (const pack of packJobs(pending[queue].splice(0))) {
      const batch = batches[batches.length - 1]
      if (batch && batch.length < MAX_BATCH_ENTRIES && bytes + pack.bytes <= MAX_BATCH_BYTES) {
        batch.push(pack)
        bytes += pack.bytes
      } else {
        batches.push([pack])
        bytes = pack.bytes
      }
    }
    for (const batch of batches) {
      const sending = sendBatch(queue, batch).finally(() => inFlightSends.delete(sending))
      inFlightSends.add(sending)
    }
  }

  return {
    send: (queue, job) =>
      new Promise<void>((resolve, reject) => {
        const body = toSqsBody(job)
        if (held.jobs + 1 > maxJobs || held.bytes + body.length > maxBytes) {
          reject(new UnavailableError('the queue is', { message: NOT_CREATED }))
          return
        }
        held.jobs++
        held.bytes += body.length
        pending[queue].push({ body, bytes: body.length, resolve, reject })
        if (pending[queue].length >= MAX_BATCH_ENTRIES * MAX_JOBS_PER_MESSAGE || flushMs === 0) drain(queue)
        else timers[queue] ??= setTimeout(() => drain(queue), flushMs)
      }),
    ping: async () => {
      const { messages } = await urls()
      await sqs.send(
        new GetQueueAttributesCommand({ QueueUrl: messages, AttributeNames: ['QueueArn'] }),
        deadline(timeoutMs),
      )
    },
    flush: async () => {
      drain('chats')
      drain('messages')
      while (inFlightSends.size > 0) await Promise.allSettled([...inFlightSends])
    },
    close: async function close() {
      await this.flush()
      untrackBuffer()
    },
  }
}
