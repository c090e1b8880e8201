import { randomBytes } from 'node:crypto'
import type { SQSEvent } from 'aws-lambda'
import { eq } from 'drizzle-orm'
import * as v from 'valibot'
import { expect } from 'vitest'
import { applications, chats, messages } from '../db/schema.ts'
import { createApplication } from '../lib/applications.ts'
import type { Db } from '../lib/db.ts'
import type { Deps } from '../lib/deps.ts'
import type { ChatJob, MessageJob } from '../lib/jobs.ts'

/** Asserts that a response body matches the schema the OpenAPI description publishes for it. */
export const expectShape = <S extends v.GenericSchema>(schema: S, value: unknown): v.InferOutput<S> => {
  const result = v.safeParse(schema, value)
  expect(
    result.issues?.map((issue) => `${issue.path?.map((p) => p.key).join('.')}: ${issue.message}`) ?? [],
  ).toEqual([])
  return result.output as v.InferOutput<S>
}

/** A JSON request for `app.request()`. */
export const json = (method: string, body: unknown, headers: Record<string, string> = {}): RequestInit => ({
  method,
  headers: { 'content-type': 'application/json', ...headers },
  body: typeof body === 'string' ? body : JSON.stringify(body),
})

/** An application name unique to the test. */
export const anAppName = () => `app ${Math.random().toString(36).slice(2, 8)}`

/** A seeded pseudo-random generator (mulberry32): property tests replay from the seed they print. */
export const seededRandom = (seed: number) => {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Fisher–Yates with the given generator. */
export const shuffle = <T>(items: T[], random: () => number): T[] => {
  const copy = [...items]
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[copy[i], copy[j]] = [copy[j]!, copy[i]!]
  }
  return copy
}

const SEEDED_AT = new Date('2026-11-24T10:00:00.123Z')

/** Inserts messages `from`..`from + count - 1` into a chat, straight into MySQL. */
export const insertMessages = (db: Db, chatId: number, from: number, count: number) =>
  db.insert(messages).values(
    Array.from({ length: count }, (_, i) => ({
      chatId,
      number: from + i,
      body: `message ${from + i}`,
      createdAt: SEEDED_AT,
      updatedAt: SEEDED_AT,
    })),
  )

/**
 * Inserts, straight into MySQL, an application holding one chat per entry of `messagesPerChat`
 * with that many messages. Counts are left at 0, as the consumers leave them.
 */
export const insertApplicationRows = async (db: Db, messagesPerChat: number[]) => {
  const [app] = await db
    .insert(applications)
    .values({
      token: randomBytes(24).toString('base64url'),
      name: 'seeded',
      createdAt: SEEDED_AT,
      updatedAt: SEEDED_AT,
    })
    .$returningId()
  const chatIds: number[] = []
  for (const [index, count] of messagesPerChat.entries()) {
    const [chat] = await db
      .insert(chats)
      .values({ applicationId: app!.id, number: index + 1, createdAt: SEEDED_AT, updatedAt: SEEDED_AT })
      .$returningId()
    chatIds.push(chat!.id)
    if (count > 0) await insertMessages(db, chat!.id, 1, count)
  }
  return { applicationId: app!.id, chatIds }
}

/** An SQS event as Lambda delivers it, from message bodies (strings or objects). */
export const sqsEvent = (
  ...items: Array<{ body: string; messageId?: string } | object | string>
): SQSEvent => ({
  Records: items.map((item, index) => {
    const { body, messageId } =
      typeof item === 'string'
        ? { body: item, messageId: undefined }
        : 'body' in item &&
            typeof item.body === 'string' &&
            Object.keys(item).every((k) => k === 'body' || k === 'messageId')
          ? (item as { body: string; messageId?: string })
          : { body: JSON.stringify(item), messageId: undefined }
    return {
      messageId: messageId ?? `m-${index}-${randomBytes(4).toString('hex')}`,
      receiptHandle: `r-${index}`,
      body,
      attributes: {
        ApproximateReceiveCount: '1',
        SentTimestamp: String(Date.now()),
        SenderId: 'test',
        ApproximateFirstReceiveTimestamp: String(Date.now()),
      },
      messageAttributes: {},
      md5OfBody: '',
      eventSource: 'aws:sqs',
      eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:test',
      awsRegion: 'us-east-1',
    }
  }),
})

// Versions are microseconds; this base makes their times readable in failures.
export const T0 = Date.parse('2026-11-24T10:00:00.000Z') * 1000

/** Whose jobs: an application's token and its internal id. */
export interface JobOwner {
  token: string
  app: number
}

/** A new application, as the jobs of its chats and messages name it. */
export const newJobOwner = async (deps: Deps): Promise<JobOwner> => {
  const { token } = await createApplication(deps, { name: 'consumer' })
  return { token, app: Number(await deps.redis.get(`a:{${token}}`)) }
}

/** A chat job, as the request path queues it: chat 1, created at T0, unless `fields` say otherwise. */
export const chatJob = (owner: JobOwner, fields: Partial<ChatJob>): ChatJob => ({
  op: 'create',
  ...owner,
  chat: 1,
  title: null,
  version: T0,
  ...fields,
})

/** A message job: message 1 of chat 1, created 1 ms after T0, unless `fields` say otherwise. */
export const messageJob = (owner: JobOwner, fields: Partial<MessageJob>): MessageJob => ({
  op: 'create',
  ...owner,
  chat: 1,
  message: 1,
  body: 'hello',
  version: T0 + 1_000,
  ...fields,
})

/** An application's chats as stored, by number. */
export const storedChatsOf = (db: Db, app: number) =>
  db
    .select({
      number: chats.number,
      title: chats.title,
      createdAt: chats.createdAt,
      updatedAt: chats.updatedAt,
    })
    .from(chats)
    .where(eq(chats.applicationId, app))
    .orderBy(chats.number)
