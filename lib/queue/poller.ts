import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs'
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda'
import type { Logger } from '../logger.ts'
import { deadline } from './client.ts'

export type BatchHandler = (event: SQSEvent) => Promise<SQSBatchResponse>

export interface Poller {
  stop(): Promise<void>
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** The most messages one receive hands over (SQS's limit). */
const MAX_MESSAGES = 10

/** A poller's deletes and visibility changes: short calls, bounded so that a stop always ends. */
const CALL_TIMEOUT_MS = 10_000

/** One receive (up to 10 messages, long-polling `waitSeconds`), as the records of Lambda's SQSEvent. */
export const receiveRecords = async (
  sqs: SQSClient,
  queueUrl: string,
  queueArn: string,
  waitSeconds: number,
): Promise<SQSRecord[]> => {
  // Not aborted on stop: SQS may hand messages to a receive the client gave up on, and they
  // would then wait out their visibility timeout with one receive spent. Only an SQS that does
  // not answer at all (well past the long poll) is given up on, so that a stop always ends.
  const { Messages = [] } = await sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: queueUrl,
      MaxNumberOfMessages: MAX_MESSAGES,
      WaitTimeSeconds: waitSeconds,
      MessageSystemAttributeNames: [
        'ApproximateReceiveCount',
        'SentTimestamp',
        'ApproximateFirstReceiveTimestamp',
      ],
    }),
    deadline((waitSeconds + 5) * 1000),
  )
  return Messages.map((message) => ({
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
}

/** Deletes the done records, retrying the entries SQS refuses; what stays is redelivered (idempotent). */
export const deleteDone = async (
  sqs: SQSClient,
  queueUrl: string,
  records: SQSRecord[],
  logger: Pick<Logger, 'warn' | 'error'>,
) => {
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
    batchWindowMs = 0,
    visibilityTimeoutS = 30,
    isHealthy = async () => true,
  }: {
    concurrency: number
    logger: Pick<Logger, 'warn' | 'error'>
    /** The long poll; stopping waits for it, so it bounds the shutdown (and sets the empty-poll rate). */
    waitSeconds?: number
    /** After a batch short of 10 messages, how long a loop lets the queue fill before it receives again. */
    batchWindowMs?: number
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

  /** Receives and handles one batch; gives the number of messages it held. */
  const pollOnce = async () => {
    const records = await receiveRecords(sqs, queueUrl, queueArn, waitSeconds)
    if (records.length === 0) return 0
    // Another loop found the services down while this one waited: give the jobs back untouched.
    if (outage) {
      await setVisibility(records, () => 0).catch(() => undefined)
      return records.length
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
    if (done.length > 0) await deleteDone(sqs, queueUrl, done, logger)
    if (isOutage) {
      await waitForRecovery()
      return records.length
    }
    if (failed.length > 0) {
      await setVisibility(failed, (record) =>
        Math.min(2 ** Number(record.attributes.ApproximateReceiveCount), 60),
      ).catch((error) => logger.warn('could not shorten the visibility of failed jobs', { err: error }))
    }
    return records.length
  }

  const loop = async () => {
    let backoff = 100
    while (!isStopping) {
      try {
        await outage
        if (isStopping) break
        const received = await pollOnce()
        backoff = 100
        // A short batch: the queue is keeping up. Let it fill before the next receive, as Lambda's
        // batching window does, instead of a receive, a write and a delete per message or two.
        if (received > 0 && received < MAX_MESSAGES && batchWindowMs > 0 && !isStopping)
          await pause(batchWindowMs)
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
