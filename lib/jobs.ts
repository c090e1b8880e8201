import * as v from 'valibot'

// A job is what the API accepted and a consumer persists: one SQS message each. `version` orders
// the writes to one field in the order the API accepted them (see lib/numbering/); the time of
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

/** One element of an SQS message: a job, or what failed to parse as one. */
export type Parsed<Job> = { job: Job } | { raw: unknown; error: unknown }

// An SQS message carries one job or a pack of them (see lib/queue/write-behind.ts). Each element parses on its
// own, so that one bad job can be told apart from the others packed with it.
const parsePack =
  <S extends v.GenericSchema>(schema: S) =>
  (body: string): Array<Parsed<v.InferOutput<S>>> => {
    const value: unknown = JSON.parse(body)
    const items = Array.isArray(value) ? value : [value]
    if (items.length === 0) throw new Error('an SQS message with no job')
    return items.map((raw) => {
      const result = v.safeParse(schema, raw)
      return result.success ? { job: result.output } : { raw, error: new v.ValiError(result.issues) }
    })
  }

/** Parses one SQS message body into its jobs; throws only when the body is not a JSON job or pack. */
export const parseChatPack = parsePack(chatJobSchema)
export const parseMessagePack = parsePack(messageJobSchema)
