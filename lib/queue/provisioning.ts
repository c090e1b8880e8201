import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  SetQueueAttributesCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs'
import type { Config } from '../config.ts'
import { deadline } from './client.ts'

export type QueueName = 'chats' | 'messages'

const queueNames = (config: Config): Record<QueueName, string> => ({
  chats: config.SQS_CHATS_QUEUE,
  messages: config.SQS_MESSAGES_QUEUE,
})

/** Dead-letter queue name of a queue, unless configured. */
export const deadLetterName = (name: string) => `${name}-dlq`

const deadLetterNames = (config: Config): Record<QueueName, string> => ({
  chats: config.SQS_CHATS_DEAD_LETTER_QUEUE ?? deadLetterName(config.SQS_CHATS_QUEUE),
  messages: config.SQS_MESSAGES_DEAD_LETTER_QUEUE ?? deadLetterName(config.SQS_MESSAGES_QUEUE),
})

/**
 * Creates the queues, their dead-letter queues and redrive policies if missing. Idempotent; safe
 * when several servers run it at once (CreateQueue returns the existing queue).
 */
export const ensureQueues = async (sqs: SQSClient, config: Config): Promise<Record<QueueName, string>> => {
  const urls = {} as Record<QueueName, string>
  for (const [queue, name] of Object.entries(queueNames(config)) as Array<[QueueName, string]>) {
    const dlq = await sqs.send(
      new CreateQueueCommand({
        QueueName: deadLetterNames(config)[queue],
        Attributes: { MessageRetentionPeriod: '1209600' },
      }),
    )
    const { Attributes } = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: dlq.QueueUrl, AttributeNames: ['QueueArn'] }),
    )
    const attributes = {
      VisibilityTimeout: String(config.SQS_VISIBILITY_TIMEOUT_S),
      MessageRetentionPeriod: '1209600',
      RedrivePolicy: JSON.stringify({
        deadLetterTargetArn: Attributes?.QueueArn,
        maxReceiveCount: String(config.SQS_MAX_RECEIVES),
      }),
    }
    try {
      urls[queue] = (await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes })))
        .QueueUrl!
    } catch (error) {
      // The queue exists with other attributes (an operator changed them): align them.
      if (!/QueueAlreadyExists|QueueNameExists/.test(String((error as Error).name))) throw error
      urls[queue] = (await sqs.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl!
      await sqs.send(new SetQueueAttributesCommand({ QueueUrl: urls[queue], Attributes: attributes }))
    }
  }
  return urls
}

const lookUp = async (
  sqs: SQSClient,
  names: Record<QueueName, string>,
): Promise<Record<QueueName, string>> => {
  const entries = await Promise.all(
    (Object.entries(names) as Array<[QueueName, string]>).map(
      async ([queue, name]) =>
        // In Lambda this runs on a request's path: it must not outlast the request.
        [
          queue,
          (await sqs.send(new GetQueueUrlCommand({ QueueName: name }), deadline(5_000))).QueueUrl!,
        ] as const,
    ),
  )
  return Object.fromEntries(entries) as Record<QueueName, string>
}

/** Looks up the queue URLs without creating anything (Lambda, where the stack owns the queues). */
export const lookUpQueues = (sqs: SQSClient, config: Config) => lookUp(sqs, queueNames(config))

/** Looks up the dead-letter queues' URLs, by their configured names. */
export const lookUpDeadLetterQueues = (sqs: SQSClient, config: Config) => lookUp(sqs, deadLetterNames(config))

/** The ARN of a queue, for SQSEvent records. */
export const queueArnOf = async (sqs: SQSClient, queueUrl: string) => {
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }),
  )
  return Attributes?.QueueArn ?? queueUrl
}
