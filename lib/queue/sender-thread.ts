import { Worker } from 'node:worker_threads'
import type { Config } from '../config.ts'
import type { Logger } from '../logger.ts'
import type { BatchSender, RefusedEntry } from './batch-sender.ts'

/** A call handed to the sender thread, and its answer. */
export interface SendCall {
  id: number
  queueUrl: string
  bodies: string[]
  timeoutMs: number
}
export type SendReply =
  | { id: number; refused: RefusedEntry[]; error?: undefined }
  | { id: number; error: { name: string; message: string } }

// How long past a call's own deadline the thread may take to answer before it counts as stuck.
const GRACE_MS = 1_000

interface Call {
  resolve: (refused: RefusedEntry[]) => void
  reject: (error: Error) => void
  timer: NodeJS.Timeout
}

const errorNamed = (name: string, message: string) => Object.assign(new Error(message), { name })

/**
 * Makes the SendMessageBatch calls in a worker thread with an SQS client of its own (built from
 * the same config). The SDK's CPU for a call (about a millisecond whatever it carries: its JSON
 * writer, SigV4, its HTTP handler) then runs beside the server's event loop instead of on it.
 *
 * Failure stays honest: a call the thread does not answer within its deadline plus a second
 * rejects (the messages may have been delivered) and the thread is replaced, and calls in flight
 * when the thread dies reject the same way; the next call starts a new thread.
 */
export const threadBatchSender = (
  config: Config,
  logger: Pick<Logger, 'error'>,
  // The thread's script; tests give one that misbehaves.
  { script = new URL('./sender-worker.ts', import.meta.url) }: { script?: URL } = {},
): BatchSender => {
  let current: { worker: Worker; calls: Map<number, Call> } | undefined
  let nextId = 0

  const start = () => {
    const worker = new Worker(script, { workerData: { config } })
    const calls = new Map<number, Call>()
    const thread = { worker, calls }
    // The calls' own timers keep the process alive while one is in flight; an idle thread does not.
    worker.unref()
    worker.on('message', (reply: SendReply) => {
      const call = calls.get(reply.id)
      if (!call) return
      calls.delete(reply.id)
      clearTimeout(call.timer)
      if (reply.error) call.reject(errorNamed(reply.error.name, reply.error.message))
      else call.resolve(reply.refused)
    })
    worker.on('error', (error) => logger.error('the SQS sender thread failed', { err: error }))
    worker.on('exit', (code) => {
      if (current === thread) current = undefined
      for (const call of calls.values()) {
        clearTimeout(call.timer)
        call.reject(errorNamed('SenderThreadExit', `the SQS sender thread exited (code ${code})`))
      }
      calls.clear()
    })
    return thread
  }

  return {
    send: (queueUrl, bodies, timeoutMs) =>
      new Promise<RefusedEntry[]>((resolve, reject) => {
        current ??= start()
        const thread = current
        const id = nextId++
        const timer = setTimeout(() => {
          if (!thread.calls.delete(id)) return
          reject(
            errorNamed('TimeoutError', `the SQS sender thread did not answer in ${timeoutMs + GRACE_MS} ms`),
          )
          logger.error('the SQS sender thread is stuck; replacing it', { timeout_ms: timeoutMs })
          if (current === thread) current = undefined
          void thread.worker.terminate()
        }, timeoutMs + GRACE_MS)
        thread.calls.set(id, { resolve, reject, timer })
        thread.worker.postMessage({ id, queueUrl, bodies, timeoutMs } satisfies SendCall)
      }),
    close: async () => {
      const thread = current
      current = undefined
      await thread?.worker.terminate()
    },
  }
}
