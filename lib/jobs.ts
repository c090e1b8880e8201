import * as v from 'valibot'

// A job is what the API accepted and a consumer persists: one SQS message each. `version` orders
// the writes to one field in the order the API accepted them (see lib/sequences.ts); the time of
// the write is derived from it, so a job is fully described by what Redis handed out.

const id = v.pipe(v.number(), v.integer(), v.minValue(1))
const token = v.pipe(v.string(), v.regex(/^[A-Za-z0-9_-]{32}$/))
// The X-Request-Id of the request that accepted the job, for the consumers' log lines. Optional:
// jobs queued before it existed still parse. Short, since 25 jobs share one SQS message.
const rid = v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(128)))

export const chatJobSchema = v.strictObject({
  op: v.picklist(['create', 'update']),
  app: id,
  token,
  chat: id,
  title: v.nullable(v.pipe(v.string(), v.maxLength(255))),
  version: id,
  rid,
})

export const messageJobSchema = v.strictObject({
  op: v.picklist(['create', 'update']),
  app: id,
  token,
  chat: id,
  message: id,
  body: v.pipe(v.string(), v.minLength(1), v.maxLength(10_000)),
  version: id,
  rid,
})

export type ChatJob = v.InferOutput<typeof chatJobSchema>
export type MessageJob = v.InferOutput<typeof messageJobSchema>

/** The moment the API accepted a write, from its version (microseconds of Redis time). */
export const acceptedAt = (version: number): Date => new Date(Math.floor(version / 1000))

// An SQS message carries one job or a pack of them (see lib/queue.ts).
const chatPackSchema = v.union([chatJobSchema, v.pipe(v.array(chatJobSchema), v.minLength(1))])
const messagePackSchema = v.union([messageJobSchema, v.pipe(v.array(messageJobSchema), v.minLength(1))])

/** Parses one SQS message body into its jobs; throws on anything that is not well formed. */
export const parseChatJobs = (body: string): ChatJob[] => [v.parse(chatPackSchema, JSON.parse(body))].flat()
export const parseMessageJobs = (body: string): MessageJob[] =>
  [v.parse(messagePackSchema, JSON.parse(body))].flat()
