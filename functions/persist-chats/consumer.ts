import type { SQSBatchResponse, SQSEvent } from 'aws-lambda'
import { processJobBatch } from '../../lib/job-report.ts'
import { parseChatJobs } from '../../lib/jobs.ts'
import type { Logger } from '../../lib/logger.ts'
import { type PersistDeps, persistChats } from '../../lib/persist.ts'

export type PersistChatsDeps = Omit<PersistDeps, 'logger'> & { logger: Logger }

export const createPersistChatsConsumer =
  (deps: PersistChatsDeps) =>
  (event: SQSEvent): Promise<SQSBatchResponse> =>
    processJobBatch('chats', event, parseChatJobs, (jobs) => persistChats(deps, jobs), deps.logger)
