import { and, asc, eq, gt, inArray, or, sql } from 'drizzle-orm'
import { messages } from '../../db/schema.ts'
import { type Db, retryOnDeadlock } from '../db.ts'
import type { MessageDocument } from './document.ts'
import { byKeys, documentsWhere } from './documents.ts'

// The outbox of failed index writes is a column of the row: `unindexed_version`, the body_version
// that failed (0 = indexed). The retry-indexing job re-reads those rows until they land.

/**
 * Puts messages whose index write failed in the outbox: their rows' current body_version becomes
 * `unindexed_version`. Throws when MySQL does not answer, so that the batch is delivered again.
 */
export const markUnindexed = async (
  db: Db,
  documents: ReadonlyArray<Pick<MessageDocument, 'chatId' | 'number'>>,
) => {
  if (documents.length === 0) return
  await retryOnDeadlock(() =>
    db
      .update(messages)
      .set({ unindexedVersion: sql`${messages.bodyVersion}` })
      .where(byKeys(documents)),
  )
}

/**
 * Takes messages out of the outbox once the version indexed (or a newer one) is in the index; a
 * message whose newer body failed meanwhile stays.
 */
export const settleIndexed = async (db: Db, done: ReadonlyArray<{ id: number; version: number }>) => {
  if (done.length === 0) return
  const indexed = sql.join(
    done.map((d) => sql`WHEN ${d.id} THEN ${d.version}`),
    sql` `,
  )
  await retryOnDeadlock(() =>
    db
      .update(messages)
      .set({ unindexedVersion: 0 })
      .where(
        and(
          inArray(
            messages.id,
            done.map((d) => d.id),
          ),
          sql`${messages.unindexedVersion} <= CASE ${messages.id} ${indexed} END`,
        ),
      ),
  )
}

/** Where a scan of the outbox resumes: after this (unindexed_version, id). */
export interface UnindexedCursor {
  version: number
  id: number
}

/** A page of the outbox as documents, oldest failure first (a range over `messages_unindexed`). */
export const loadUnindexedPage = async (db: Db, after: UnindexedCursor, limit: number) => {
  // The second branch is empty at the start ({ version: 0 }): rows at 0 are indexed.
  const rows = await documentsWhere(
    db,
    or(
      gt(messages.unindexedVersion, after.version),
      and(
        eq(messages.unindexedVersion, after.version),
        gt(messages.id, after.id),
        gt(messages.unindexedVersion, 0),
      ),
    ),
    limit,
    [asc(messages.unindexedVersion), asc(messages.id)],
  )
  return rows
}

/** Persisted messages whose body is not in the search index yet (a gauge: 0 when all is well). */
export const countUnindexed = async (db: Db) => db.$count(messages, gt(messages.unindexedVersion, 0))
