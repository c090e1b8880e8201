import {
  ChangeMessageVisibilityBatchCommand,
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SetQueueAttributesCommand,
  SQSClient,
} from '@aws-sdk/client-sqs'
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda'
import type { Config } from './config.ts'
import { UnavailableError } from './errors.ts'
import type { Logger } from './logger.ts'
import { recordJobsAccepted, trackBufferDepth } from './metrics.ts'

export type QueueName = 'chats' | 'messages'

/** Sends jobs to SQS. `send` resolves only once SQS has accepted the job. */
export interface JobQueue {
  send(queue: QueueName, job: object): Promise<void>
  /** Resolves when SQS answers a call on the messages queue within `timeoutMs`. */
  ping(): Promise<void>
  /** Sends what is buffered. */
  flush(): Promise<void>
  close(): Promise<void>
}

/**
 * The SQS client, always with an explicit endpoint. On AWS the SDK's default chain finds the
 * credentials (Lambda's role comes with a session token); emulators (LocalStack, fauxqs) accept
 * any, so off AWS the client takes the configured keys or dummy ones instead of searching profiles.
 */
export const createSqsClient = (config: Config) => {
  const isAws = new URL(config.SQS_ENDPOINT).hostname.endsWith('.amazonaws.com')
  const credentials = isAws
    ? undefined
    : {
        accessKeyId: config.AWS_ACCESS_KEY_ID ?? 'local',
        secretAccessKey: config.AWS_SECRET_ACCESS_KEY ?? 'local',
      }
  return new SQSClient({
    region: config.AWS_REGION,
    endpoint: config.SQS_ENDPOINT,
    ...(credentials && { credentials }),
    maxAttempts: 2,
    // A bound on a silent socket for every call, long polls included (they wait up to 20 s);
    // request-path calls have a tighter deadline of their own (SQS_TIMEOUT_MS).
    requestHandler: { connectionTimeout: 2_000, socketTimeout: 30_000 },
  })
}

/** Send options that give up on an SQS call, retries included, after `ms`. */
export const deadline = (ms: number) => ({ abortSignal: AbortSignal.timeout(ms) })

const queueNames = (config: Config): Record<QueueName, string> => ({
  chats: config.SQS_CHATS_QUEUE,
  messages: config.SQS_MESSAGES_QUEUE,
})

/** Dead-letter queue name of a queue, unless configured. */
export const deadLetterName = (name: string) => `${name}-dlq`

const deadLetterNames = (config: Config): Record<QueueName, string> => ({
  chats: config.SQS_CHATS_DEAD_LETTER_QUEUE ?? deadLetterName(config.SQS_CHATS_QUEUE),
  messages: config.SQS_MESSAGES_DEAD_LETTER_QUEUE ?? deadLetterName(config.SQS_MESSAGES_QUEUE),
})

/**
 * Creates the queues, their dead-letter queues and redrive policies if missing. Idempotent; safe
 * when several servers run it at once (CreateQueue returns the existing queue).
 */
export const ensureQueues = async (sqs: SQSClient, config: Config): Promise<Record<QueueName, string>> => {
  const urls = {} as Record<QueueName, string>
  for (const [queue, name] of Object.entries(queueNames(config)) as Array<[QueueName, string]>) {
    const dlq = await sqs.send(
      new CreateQueueCommand({
        QueueName: deadLetterNames(config)[queue],
        Attributes: { MessageRetentionPeriod: '1209600' },
      }),
    )
    const { Attributes } = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: dlq.QueueUrl, AttributeNames: ['QueueArn'] }),
    )
    const attributes = {
      VisibilityTimeout: String(config.SQS_VISIBILITY_TIMEOUT_S),
      MessageRetentionPeriod: '1209600',
      RedrivePolicy: JSON.stringify({
        deadLetterTargetArn: Attributes?.QueueArn,
        maxReceiveCount: String(config.SQS_MAX_RECEIVES),
      }),
    }
    try {
      urls[queue] = (await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes })))
        .QueueUrl!
    } catch (error) {
      // The queue exists with other attributes (an operator changed them): align them.
      if (!/QueueAlreadyExists|QueueNameExists/.test(String((error as Error).name))) throw error
      urls[queue] = (await sqs.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl!
      await sqs.send(new SetQueueAttributesCommand({ QueueUrl: urls[queue], Attributes: attributes }))
    }
  }
  return urls
}

const lookUp = async (
  sqs: SQSClient,
  names: Record<QueueName, string>,
): Promise<Record<QueueName, string>> => {
  const entries = await Promise.all(
    (Object.entries(names) as Array<[QueueName, string]>).map(
      async ([queue, name]) =>
        // In Lambda this runs on a request's path: it must not outlast the request.
        [
          queue,
          (await sqs.send(new GetQueueUrlCommand({ QueueName: name }), deadline(5_000))).QueueUrl!,
        ] as const,
    ),
  )
  return Object.fromEntries(entries) as Record<QueueName, string>
}

