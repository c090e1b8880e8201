// The SQS sender thread's entry (lib/queue/sender-thread.ts starts it): the AWS SDK's work for
// every SendMessageBatch call (serializing, signing, HTTP, parsing the answer) runs here, on a
// core of its own, instead of between the server's requests.
import { parentPort, workerData } from 'node:worker_threads'
import type { Config } from '../config.ts'
import { sdkBatchSender } from './batch-sender.ts'
import { createSqsClient } from './client.ts'
import type { SendCall, SendReply } from './sender-thread.ts'

const port = parentPort
if (!port) throw new Error('lib/queue/sender-worker.ts runs as a worker thread only')
const sender = sdkBatchSender(createSqsClient((workerData as { config: Config }).config))

port.on('message', async ({ id, queueUrl, bodies, timeoutMs }: SendCall) => {
  let reply: SendReply
  try {
    reply = { id, refused: await sender.send(queueUrl, bodies, timeoutMs) }
  } catch (error) {
    const { name = 'Error', message = String(error) } = error instanceof Error ? error : {}
    reply = { id, error: { name, message } }
  }
  port.postMessage(reply)
})
