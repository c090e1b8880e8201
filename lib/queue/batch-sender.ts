import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs'
import { deadline } from './client.ts'

/** An entry of a `SendMessageBatch` call that SQS refused, by its index in the call. */
export interface RefusedEntry {
  index: number
  code?: string
  message?: string
  senderFault?: boolean
}

/** Makes `SendMessageBatch` calls: the write-behind buffer's one way out to SQS. */
export interface BatchSender {
  /**
   * Sends each body as one message of one call. Resolves with the entries SQS refused; rejects
   * when the call failed or did not answer within `timeoutMs` (retries included), in which case
   * any of its messages may have been delivered.
   */
  send(queueUrl: string, bodies: string[], timeoutMs: number): Promise<RefusedEntry[]>
  close(): Promise<void>
}

/** Calls SQS from this thread, through the client given (which it does not close). */
export const sdkBatchSender = (sqs: SQSClient): BatchSender => ({
  send: async (queueUrl, bodies, timeoutMs) => {
    const result = await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: bodies.map((body, index) => ({ Id: String(index), MessageBody: body })),
      }),
      deadline(timeoutMs),
    )
    return (result.Failed ?? []).map((entry) => ({
      index: Number(entry.Id),
      code: entry.Code,
      message: entry.Message,
      senderFault: entry.SenderFault,
    }))
  },
  close: async () => {},
})