/** Looks up the queue URLs without creating anything (Lambda, where the stack owns the queues). */
export const lookUpQueues = (sqs: SQSClient, config: Config) => lookUp(sqs, queueNames(config))

/** Looks up the dead-letter queues' URLs, by their configured names. */
export const lookUpDeadLetterQueues = (sqs: SQSClient, config: Config) => lookUp(sqs, deadLetterNames(config))

/**
 * An upper bound on the jobs in these queues: every message, visible, in flight or delayed, counted
 * as a full pack.
 */
export const countQueuedJobs = async (sqs: SQSClient, queueUrls: string[], timeoutMs: number) => {
  const counts = await Promise.all(
    queueUrls.map(async (url) => {
      const { Attributes = {} } = await sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: url,
          AttributeNames: [
            'ApproximateNumberOfMessages',
            'ApproximateNumberOfMessagesNotVisible',
            'ApproximateNumberOfMessagesDelayed',
          ],
        }),
        deadline(timeoutMs),
      )
      return Object.values(Attributes).reduce((sum, value) => sum + Number(value ?? 0), 0)
    }),
  )
  return counts.reduce((sum, count) => sum + count, 0) * MAX_JOBS_PER_MESSAGE
}

/**
 * JSON with every non-ASCII character escaped. SQS accepts only some of Unicode in a body (and
 * emulators accept less: fauxqs refuses emoji), while a chat message may hold any of it.
 */
