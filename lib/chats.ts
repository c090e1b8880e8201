import { and, asc, eq, gt, type Placeholder, sql } from 'drizzle-orm'
import { applications, type ChatRow, chats } from '../db/schema.ts'
import type { ChatOutput, ChatUpdateInput, NewChatInput, PageQuery } from './api/schemas.ts'
import { type Db, prepared, rows, withDatabase } from './db.ts'
import { NotFoundError } from './errors.ts'
import type { ChatJob } from './jobs.ts'
import { acceptChat, acceptChatUpdate, type SequenceDeps } from './numbering/accept.ts'
import { toPage } from './pages.ts'
import type { JobQueue } from './queue/write-behind.ts'
import { isoFromDatetime } from './time.ts'

export type AcceptDeps = SequenceDeps & { queue: Pick<JobQueue, 'send'> }

export const chatPath = (token: string, chat: number) => `/applications/${token}/chats/${chat}`

/** The client's view of a chat row: no internal id. */
export const toChatOutput = (row: ChatRow): ChatOutput => ({
  number: row.number,
  title: row.title,
  messages_count: row.messagesCount,
  created_at: row.createdAt.toISOString(),
  updated_at: row.updatedAt.toISOString(),
})

/** What a write carries besides its input: the request's Idempotency-Key and id. */
export interface WriteContext {
  idempotencyKey?: string
  /** Travels with the job, so that the consumers' log lines name the request. */
  requestId?: string
}

/**
 * Numbers a new chat in Redis and queues its creation; MySQL is not touched. Resolves once SQS
 * has the job. A retry under the same Idempotency-Key sends the same job again (the consumer
 * upserts, so that creates nothing) and gets the same number.
 */
export const createChat = async (
  deps: AcceptDeps,
  token: string,
  input: NewChatInput,
  { idempotencyKey, requestId }: WriteContext = {},
): Promise<number> => {
  const title = input.title ?? null
  const idempotency = idempotencyKey === undefined ? undefined : { key: idempotencyKey, body: { title } }
  const accepted = await acceptChat(deps, token, idempotency)
  const job: ChatJob = {
    op: 'create',
    app: accepted.applicationId,
    token,
    chat: accepted.number,
    title,
    version: accepted.version,
    rid: requestId,
  }
  await deps.queue.send('chats', job)
  return accepted.number
}

/** Queues a title update of an existing chat (one that Redis has numbered). */
export const updateChat = async (
  deps: AcceptDeps,
  token: string,
  chat: number,
  input: ChatUpdateInput,
  { requestId }: WriteContext = {},
) => {
  const accepted = await acceptChatUpdate(deps, token, chat)
  const job: ChatJob = {
    op: 'update',
    app: accepted.applicationId,
    token,
    chat,
    title: input.title,
    version: accepted.version,
    rid: requestId,
  }
  await deps.queue.send('chats', job)
  return chat
}

type Param<T> = T | Placeholder

const applicationByToken = prepared((db) =>
  db
    .select({ id: applications.id })
    .from(applications)
    .where(eq(applications.token, sql.placeholder('token')))
    .limit(1)
    .prepare(),
)

const applicationExists = async (db: Db, token: string) =>
  (await withDatabase(() => applicationByToken(db).execute({ token }))).length > 0

const chatPageSelect = (db: Db, token: Param<string>, after: Param<number>, rows: Param<number>) =>
  db
    .select({ chat: chats })
    .from(applications)
    .innerJoin(chats, eq(chats.applicationId, applications.id))
    .where(and(eq(applications.token, token), gt(chats.number, after)))
    .orderBy(asc(chats.number))
    .limit(rows)

/** The query behind a page of chats: a range over the (application_id, number) index. */
export const chatPageQuery = (db: Db, token: string, page: PageQuery) =>
  chatPageSelect(db, token, page.after, page.limit + 1)

const chatPage = prepared((db) =>
  chatPageSelect(db, sql.placeholder('token'), sql.placeholder('after'), sql.placeholder('rows')).prepare(),
)

/** A page of an application's chats, by number. */
export const listChats = async (deps: { db: Db }, token: string, page: PageQuery) => {
  const rows = await withDatabase(() =>
    chatPage(deps.db).execute({ token, after: page.after, rows: page.limit + 1 }),
  )
  if (rows.length === 0 && !(await applicationExists(deps.db, token))) {
    throw new NotFoundError('application not found')
  }
  return toPage(
    rows.map((row) => row.chat),
    page.limit,
    toChatOutput,
  )
}

const chatByNumber = rows<
  [number: number, title: string | null, messagesCount: number, createdAt: string, updatedAt: string]
>((db) =>
  db
    .select({
      number: chats.number,
      title: chats.title,
      messagesCount: chats.messagesCount,
      createdAt: chats.createdAt,
      updatedAt: chats.updatedAt,
    })
    .from(applications)
    .innerJoin(chats, eq(chats.applicationId, applications.id))
    .where(and(eq(applications.token, sql.placeholder('token')), eq(chats.number, sql.placeholder('chat'))))
    .limit(1),
)

/** One chat by application token and number. */
export const getChat = async (deps: { db: Db }, token: string, chat: number): Promise<ChatOutput> => {
  const [row] = await withDatabase(() => chatByNumber(deps.db, { token, chat }))
  if (!row) {
    throw new NotFoundError(
      (await applicationExists(deps.db, token)) ? `chat ${chat} not found` : 'application not found',
    )
  }
  return {
    number: row[0],
    title: row[1],
    messages_count: row[2],
    created_at: isoFromDatetime(row[3]),
    updated_at: isoFromDatetime(row[4]),
  }
}
