import { applicationKey, countersKey, rateKey } from '../keys.ts'
import type { Redis } from '../redis.ts'
import { type NumberingReply, type NumberingRequest, numberBatch, replyOf, requestArgs } from './scripts.ts'

// Concurrent numbering requests of one application share a script call: a lone call costs Redis
// more for the EVALSHA itself than for the work inside it, and ioredis as much again for its
// command and promise. A batch holds what arrived in one turn of the event loop and leaves in the
// check phase (setImmediate), so the requests an HTTP server parsed in one poll phase go together,
// while a lone request waits only for the end of that phase. (A microtask or nextTick would run
// after each socket's callback: batches of one under HTTP.)

export interface BatchSettings {
  idempotencyTtlS: number
  rateLimit: number
}

interface Batch {
  keys: string[]
  args: Array<string | number>
  waiting: Array<{ resolve: (reply: NumberingReply) => void; reject: (error: unknown) => void }>
}

// Redis serves no one else while a script runs: a cap keeps a call short under a flood.
const MAX_BATCH = 128

const open = new WeakMap<Redis, Map<string, Batch>>()

const send = (redis: Redis, batches: Map<string, Batch>, id: string, batch: Batch) => {
  // A full batch leaves early; its scheduled send then finds another batch, or none, under its id.
  if (batches.get(id) !== batch) return
  batches.delete(id)
  numberBatch<Array<string | number>>(redis, batch.keys, batch.args).then(
    (reply) => {
      for (const [index, { resolve }] of batch.waiting.entries()) resolve(replyOf(reply, index))
    },
    (error: unknown) => {
      for (const { reject } of batch.waiting) reject(error)
    },
  )
}

/**
 * Numbers one request in one script call with its application's other requests of this event-loop
 * turn, in arrival order. When the call fails, every request of the batch rejects with its error.
 */
export const numberInBatch = (
  redis: Redis,
  token: string,
  settings: BatchSettings,
  request: NumberingRequest,
): Promise<NumberingReply> =>
  new Promise((resolve, reject) => {
    let batches = open.get(redis)
    if (!batches) {
      batches = new Map()
      open.set(redis, batches)
    }
    // The settings go once per call: requests under other settings (other deps sharing the client,
    // in tests) get a batch of their own.
    const id = `${token} ${settings.idempotencyTtlS} ${settings.rateLimit}`
    let batch = batches.get(id)
    if (!batch) {
      batch = {
        keys: [applicationKey(token), countersKey(token), rateKey(token)],
        args: [settings.idempotencyTtlS, settings.rateLimit],
        waiting: [],
      }
      batches.set(id, batch)
      setImmediate(send, redis, batches, id, batch)
    }
    batch.keys.push(request.idempotencyKey)
    batch.args.push(...requestArgs(request))
    batch.waiting.push({ resolve, reject })
    if (batch.waiting.length === MAX_BATCH) send(redis, batches, id, batch)
  })
