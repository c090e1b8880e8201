import type { SQSBatchResponse, SQSEvent } from 'aws-lambda'
import type { Deps } from '../../lib/deps.ts'
import { processJobBatch } from '../../lib/job-report.ts'
import { parseChatPack } from '../../lib/jobs.ts'
import type { Logger } from '../../lib/logger.ts'
import { persistChats } from '../../lib/persistence/chats.ts'
import type { PersistDeps } from '../../lib/persistence/deps.ts'
import { createResend } from '../../lib/queue/batch.ts'

export type PersistChatsDeps = Omit<PersistDeps, 'logger'> & { logger: Logger } & Pick<
    Deps,
    'sqs' | 'queueUrls'
  >

export const createPersistChatsConsumer = (deps: PersistChatsDeps) => {
  const resend = createResend(deps.sqs, async () => (await deps.queueUrls()).chats)
  return (event: SQSEvent): Promise<SQSBatchResponse> =>
    processJobBatch('chats', event, parseChatPack, (jobs) => persistChats(deps, jobs), resend, deps.logger)
}
