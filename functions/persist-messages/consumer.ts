import type { SQSBatchResponse, SQSEvent } from 'aws-lambda'
import type { Deps } from '../../lib/deps.ts'
import { processJobBatch } from '../../lib/job-report.ts'
import { parseMessagePack } from '../../lib/jobs.ts'
import type { Logger } from '../../lib/logger.ts'
import type { PersistDeps } from '../../lib/persistence/deps.ts'
import { persistMessages } from '../../lib/persistence/messages.ts'
import { createResend } from '../../lib/queue/batch.ts'

export type PersistMessagesDeps = Omit<PersistDeps, 'logger'> & { logger: Logger } & Pick<
    Deps,
    'sqs' | 'queueUrls'
  >

export const createPersistMessagesConsumer = (deps: PersistMessagesDeps) => {
  const resend = createResend(deps.sqs, async () => (await deps.queueUrls()).messages)
  return (event: SQSEvent): Promise<SQSBatchResponse> =>
    processJobBatch(
      'messages',
      event,
      parseMessagePack,
      (jobs) => persistMessages(deps, jobs),
      resend,
      deps.logger,
    )
}