export const toSqsBody = (job: object) =>
  JSON.stringify(job).replace(
    /[\u007f-\uffff]/g,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`,
  )

interface Pending {
  body: string
  bytes: number
  resolve: () => void
  reject: (error: unknown) => void
}

const MAX_BATCH_ENTRIES = 10
// SQS caps a whole SendMessageBatch request at 256 KiB on LocalStack and older regions.
const MAX_BATCH_BYTES = 240 * 1024
/** At most this many jobs share one SQS message: it bounds what a re-seed must skip (lib/numbering/). */
export const MAX_JOBS_PER_MESSAGE = 25
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

export type BatchHandler = (event: SQSEvent) => Promise<SQSBatchResponse>

export interface Poller {
  stop(): Promise<void>
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** A poller's deletes and visibility changes: short calls, bounded so that a stop always ends. */
const CALL_TIMEOUT_MS = 10_000

/**
 * Long-polls a queue and hands each batch, shaped as Lambda's SQSEvent, to the same consumer
 * function the cloud runs. Deletes what succeeded; failures come back after a short backoff
 * and, past the receive limit, go to the dead-letter queue by the queue's redrive policy.
 *
 * Nothing a poller holds is spent by a deploy or a slow batch: stopping lets an open receive
 * finish (SQS may already have handed it messages, each counting one receive) and processes what
 * it got; a batch keeps its messages invisible for as long as it runs (a heartbeat extends their
 * visibility every third of the timeout); deletes that SQS refuses, in part or whole, are retried.
 */
export const startPoller = (
  sqs: SQSClient,
  queueUrl: string,
  queueArn: string,
  handler: BatchHandler,
  {
    concurrency,
    logger,
    waitSeconds = 2,
    visibilityTimeoutS = 30,
    isHealthy = async () => true,
  }: {
    concurrency: number
    logger: Logger
    /** The long poll; stopping waits for it, so it bounds the shutdown (and sets the empty-poll rate). */
    waitSeconds?: number
    /** The queue's visibility timeout, renewed while the consumer runs. */
    visibilityTimeoutS?: number
    /** Whether what the consumer writes to answers; while it does not, polling pauses. */
    isHealthy?: () => Promise<boolean>
  },
): Poller => {
  let isStopping = false
  // Shared by the loops: one outage pauses them all, and one probe at a time decides.
  let outage: Promise<void> | undefined

  // A batch that failed because the database is down would burn one receive per redelivery and
  // reach the dead-letter queue within a short outage. Instead the failed jobs keep their full
  // visibility timeout, and nothing is received until the backing services answer again.
  const waitForRecovery = () => {
    outage ??= (async () => {
      logger.warn('backing services down: polling paused')
      for (let delay = 500; !isStopping && !(await isHealthy()); delay = Math.min(delay * 2, 5_000)) {
        await pause(delay)
      }
      logger.warn('backing services back: polling resumed')
      outage = undefined
    })()
    return outage
  }

  const setVisibility = async (records: SQSRecord[], seconds: (record: SQSRecord) => number) => {
    const { Failed = [] } = await sqs.send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: queueUrl,
        Entries: records.map((record, index) => ({
          Id: String(index),
          ReceiptHandle: record.receiptHandle,
          VisibilityTimeout: seconds(record),
        })),
      }),
      deadline(CALL_TIMEOUT_MS),
    )
    if (Failed.length > 0)
      throw new Error(`SQS refused ${Failed.length} visibility changes: ${Failed[0]!.Code}`)
  }

  /** Runs the handler while renewing the batch's visibility. */
  const handleWithHeartbeat = async (records: SQSRecord[]) => {
    const heartbeat = setInterval(
      () => {
        setVisibility(records, () => visibilityTimeoutS).catch((error) =>
          logger.warn('could not extend the visibility of a running batch', { err: error }),
        )
      },
      // A third of the timeout: two chances to land before the batch would become visible.
      Math.max(500, (visibilityTimeoutS * 1000) / 3),
    )
    try {
      return await handler({ Records: records })
    } finally {
      clearInterval(heartbeat)
    }
  }

  /** Deletes the done records, retrying the entries SQS refuses; what stays is redelivered (idempotent). */
  const deleteDone = async (records: SQSRecord[]) => {
    let pending = records
    for (let attempt = 1; ; attempt++) {
      try {
        const { Failed = [] } = await sqs.send(
          new DeleteMessageBatchCommand({
            QueueUrl: queueUrl,
            Entries: pending.map((record, index) => ({
              Id: String(index),
              ReceiptHandle: record.receiptHandle,
            })),
          }),
          deadline(CALL_TIMEOUT_MS),
        )
        const refused = new Set(Failed.map((entry) => Number(entry.Id)))
        pending = pending.filter((_, index) => refused.has(index))
        if (pending.length === 0) return
        logger.warn('SQS refused some deletes', { count: pending.length, code: Failed[0]?.Code, attempt })
      } catch (error) {
        logger.warn('deleting done jobs failed', { err: error, attempt })
      }
      if (attempt === 4) {
        logger.error('done jobs could not be deleted; they will be delivered again', {
          count: pending.length,
        })
        return
      }
      await pause(100 * 2 ** attempt)
    }
  }

  const pollOnce = async () => {
    // Not aborted on stop: SQS may hand messages to a receive the client gave up on, and they
    // would then wait out their visibility timeout with one receive spent. Only an SQS that does
    // not answer at all (well past the long poll) is given up on, so that a stop always ends.
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: waitSeconds,
        MessageSystemAttributeNames: [
          'ApproximateReceiveCount',
          'SentTimestamp',
          'ApproximateFirstReceiveTimestamp',
        ],
      }),
      deadline((waitSeconds + 5) * 1000),
    )
    if (Messages.length === 0) return
    const records: SQSRecord[] = Messages.map((message) => ({
      messageId: message.MessageId!,
      receiptHandle: message.ReceiptHandle!,
      body: message.Body ?? '',
      attributes: {
        ApproximateReceiveCount: message.Attributes?.ApproximateReceiveCount ?? '1',
        SentTimestamp: message.Attributes?.SentTimestamp ?? '0',
        SenderId: '',
        ApproximateFirstReceiveTimestamp: message.Attributes?.ApproximateFirstReceiveTimestamp ?? '0',
      },
      messageAttributes: {},
      md5OfBody: message.MD5OfBody ?? '',
      eventSource: 'aws:sqs',
      eventSourceARN: queueArn,
      awsRegion: '',
    }))
    // Another loop found the services down while this one waited: give the jobs back untouched.
    if (outage) {
      await setVisibility(records, () => 0).catch(() => undefined)
      return
    }
    let failedIds = new Set(records.map((record) => record.messageId))
    let isOutage = false
    try {
      const response = await handleWithHeartbeat(records)
      failedIds = new Set(response.batchItemFailures.map((failure) => failure.itemIdentifier))
    } catch (error) {
      isOutage = !(await isHealthy())
      logger.error('consumer failed the whole batch', { err: error, size: records.length, outage: isOutage })
    }
    const done = records.filter((record) => !failedIds.has(record.messageId))
    const failed = records.filter((record) => failedIds.has(record.messageId))
    if (done.length > 0) await deleteDone(done)
    if (isOutage) return waitForRecovery()
    if (failed.length > 0) {
      await setVisibility(failed, (record) =>
        Math.min(2 ** Number(record.attributes.ApproximateReceiveCount), 60),
      ).catch((error) => logger.warn('could not shorten the visibility of failed jobs', { err: error }))
    }
  }

  const loop = async () => {
    let backoff = 100
    while (!isStopping) {
      try {
        await outage
        if (isStopping) break
        await pollOnce()
        backoff = 100
      } catch (error) {
        if (isStopping) break
        logger.warn('polling failed, retrying', { err: error, delay_ms: backoff })
        await pause(backoff)
        backoff = Math.min(backoff * 2, 5_000)
      }
    }
  }

  const loops = Array.from({ length: concurrency }, loop)
  return {
    stop: async () => {
      isStopping = true
      await Promise.allSettled(loops)
    },
  }
}

/** The ARN of a queue, for SQSEvent records. */
export const queueArnOf = async (sqs: SQSClient, queueUrl: string) => {
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }),
  )
  return Attributes?.QueueArn ?? queueUrl
}
