import { and, asc, eq, gt } from 'drizzle-orm'
import { applications, chats, type MessageRow, messages } from '../db/schema.ts'
import type { MessageInput, MessageOutput, PageQuery } from './api/schemas.ts'
import { type AcceptDeps, getChat, type WriteContext } from './chats.ts'
import { type Db, withDatabase } from './db.ts'
import { NotFoundError } from './errors.ts'
import type { MessageJob } from './jobs.ts'
import { acceptMessage, acceptMessageUpdate } from './numbering/accept.ts'
import { toPage } from './pages.ts'

export const messagePath = (token: string, chat: number, message: number) =>
  `/applications/${token}/chats/${chat}/messages/${message}`

/** The client's view of a message row: no internal id. */
export const toMessageOutput = (row: MessageRow): MessageOutput => ({
  number: row.number,
  body: row.body,
  created_at: row.createdAt.toISOString(),
  updated_at: row.updatedAt.toISOString(),
})

/** Numbers a new message in Redis and queues its creation; MySQL is not touched. */
export const createMessage = async (
  deps: AcceptDeps,
  token: string,
  chat: number,
  input: MessageInput,
  { idempotencyKey, requestId }: WriteContext = {},
): Promise<number> => {
  const idempotency =
    idempotencyKey === undefined ? undefined : { key: idempotencyKey, body: { body: input.body } }
  const accepted = await acceptMessage(deps, token, chat, idempotency)
  const job: MessageJob = {
    op: 'create',
    app: accepted.applicationId,
    token,
    chat,
    message: accepted.number,
    body: input.body,
    version: accepted.version,
    rid: requestId,
  }
  await deps.queue.send('messages', job)
  return accepted.number
}

/** Queues a body update of an existing message. */
export const updateMessage = async (
  deps: AcceptDeps,
  token: string,
  chat: number,
  message: number,
  input: MessageInput,
  { requestId }: WriteContext = {},
) => {
  const accepted = await acceptMessageUpdate(deps, token, chat, message)
  const job: MessageJob = {
    op: 'update',
    app: accepted.applicationId,
    token,
    chat,
    message,
    body: input.body,
    version: accepted.version,
    rid: requestId,
  }
  await deps.queue.send('messages', job)
  return message
}

/** The query behind a page of messages: a range over the (chat_id, number) index. */
export const messagePageQuery = (db: Db, token: string, chat: number, page: PageQuery) =>
  db
    .select({ message: messages })
    .from(applications)
    .innerJoin(chats, eq(chats.applicationId, applications.id))
    .innerJoin(messages, eq(messages.chatId, chats.id))
    .where(and(eq(applications.token, token), eq(chats.number, chat), gt(messages.number, page.after)))
    .orderBy(asc(messages.number))
    .limit(page.limit + 1)

/** A page of a chat's messages, by number. */
export const listMessages = async (deps: { db: Db }, token: string, chat: number, page: PageQuery) => {
  const rows = await withDatabase(() => messagePageQuery(deps.db, token, chat, page))
  if (rows.length === 0) await getChat(deps, token, chat) // 404 for an unknown application or chat
  return toPage(
    rows.map((row) => row.message),
    page.limit,
    toMessageOutput,
  )
}

/** One message by application token, chat number and message number. */
export const getMessage = async (deps: { db: Db }, token: string, chat: number, message: number) => {
  const [row] = await withDatabase(() =>
    deps.db
      .select({ message: messages })
      .from(applications)
      .innerJoin(chats, eq(chats.applicationId, applications.id))
      .innerJoin(messages, eq(messages.chatId, chats.id))
      .where(and(eq(applications.token, token), eq(chats.number, chat), eq(messages.number, message)))
      .limit(1),
  )
  if (!row) {
    await getChat(deps, token, chat)
    throw new NotFoundError(`message ${message} not found`)
  }
  return toMessageOutput(row.message)
}
