import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda'
import type { Logger } from './logger.ts'

/** The request id of each job a body holds (`rid`), read even from a body that is not a valid job. */
const requestIdsIn = (body: string): Array<string | undefined> => {
  try {
    const jobs: unknown[] = [JSON.parse(body)].flat()
    return jobs.map((job) => {
      const rid = (job as { rid?: unknown } | null)?.rid
      return typeof rid === 'string' ? rid : undefined
    })
  } catch {
    return [undefined]
  }
}

/**
 * Runs an SQS batch through `persist` with partial-failure reporting. A record holds one or more
 * jobs; records that do not parse are failures of their own. The jobs of the rest are written
 * together; if that fails, each record is retried alone, so one bad record never fails the batch.
 * Throws only when every record failed.
 *
 * @example processBatch(event, parseMessageJobs, (jobs) => persistMessages(deps, jobs), logger)
 */
export const processBatch = async <Job>(
  event: SQSEvent,
  parse: (body: string) => Job[],
  persist: (jobs: Job[]) => Promise<void>,
  logger: Pick<Logger, 'warn' | 'error'>,
): Promise<SQSBatchResponse> => {
  const failures: Array<{ record: SQSRecord; error: unknown }> = []
  const parsed: Array<{ record: SQSRecord; jobs: Job[] }> = []
  for (const record of event.Records) {
    try {
      parsed.push({ record, jobs: parse(record.body) })
    } catch (error) {
      failures.push({ record, error })
    }
  }

  if (parsed.length > 0) {
    try {
      await persist(parsed.flatMap((item) => item.jobs))
    } catch (batchError) {
      logger.warn('batch write failed, settling records one by one', { err: batchError, size: parsed.length })
      for (const item of parsed) {
        try {
          await persist(item.jobs)
        } catch (error) {
          failures.push({ record: item.record, error })
        }
      }
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
