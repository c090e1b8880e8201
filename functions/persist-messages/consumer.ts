import type { SQSBatchResponse, SQSEvent } from 'aws-lambda'
import { processJobBatch } from '../../lib/job-report.ts'
import { parseMessageJobs } from '../../lib/jobs.ts'
import type { Logger } from '../../lib/logger.ts'
import { type PersistDeps, persistMessages } from '../../lib/persist.ts'

export type PersistMessagesDeps = Omit<PersistDeps, 'logger'> & { logger: Logger }

export const createPersistMessagesConsumer =
  (deps: PersistMessagesDeps) =>
  (event: SQSEvent): Promise<SQSBatchResponse> =>
    processJobBatch('messages', event, parseMessageJobs, (jobs) => persistMessages(deps, jobs), deps.logger)
