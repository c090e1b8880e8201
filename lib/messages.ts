import { and, asc, eq, gt, type Placeholder, sql } from 'drizzle-orm'
import { applications, chats, type MessageRow, messages } from '../db/schema.ts'
import type { MessageInput, MessageOutput, PageQuery } from './api/schemas.ts'
import { type AcceptDeps, getChat, type WriteContext } from './chats.ts'
import { type Db, prepared, rows, withDatabase } from './db.ts'
import { NotFoundError } from './errors.ts'
import type { MessageJob } from './jobs.ts'
import { acceptMessage, acceptMessageUpdate } from './numbering/accept.ts'
import { toPage } from './pages.ts'
import { isoFromDatetime } from './time.ts'

export const messagePath = (token: string, chat: number, message: number) =>
  `/applications/${token}/chats/${chat}/messages/${message}`

/** The client's view of a message row: no internal id. */
export const toMessageOutput = (
  row: Pick<MessageRow, 'number' | 'body' | 'createdAt' | 'updatedAt'>,
): MessageOutput => ({
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

type Param<T> = T | Placeholder

const messagePageSelect = (
  db: Db,
  token: Param<string>,
  chat: Param<number>,
  after: Param<number>,
  rows: Param<number>,
) =>
  db
    .select({
      number: messages.number,
      body: messages.body,
      createdAt: messages.createdAt,
      updatedAt: messages.updatedAt,
    })
    .from(applications)
    .innerJoin(chats, eq(chats.applicationId, applications.id))
    .innerJoin(messages, eq(messages.chatId, chats.id))
    .where(and(eq(applications.token, token), eq(chats.number, chat), gt(messages.number, after)))
    .orderBy(asc(messages.number))
    .limit(rows)

/** The query behind a page of messages: a range over the (chat_id, number) index. */
export const messagePageQuery = (db: Db, token: string, chat: number, page: PageQuery) =>
  messagePageSelect(db, token, chat, page.after, page.limit + 1)

type MessagePageRow = [number: number, body: string, createdAt: string, updatedAt: string]

const messagePage = rows<MessagePageRow>((db) =>
  messagePageSelect(
    db,
    sql.placeholder('token'),
    sql.placeholder('chat'),
    sql.placeholder('after'),
    sql.placeholder('rows'),
  ),
)

const toPageItem = (row: MessagePageRow): MessageOutput => ({
  number: row[0],
  body: row[1],
  created_at: isoFromDatetime(row[2]),
  updated_at: isoFromDatetime(row[3]),
})

/** A page of a chat's messages, by number. */
export const listMessages = async (deps: { db: Db }, token: string, chat: number, page: PageQuery) => {
  const found = await withDatabase(() =>
    messagePage(deps.db, { token, chat, after: page.after, rows: page.limit + 1 }),
  )
  if (found.length === 0) await getChat(deps, token, chat) // 404 for an unknown application or chat
  return toPage(found, page.limit, toPageItem)
}

const messageByNumber = prepared((db) =>
  db
    .select({ message: messages })
    .from(applications)
    .innerJoin(chats, eq(chats.applicationId, applications.id))
    .innerJoin(messages, eq(messages.chatId, chats.id))
    .where(
      and(
        eq(applications.token, sql.placeholder('token')),
        eq(chats.number, sql.placeholder('chat')),
        eq(messages.number, sql.placeholder('message')),
      ),
    )
    .limit(1)
    .prepare(),
)

/** One message by application token, chat number and message number. */
export const getMessage = async (deps: { db: Db }, token: string, chat: number, message: number) => {
  const [row] = await withDatabase(() => messageByNumber(deps.db).execute({ token, chat, message }))
  if (!row) {
    await getChat(deps, token, chat)
    throw new NotFoundError(`message ${message} not found`)
  }
  return toMessageOutput(row.message)
}
