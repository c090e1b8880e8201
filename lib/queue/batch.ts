import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs'
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda'
import { isDatabaseUnavailable } from '../db.ts'
import type { Parsed } from '../jobs.ts'
import type { Logger } from '../logger.ts'
import { toSqsBody } from './message.ts'

/** Sends each body as an SQS message of its own (a job split out of its pack). */
export type Resend = (bodies: string[]) => Promise<void>

/** A job's request id (`rid`), read even from what is not a valid job. */
const requestIdOf = (job: unknown) => {
  const rid = (job as { rid?: unknown } | null)?.rid
  return typeof rid === 'string' ? rid : undefined
}

/** The request id of each job a body holds, read even from a body that is not a valid job. */
const requestIdsIn = (body: string): Array<string | undefined> => {
  try {
    return [JSON.parse(body)].flat().map(requestIdOf)
  } catch {
    return [undefined]
  }
}

/**
 * Runs an SQS batch through `persist` with partial-failure reporting. A record holds one job or a
 * pack of them. The jobs of every record are written together; if that fails, each record is
 * retried alone, so one bad record never fails the batch. Within a pack, a job that fails (or does
 * not parse) while others succeed is split out: `resend` queues it as a message of its own, with
 * its own receive count, and the pack succeeds, so one bad job never takes the jobs packed with
 * it to the dead-letter queue. A record whose every job fails is a failure as a whole. Throws only
 * when every record failed.
 *
 * @example processBatch(event, parseMessagePack, (jobs) => persistMessages(deps, jobs), resend, logger)
 */
export const processBatch = async <Job>(
  event: SQSEvent,
  parse: (body: string) => Array<Parsed<Job>>,
  persist: (jobs: Job[]) => Promise<void>,
  resend: Resend,
  logger: Pick<Logger, 'warn' | 'error'>,
): Promise<SQSBatchResponse> => {
  const failures: Array<{ record: SQSRecord; error: unknown }> = []
  const parsed: Array<{ record: SQSRecord; jobs: Job[]; invalid: Array<{ raw: unknown; error: unknown }> }> =
    []
  for (const record of event.Records) {
    try {
      const items = parse(record.body)
      const jobs = items.flatMap((item) => ('job' in item ? [item.job] : []))
      const invalid = items.flatMap((item) => ('job' in item ? [] : [item]))
      if (jobs.length === 0) failures.push({ record, error: invalid[0]!.error })
      else parsed.push({ record, jobs, invalid })
    } catch (error) {
      failures.push({ record, error })
    }
  }

  let isBatchWritten = false
  if (parsed.length > 0) {
    try {
      await persist(parsed.flatMap((item) => item.jobs))
      isBatchWritten = true
    } catch (batchError) {
      logger.warn('batch write failed, settling records one by one', { err: batchError, size: parsed.length })
    }
  }
  for (const item of parsed) {
    const failed: Array<{ raw: unknown; error: unknown }> = [...item.invalid]
    if (!isBatchWritten) {
      try {
        await persist(item.jobs)
      } catch (error) {
        // A database that cannot serve now fails every job alike: no point trying them one by one.
        if (item.jobs.length === 1 || isDatabaseUnavailable(error))
          failed.push(...item.jobs.map((job) => ({ raw: job, error })))
        else
          for (const job of item.jobs) {
            await persist([job]).catch((jobError: unknown) => failed.push({ raw: job, error: jobError }))
          }
      }
    }
    if (failed.length === 0) continue
    if (failed.length === item.invalid.length + item.jobs.length) {
      failures.push({ record: item.record, error: failed[0]!.error })
      continue
    }
    try {
      await resend(failed.map(({ raw }) => toSqsBody(raw as object)))
      for (const { raw, error } of failed) {
        logger.warn('job failed', {
          request_id: requestIdOf(raw),
          message_id: item.record.messageId,
          receive_count: item.record.attributes?.ApproximateReceiveCount,
          split_out: true,
          err: error,
        })
      }
    } catch (error) {
      // The pack comes back whole; its jobs that were written are idempotent.
      failures.push({ record: item.record, error })
    }
  }

  for (const { record, error } of failures) {
    for (const requestId of requestIdsIn(record.body)) {
      logger.warn('job failed', {
        request_id: requestId,
        message_id: record.messageId,
        receive_count: record.attributes?.ApproximateReceiveCount,
        err: error,
      })
    }
  }
  if (failures.length > 0 && failures.length === event.Records.length) {
    throw new AggregateError(
      failures.map((failure) => failure.error),
      `all ${failures.length} records of the batch failed`,
    )
  }
  return { batchItemFailures: failures.map(({ record }) => ({ itemIdentifier: record.messageId })) }
}

/**
 * A Resend onto a queue, one SQS message per body, ten per call.
 *
 * @example createResend(deps.sqs, async () => (await deps.queueUrls()).messages)
 */
export const createResend =
  (sqs: SQSClient, queueUrl: () => Promise<string>): Resend =>
  async (bodies) => {
    const url = await queueUrl()
    for (let start = 0; start < bodies.length; start += 10) {
      const entries = bodies.slice(start, start + 10)
      const { Failed = [] } = await sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: url,
          Entries: entries.map((body, index) => ({ Id: String(index), MessageBody: body })),
        }),
      )
      if (Failed.length > 0) throw new Error(`SQS refused ${Failed.length} split jobs: ${Failed[0]!.Code}`)
    }
  }
