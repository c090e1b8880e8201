import { randomBytes } from 'node:crypto'
import type { SQSEvent } from 'aws-lambda'
import * as v from 'valibot'
import { expect } from 'vitest'
import { applications, chats, messages } from '../db/schema.ts'
import type { Db } from '../lib/db.ts'

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
