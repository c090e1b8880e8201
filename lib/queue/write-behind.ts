import { GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs'
import { UnavailableError } from '../errors.ts'
import type { Logger } from '../logger.ts'
import { recordJobsAccepted, trackBufferDepth } from '../metrics.ts'
import { type BatchSender, sdkBatchSender } from './batch-sender.ts'
import { deadline } from './client.ts'
import { MAX_JOBS_PER_MESSAGE, toSqsBody } from './message.ts'
import type { QueueName } from './provisioning.ts'

/** Sends jobs to SQS. `send` resolves only once SQS has accepted the job. */
export interface JobQueue {
  send(queue: QueueName, job: object): Promise<void>
  /** Resolves when SQS answers a call on the messages queue within `timeoutMs`. */
  ping(): Promise<void>
  /** Sends what is buffered. */
  flush(): Promise<void>
  close(): Promise<void>
}

interface Pending {
  body: string
  bytes: number
  /** When it was buffered (performance.now()). */
  since: number
  resolve: () => void
  reject: (error: unknown) => void
}

const MAX_BATCH_ENTRIES = 10
// SQS caps a whole SendMessageBatch request at 256 KiB on LocalStack and older regions.
const MAX_BATCH_BYTES = 240 * 1024
const MAX_PACK_BYTES = MAX_BATCH_BYTES / MAX_BATCH_ENTRIES
// Calls of one queue in flight at once: one normally, more only when full batches wait or the
// calls in flight are slow.
const MAX_CALLS_IN_FLIGHT = 8
// How long jobs wait behind a call in flight before another call may start without it.
const PATIENCE_MS = 20
// How far apart a queue's calls start, unless a full pack (or batch) waits: a steady trickle of
// jobs leaves in one call every 10 ms (at most 100 calls a second) instead of one call per round
// trip, and a call never waits for the spacing with 25 jobs or more to carry.
const SPACING_MS = 10

export interface JobQueueOptions {
  flushMs: number
  /** Deadline of one SendMessageBatch call, retries included. */
  timeoutMs: number
  /** Jobs and bytes buffered or being sent; past either bound a job is refused at once. */
  maxJobs: number
  maxBytes: number
  /** How long jobs wait behind a call in flight before another call may start; default 20 ms. */
  patienceMs?: number
  /** How far apart a queue's calls start unless a full pack waits; default 10 ms. */
  spacingMs?: number
  /** What makes the calls; default: the SQS client given, in this thread. */
  sender?: BatchSender
  logger: Pick<Logger, 'warn'>
}

// What a client may assume about its create after a 503. A refusal SQS stated, or a job never
// sent, created nothing. A call that timed out or broke may have delivered the batch: the job may
// persist, and since the Idempotency-Key record was written with the number, a retry under the same
// key gets the same number and re-sends the same job, which the consumer's upsert makes a no-op.
const NOT_CREATED = 'the queue is unavailable and nothing was created or changed; try again shortly'
const MAYBE_CREATED =
  'the queue did not confirm in time, so this create or update may have happened; retrying is safe, and a create retried with the same Idempotency-Key gets the same number'

/**
 * A write-behind buffer in front of SendMessageBatch: jobs share SQS messages (packs of up to 25)
 * and calls (up to 10 messages), which is what lets one server take thousands of writes a second.
 * One call is in flight per queue, and a queue's calls start at least `spacingMs` apart unless a
 * full pack waits; what arrives meanwhile waits and leaves in the next call, so that a batch grows
 * with the load instead of the calls multiplying (each call costs about a millisecond of CPU, in
 * the sender's thread, and the queue service a request, whatever it carries). A create waits for
 * the spacing only while its call would carry less than a pack. An idle queue waits `flushMs` for
 * company before it sends. Another call starts at once when a full batch is waiting, or when the
 * call in flight is slow (`patienceMs`): a job never waits long behind a stalled call, up to
 * MAX_CALLS_IN_FLIGHT calls.
 *
 * Each caller's promise settles with its own pack's outcome, so a request answers 202 only after SQS
 * accepted its job, and 503 when SQS refused it or did not answer within `timeoutMs`. The buffer is
 * bounded: when SQS stalls, requests past `maxJobs` or `maxBytes` get their 503 at once instead of
 * piling up in memory, and a job that waited `timeoutMs` for a call without being sent gets its
 * 503 (nothing was created) instead of waiting out another call's deadline.
 */
export const createJobQueue = (
  sqs: SQSClient,
  urls: () => Promise<Record<QueueName, string>>,
  {
    flushMs,
    timeoutMs,
    maxJobs,
    maxBytes,
    patienceMs = PATIENCE_MS,
    spacingMs = SPACING_MS,
    sender = sdkBatchSender(sqs),
    logger,
  }: JobQueueOptions,
): JobQueue => {
  const pending: Record<QueueName, Pending[]> = { chats: [], messages: [] }
  const pendingBytes: Record<QueueName, number> = { chats: 0, messages: 0 }
  const timers: Partial<Record<QueueName, NodeJS.Timeout>> = {}
  const turnEnds: Partial<Record<QueueName, NodeJS.Immediate>> = {}
  // The calls in flight per queue, with the time each was sent.
  const calls: Record<QueueName, Set<{ sent: number }>> = { chats: new Set(), messages: new Set() }
  const lastSent: Record<QueueName, number> = { chats: -Infinity, messages: -Infinity }
  const inFlightSends = new Set<Promise<void>>()
  const held = { jobs: 0, bytes: 0 }
  const untrackBuffer = trackBufferDepth(() => ({
    chats: pending.chats.length,
    messages: pending.messages.length,
  }))

  const release = (queue: QueueName, items: Pending[], error?: unknown) => {
    for (const item of items) {
      held.jobs--
      held.bytes -= item.bytes
      error ? item.reject(error) : item.resolve()
    }
    if (!error) recordJobsAccepted(queue, items.length)
  }

  const sendBatch = async (queue: QueueName, packs: Array<{ items: Pending[] }>) => {
    let url: string
    try {
      url = (await urls())[queue]
    } catch (error) {
      for (const pack of packs)
        release(
          queue,
          pack.items,
          new UnavailableError('the queue is', { cause: error, message: NOT_CREATED }),
        )
      return
    }
    try {
      const refused = await sender.send(
        url,
        packs.map((pack) => `[${pack.items.map((item) => item.body).join(',')}]`),
        timeoutMs,
      )
      const failed = new Map(refused.map((entry) => [entry.index, entry]))
      for (const [index, pack] of packs.entries()) {
        const failure = failed.get(index)
        if (!failure) release(queue, pack.items)
        else {
          logger.warn('SQS refused a message', { code: failure.code, sender_fault: failure.senderFault })
          release(
            queue,
            pack.items,
            new UnavailableError('the queue is', {
              cause: new Error(failure.message ?? failure.code),
              message: NOT_CREATED,
            }),
          )
        }
      }
    } catch (error) {
      for (const pack of packs)
        release(
          queue,
          pack.items,
          new UnavailableError('the queue is', { cause: error, message: MAYBE_CREATED }),
        )
    }
  }

  /** Takes one call's worth of jobs (up to 10 packs, 240 KiB) from the front of the buffer. */
  const takeBatch = (queue: QueueName) => {
    const packs: Array<{ items: Pending[]; bytes: number }> = []
    let bytes = 0
    let count = 0
    for (const item of pending[queue]) {
      const last = packs[packs.length - 1]
      if (last && last.items.length < MAX_JOBS_PER_MESSAGE && last.bytes + item.bytes + 1 <= MAX_PACK_BYTES) {
        last.items.push(item)
        last.bytes += item.bytes + 1
        bytes += item.bytes + 1
      } else {
        if (packs.length === MAX_BATCH_ENTRIES || (last && bytes + item.bytes + 2 > MAX_BATCH_BYTES)) break
        packs.push({ items: [item], bytes: item.bytes + 2 })
        bytes += item.bytes + 2
      }
      count++
      pendingBytes[queue] -= item.bytes
    }
    pending[queue].splice(0, count)
    return packs
  }

  /** A full call's worth is waiting: it need not wait for company. */
  const isFull = (queue: QueueName) =>
    pending[queue].length >= MAX_BATCH_ENTRIES * MAX_JOBS_PER_MESSAGE ||
    pendingBytes[queue] >= MAX_BATCH_BYTES

  /** How long until the calls in flight, and the last one's start, leave room for another; 0: now. */
  const waitBeforeCall = (queue: QueueName) => {
    const inFlight = calls[queue]
    // The call answered first drains the queue again.
    if (inFlight.size >= MAX_CALLS_IN_FLIGHT) return patienceMs
    if (isFull(queue)) return 0
    const now = performance.now()
    // A call that carries a whole pack is worth its cost now; a trickle waits for the spacing.
    let wait = pending[queue].length >= MAX_JOBS_PER_MESSAGE ? 0 : lastSent[queue] + spacingMs - now
    for (const call of inFlight) wait = Math.max(wait, call.sent + patienceMs - now)
    return Math.max(0, wait)
  }

  const drain = (queue: QueueName, { force = false } = {}) => {
    clearTimeout(timers[queue])
    delete timers[queue]
    clearImmediate(turnEnds[queue])
    delete turnEnds[queue]
    // Jobs that waited out a whole deadline for a call were never sent: nothing was created.
    const expired = performance.now() - timeoutMs
    const waiting = pending[queue]
    let stale = 0
    while (stale < waiting.length && waiting[stale]!.since <= expired) stale++
    if (stale > 0) {
      const dropped = waiting.splice(0, stale)
      pendingBytes[queue] -= dropped.reduce((sum, item) => sum + item.bytes, 0)
      release(queue, dropped, new UnavailableError('the queue is', { message: NOT_CREATED }))
    }
    while (pending[queue].length > 0 && (force || waitBeforeCall(queue) === 0)) {
      const call = { sent: performance.now() }
      calls[queue].add(call)
      lastSent[queue] = call.sent
      const sending = sendBatch(queue, takeBatch(queue)).finally(() => {
        inFlightSends.delete(sending)
        calls[queue].delete(call)
        // What arrived meanwhile leaves now, in one call.
        if (pending[queue].length > 0) drain(queue)
      })
      inFlightSends.add(sending)
    }
    // Still waiting behind a call in flight, or for the spacing: look again when it may start.
    if (pending[queue].length > 0 && !force)
      timers[queue] ??= setTimeout(() => drain(queue), waitBeforeCall(queue))
  }

  return {
    send: (queue, job) =>
      new Promise<void>((resolve, reject) => {
        const body = toSqsBody(job)
        if (held.jobs + 1 > maxJobs || held.bytes + body.length > maxBytes) {
          reject(new UnavailableError('the queue is', { message: NOT_CREATED }))
          return
        }
        held.jobs++
        held.bytes += body.length
        pending[queue].push({ body, bytes: body.length, since: performance.now(), resolve, reject })
        pendingBytes[queue] += body.length
        if (flushMs === 0) drain(queue, { force: true })
        else if (isFull(queue)) drain(queue)
        // A pack's worth leaves at the end of this turn, with whatever else the turn brings.
        else if (pending[queue].length >= MAX_JOBS_PER_MESSAGE && waitBeforeCall(queue) === 0)
          turnEnds[queue] ??= setImmediate(() => drain(queue))
        else
          timers[queue] ??= setTimeout(
            () => drain(queue),
            Math.max(calls[queue].size === 0 ? flushMs : 0, waitBeforeCall(queue)),
          )
      }),
    ping: async () => {
      const { messages } = await urls()
      await sqs.send(
        new GetQueueAttributesCommand({ QueueUrl: messages, AttributeNames: ['QueueArn'] }),
        deadline(timeoutMs),
      )
    },
    flush: async () => {
      drain('chats', { force: true })
      drain('messages', { force: true })
      while (inFlightSends.size > 0) await Promise.allSettled([...inFlightSends])
    },
    close: async function close() {
      await this.flush()
      untrackBuffer()
      await sender.close()
    },
  }
}
