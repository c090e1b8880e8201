import type { SQSBatchResponse, SQSEvent } from 'aws-lambda'
import { acceptedAt, type Parsed } from './jobs.ts'
import type { Logger } from './logger.ts'
import { recordJobsPersisted } from './metrics.ts'
import { processBatch, type Resend } from './queue/batch.ts'
import type { QueueName } from './queue/provisioning.ts'

/** What the consumers' log lines say about a job: never its token (a credential) or its body. */
export interface ReportedJob {
  op: string
  app: number
  chat: number
  message?: number
  version: number
  rid?: string | undefined
}

/**
 * processBatch (lib/queue/batch.ts) with the consumers' telemetry: for each job committed, a `debug` line
 * naming its request id and the persistence lag metrics; for the batch, one `info` line with
 * counts and lag. Failures are logged with their request ids by processBatch.
 *
 * @example processJobBatch('messages', event, parseMessagePack, (jobs) => persistMessages(deps, jobs), resend, deps.logger)
 */
export const processJobBatch = async <Job extends ReportedJob>(
  queue: QueueName,
  event: SQSEvent,
  parse: (body: string) => Array<Parsed<Job>>,
  persist: (jobs: Job[]) => Promise<void>,
  resend: Resend,
  logger: Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>,
  now: () => number = Date.now,
): Promise<SQSBatchResponse> => {
  const started = performance.now()
  const tally = { jobs: 0, lagMsSum: 0, lagMsMax: 0 }
  const persistAndReport = async (jobs: Job[]) => {
    await persist(jobs)
    const committed = now()
    const lagsSeconds = jobs.map((job) => Math.max(0, committed - acceptedAt(job.version).getTime()) / 1000)
    recordJobsPersisted(queue, lagsSeconds)
    jobs.forEach((job, i) => {
      const lagMs = Math.round(lagsSeconds[i]! * 1000)
      tally.jobs++
      tally.lagMsSum += lagMs
      tally.lagMsMax = Math.max(tally.lagMsMax, lagMs)
      logger.debug('job persisted', {
        request_id: job.rid,
        queue,
        op: job.op,
        app: job.app,
        chat: job.chat,
        message: job.message,
        version: job.version,
        lag_ms: lagMs,
      })
    })
  }
  let failedRecords = event.Records.length
  try {
    const response = await processBatch(event, parse, persistAndReport, resend, logger)
    failedRecords = response.batchItemFailures.length
    return response
  } finally {
    logger.info('batch persisted', {
      queue,
      records: event.Records.length,
      failed_records: failedRecords,
      jobs: tally.jobs,
      lag_ms_avg: tally.jobs === 0 ? null : Math.round(tally.lagMsSum / tally.jobs),
      lag_ms_max: tally.jobs === 0 ? null : tally.lagMsMax,
      ms: Math.round(performance.now() - started),
    })
  }
}
