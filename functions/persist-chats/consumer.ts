import type { SQSBatchResponse, SQSEvent } from 'aws-lambda'
import { parseChatJobs } from '../../lib/jobs.ts'
import type { Logger } from '../../lib/logger.ts'
import { type PersistDeps, persistChats } from '../../lib/persist.ts'
import { processBatch } from '../../lib/sqs.ts'

export type PersistChatsDeps = Omit<PersistDeps, 'logger'> & { logger: Logger }

export const createPersistChatsConsumer =
  (deps: PersistChatsDeps) =>
  (event: SQSEvent): Promise<SQSBatchResponse> =>
    processBatch(event, parseChatJobs, (jobs) => persistChats(deps, jobs), deps.logger)
