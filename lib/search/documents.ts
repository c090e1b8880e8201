import { and, asc, eq, gt, inArray, or, type SQL } from 'drizzle-orm'
import { chats, messages } from '../../db/schema.ts'
import type { Db } from '../db.ts'
import type { MessageDocument } from './document.ts'

// Message rows read from MySQL as search documents: by key, by id, by persist time.

export const byKeys = (keys: ReadonlyArray<{ chatId: number; number: number }>) => {
  const byChat = new Map<number, number[]>()
  for (const key of keys) byChat.set(key.chatId, [...(byChat.get(key.chatId) ?? []), key.number])
  return or(
    ...[...byChat].map(([chatId, numbers]) =>
      and(eq(messages.chatId, chatId), inArray(messages.number, numbers)),
    ),
  )
}

/** Message rows joined with their chat, as documents. */
export const documentsWhere = async (
  db: Db,
  where: SQL | undefined,
  limit?: number,
  order: SQL[] = [asc(messages.id)],
) => {
  const query = db
    .select({ message: messages, applicationId: chats.applicationId, chatNumber: chats.number })
    .from(messages)
    .innerJoin(chats, eq(chats.id, messages.chatId))
    .where(where)
    .orderBy(...order)
  const rows = await (limit === undefined ? query : query.limit(limit))
  return rows.map(
    ({
      message,
      applicationId,
      chatNumber,
    }): MessageDocument & { id: number; unindexedVersion: number; persistedAt: Date } => ({
      id: message.id,
      unindexedVersion: message.unindexedVersion,
      persistedAt: message.persistedAt,
      applicationId,
      chatId: message.chatId,
      chatNumber,
      number: message.number,
      body: message.body,
      version: message.bodyVersion,
      createdAt: message.createdAt,
      updatedAt: message.updatedAt,
    }),
  )
}

/** The stored rows of these messages, as documents (messages that do not exist are left out). */
export const loadDocuments = async (db: Db, keys: Array<{ chatId: number; number: number }>) => {
  if (keys.length === 0) return []
  return documentsWhere(db, byKeys(keys))
}

/** One page of every message, by primary key after `afterId`, as documents (for reindexing). */
export const loadDocumentPage = (db: Db, afterId: number, limit: number, where?: SQL) =>
  documentsWhere(db, and(gt(messages.id, afterId), where), limit)

/** Where a scan by persist time resumes: after this (persisted_at, id). */
export interface PersistedCursor {
  at: Date
  id: number
}

/**
 * One page of the messages a consumer wrote at or after `after`, in the order they were written (a
 * range over `messages_persisted_at`), as documents: a reindex's catch-up.
 */
export const loadPersistedPage = (db: Db, after: PersistedCursor, limit: number) =>
  documentsWhere(
    db,
    or(
      gt(messages.persistedAt, after.at),
      and(eq(messages.persistedAt, after.at), gt(messages.id, after.id)),
    ),
    limit,
    [asc(messages.persistedAt), asc(messages.id)],
  )
