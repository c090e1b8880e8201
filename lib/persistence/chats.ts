import { chats } from '../../db/schema.ts'
import { byParentAndNumber, retryOnDeadlock } from '../db.ts'
import { acceptedAt, type ChatJob } from '../jobs.ts'
import { DIRTY_APPLICATIONS_KEY } from '../keys.ts'
import { markDirty, raise } from './bookkeeping.ts'
import { collapse, pad } from './collapse.ts'
import { failCollisions } from './collisions.ts'
import type { PersistDeps } from './deps.ts'
import { bulkUpsert, versionedUpsert } from './upsert.ts'

/** The batch's chats in one multi-row upsert; a title is kept only from its newest version. */
export const upsertChats = bulkUpsert<typeof chats.$inferInsert>(chats, (db, row) =>
  db
    .insert(chats)
    .values(row)
    .onDuplicateKeyUpdate({
      set: versionedUpsert(
        { key: 'title', column: 'title' },
        { key: 'titleVersion', column: 'title_version' },
      ),
    }),
)

/** The batch's chats as stored: whose create owns each row, and the title's version. */
const storedChats = byParentAndNumber<
  [app: number, chat: number, createVersion: number, collisionVersion: number, version: number]
>(
  (db) =>
    db
      .select({
        app: chats.applicationId,
        chat: chats.number,
        createVersion: chats.createVersion,
        collisionVersion: chats.collisionVersion,
        version: chats.titleVersion,
      })
      .from(chats),
  chats.applicationId,
  chats.number,
)

/**
 * Persists chat creations and title updates: one multi-row upsert per batch, and a read-back of
 * the rows' owners unless MySQL says they are all new ones.
 */
export const persistChats = async (deps: PersistDeps, jobs: ChatJob[]): Promise<void> => {
  if (jobs.length === 0) return
  const rows = collapse(jobs, (job) => `${pad(job.app)}:${pad(job.chat)}`).map(
    ({ winner, createdAt, createVersion }) => ({
      applicationId: winner.app,
      number: winner.chat,
      title: winner.title,
      titleVersion: winner.version,
      createdAt,
      updatedAt: acceptedAt(winner.version),
      createVersion,
    }),
  )
  const { isInsertedAsGiven } = await retryOnDeadlock(() => upsertChats(deps.db, rows))
  // When every row was new (the usual first delivery of creates), MySQL holds exactly the rows sent.
  const stored = isInsertedAsGiven
    ? rows.map((row) => ({
        app: row.applicationId,
        chat: row.number,
        createVersion: row.createVersion,
        collisionVersion: 0,
        version: row.titleVersion,
      }))
    : (
        await storedChats(
          deps.db,
          rows.map((row) => [row.applicationId, row.number] as const),
        )
      ).map(([app, chat, createVersion, collisionVersion, version]) => ({
        app,
        chat,
        createVersion,
        collisionVersion,
        version,
      }))
  const storedOf = new Map(stored.map((row) => [`${row.app}:${row.chat}`, row]))

  await markDirty(
    deps,
    DIRTY_APPLICATIONS_KEY,
    rows.map((row) => row.applicationId),
  )
  await raise(
    deps,
    jobs.map((job) => ({ token: job.token, field: 'n', number: job.chat })),
  )
  failCollisions(deps, jobs, (job) => storedOf.get(`${job.app}:${job.chat}`))
}
