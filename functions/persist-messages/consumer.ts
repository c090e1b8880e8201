import type { SQSBatchResponse, SQSEvent } from 'aws-lambda'
import { parseMessageJobs } from '../../lib/jobs.ts'
import type { Logger } from '../../lib/logger.ts'
import { type PersistDeps, persistMessages } from '../../lib/persist.ts'
import { processBatch } from '../../lib/sqs.ts'

export type PersistMessagesDeps = Omit<PersistDeps, 'logger'> & { logger: Logger }

export const createPersistMessagesConsumer =
  (deps: PersistMessagesDeps) =>
  (event: SQSEvent): Promise<SQSBatchResponse> =>
    processBatch(event, parseMessageJobs, (jobs) => persistMessages(deps, jobs), deps.logger)
