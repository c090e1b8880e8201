import * as v from 'valibot'

// Request bodies. Every one is a strict object: a misspelt field is a 422, not silently ignored.

/** JSON can escape half a surrogate pair (`"\ud800"`); MySQL and SQS would store it as U+FFFD. */
const wellFormed = (field: string) =>
  v.check((text: string) => text.isWellFormed(), `${field} must be valid Unicode (no lone surrogates)`)

const name = v.pipe(
  v.string('name must be a string'),
  v.trim(),
  v.minLength(1, 'name must not be empty'),
  v.maxLength(255, 'name must be at most 255 characters'),
  wellFormed('name'),
)

const title = v.nullable(
  v.pipe(
    v.string('title must be a string or null'),
    v.trim(),
    v.maxLength(255, 'title must be at most 255 characters'),
    wellFormed('title'),
  ),
)

const body = v.pipe(
  v.string('body must be a string'),
  v.minLength(1, 'body must not be empty'),
  v.maxLength(10_000, 'body must be at most 10000 characters'),
  v.check((text) => text.trim().length > 0, 'body must not be only whitespace'),
  wellFormed('body'),
)

export const applicationInput = v.strictObject({ name }, 'unknown field')
export const newChatInput = v.strictObject({ title: v.optional(title) }, 'unknown field')
export const chatUpdateInput = v.strictObject({ title }, 'unknown field')
export const messageInput = v.strictObject({ body }, 'unknown field')

export type ApplicationInput = v.InferOutput<typeof applicationInput>
export type NewChatInput = v.InferOutput<typeof newChatInput>
export type ChatUpdateInput = v.InferOutput<typeof chatUpdateInput>
export type MessageInput = v.InferOutput<typeof messageInput>

// Query strings.

const positiveInt = (field: string, max: number) =>
  v.pipe(
    v.string(),
    v.regex(/^[0-9]{1,10}$/, `${field} must be a whole number`),
    v.transform(Number),
    v.number(),
    v.minValue(1, `${field} must be at least 1`),
    v.maxValue(max, `${field} must be at most ${max}`),
  )

export const MAX_NUMBER = 2_147_483_647

// Path parameters, by the name they have in lib/api/routes.ts paths. A value that fails one is a 404.

const resourceNumber = (resource: string) =>
  v.pipe(
    v.number(),
    v.integer(),
    v.minValue(1),
    v.maxValue(MAX_NUMBER),
    v.description(`The ${resource} number`),
  )

export const pathParams = {
  token: v.pipe(v.string(), v.regex(/^[A-Za-z0-9_-]{32}$/), v.description('The application token')),
  chat: resourceNumber('chat'),
  message: resourceNumber('message'),
}

export type PathParam = keyof typeof pathParams

export const pageQuery = v.object({
  limit: v.optional(positiveInt('limit', 100), '20'),
  after: v.optional(
    v.pipe(
      v.string(),
      v.regex(/^[0-9]{1,10}$/, 'after must be a whole number'),
      v.transform(Number),
      v.number(),
      v.maxValue(MAX_NUMBER, `after must be at most ${MAX_NUMBER}`),
    ),
    '0',
  ),
})

export const searchQuery = v.object({
  q: v.pipe(
    v.string('q is required'),
    v.trim(),
    v.minLength(1, 'q must not be empty'),
    v.maxLength(256, 'q must be at most 256 characters'),
  ),
  limit: v.optional(positiveInt('limit', 100), '20'),
  offset: v.optional(
    v.pipe(
      v.string(),
      v.regex(/^[0-9]{1,5}$/, 'offset must be a whole number'),
      v.transform(Number),
      v.number(),
      v.maxValue(10_000, 'offset must be at most 10000'),
    ),
    '0',
  ),
})

export const streamQuery = v.object({
  last_event_id: v.optional(
    v.pipe(
      v.string(),
      v.description('Resume after this cursor (the `id` of the last event received), like Last-Event-ID'),
    ),
  ),
})

export type PageQuery = v.InferOutput<typeof pageQuery>
export type SearchQuery = v.InferOutput<typeof searchQuery>

// Responses: documented in the OpenAPI description and checked against real responses in the tests.

const timestamp = v.pipe(v.string(), v.isoTimestamp(), v.description('ISO 8601 UTC, milliseconds'))
const count = v.pipe(v.number(), v.integer(), v.minValue(0))
const number = v.pipe(v.number(), v.integer(), v.minValue(1))

export const applicationOutput = v.strictObject({
  token: v.pipe(v.string(), v.regex(/^[A-Za-z0-9_-]{32}$/)),
  name: v.string(),
  chats_count: count,
  created_at: timestamp,
  updated_at: timestamp,
})

export const chatOutput = v.strictObject({
  number,
  title: v.nullable(v.string()),
  messages_count: count,
  created_at: timestamp,
  updated_at: timestamp,
})

export const messageOutput = v.strictObject({
  number,
  body: v.string(),
  created_at: timestamp,
  updated_at: timestamp,
})

export const acceptedOutput = v.strictObject({ number })

const page = <T extends v.GenericSchema>(item: T) =>
  v.strictObject({ data: v.array(item), next_after: v.nullable(number) })

export const chatPageOutput = page(chatOutput)
export const messagePageOutput = page(messageOutput)

export const searchHitOutput = v.strictObject({
  number,
  body: v.string(),
  created_at: timestamp,
  updated_at: timestamp,
  highlight: v.pipe(
    v.string(),
    v.description('the body, HTML-escaped, with each match wrapped in <em>…</em>'),
  ),
})

export const searchPageOutput = v.strictObject({ data: v.array(searchHitOutput), total: count })

export const healthOutput = v.strictObject({ status: v.literal('ok') })

const queueDepth = v.strictObject({ visible: count, in_flight: count, dead_letter: count })

export const readyOutput = v.strictObject({
  status: v.literal('ready'),
  services: v.record(v.string(), v.literal('up')),
  /** Null when the backlog could not be read within the probe timeout. */
  backlog: v.optional(
    v.nullable(
      v.strictObject({
        queues: v.strictObject({ chats: queueDepth, messages: queueDepth }),
        search_index_pending: count,
        as_of: v.string(),
      }),
    ),
  ),
})

export const errorOutput = v.strictObject({
  error: v.strictObject({
    code: v.string(),
    message: v.string(),
    details: v.array(v.strictObject({ field: v.string(), message: v.string() })),
  }),
})

export type ApplicationOutput = v.InferOutput<typeof applicationOutput>
export type ChatOutput = v.InferOutput<typeof chatOutput>
export type MessageOutput = v.InferOutput<typeof messageOutput>
