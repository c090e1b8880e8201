import { GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs'
import { deadline } from './client.ts'
import { MAX_JOBS_PER_MESSAGE } from './message.ts'

/**
 * An upper bound on the jobs in these queues: every message, visible, in flight or delayed, counted
 * as a full pack.
 */
export const countQueuedJobs = async (sqs: SQSClient, queueUrls: string[], timeoutMs: number) => {
  const counts = await Promise.all(
    queueUrls.map(async (url) => {
      const { Attributes = {} } = await sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: url,
          AttributeNames: [
            'ApproximateNumberOfMessages',
            'ApproximateNumberOfMessagesNotVisible',
            'ApproximateNumberOfMessagesDelayed',
          ],
        }),
        deadline(timeoutMs),
      )
      return Object.values(Attributes).reduce((sum, value) => sum + Number(value ?? 0), 0)
    }),
  )
  return counts.reduce((sum, count) => sum + count, 0) * MAX_JOBS_PER_MESSAGE
}
