import { sql } from 'drizzle-orm'
import { chats, messages } from '../../db/schema.ts'
import { BoundedMap } from '../bounded-map.ts'
import { byParentAndNumber, type Db, prepared, retryOnDeadlock } from '../db.ts'
import { acceptedAt, type MessageJob } from '../jobs.ts'
import { DIRTY_APPLICATIONS_KEY, DIRTY_CHATS_KEY } from '../keys.ts'
import { publishLiveMessages } from '../live/log.ts'
import { toMessageOutput } from '../messages.ts'
import type { MessageDocument } from '../search/document.ts'
import { markUnindexed } from '../search/outbox.ts'
import { markDirty, raise } from './bookkeeping.ts'
import { collapse, pad } from './collapse.ts'
import { failCollisions } from './collisions.ts'
import type { PersistDeps } from './deps.ts'
import { bulkUpsert, versionedUpsert } from './upsert.ts'

/** Writes documents to the index; those that fail wait in the outbox (their rows), never lost. */
const indexMessages = async (deps: Pick<PersistDeps, 'db' | 'search'>, documents: MessageDocument[]) => {
  const { failed } = await deps.search.bulkIndex(documents)
  // If MySQL is down too, this throws: the batch fails and SQS delivers it again.
  await markUnindexed(deps.db, failed)
}

type ChatRef = { app: number; chat: number }
const keyOf = (ref: ChatRef) => `${ref.app}:${ref.chat}`

const chatIdsOf = byParentAndNumber<[id: number, app: number, chat: number]>(
  (db) => db.select({ id: chats.id, app: chats.applicationId, chat: chats.number }).from(chats),
  chats.applicationId,
  chats.number,
)

// A chat's id never changes once its row exists (it is upserted on its application and number and
// never deleted): a process keeps the ids it found, up to 10,000 per database (about a megabyte),
// so that a batch of messages in chats it has seen reads none of them.
const knownChatIdsOf = prepared(() => new BoundedMap<string, number>(10_000))

/**
 * Finds the chats' ids; creates bare rows for chats whose own job has not arrived yet, and says
 * which (their applications' chat counts change).
 */
const resolveChatIds = async (db: Db, refs: ChatRef[], fallbackTime: Map<string, Date>) => {
  const known = knownChatIdsOf(db)
  const ids = new Map<string, number>()
  const unknown = refs.filter((ref) => {
    const id = known.get(keyOf(ref))
    if (id !== undefined) ids.set(keyOf(ref), id)
    return id === undefined
  })
  const select = async (of: ChatRef[]) => {
    for (const [id, app, chat] of await chatIdsOf(
      db,
      of.map((ref) => [ref.app, ref.chat] as const),
    )) {
      ids.set(keyOf({ app, chat }), id)
      known.set(keyOf({ app, chat }), id)
    }
  }
  if (unknown.length > 0) await select(unknown)
  const missing = unknown.filter((ref) => !ids.has(keyOf(ref)))
  if (missing.length > 0) {
    await retryOnDeadlock(() =>
      db
        .insert(chats)
        .values(
          missing.map((ref) => {
            const at = fallbackTime.get(keyOf(ref))!
            return {
              applicationId: ref.app,
              number: ref.chat,
              title: null,
              titleVersion: 0,
              createdAt: at,
              updatedAt: at,
            }
          }),
        )
        .onDuplicateKeyUpdate({ set: { id: sql`id` } }),
    )
    await select(missing)
  }
  return { chatIdOf: (ref: ChatRef) => ids.get(keyOf(ref))!, created: missing }
}

type MessageInsert = typeof messages.$inferInsert

/**
 * The batch's rows as MySQL now holds them, with what the index, the live logs and the collision
 * check read of them: rows as arrays (see arrayRows), not drizzle's per-field mapping of every column.
 */
const storedMessages = byParentAndNumber<
  [
    chatId: number,
    number: number,
    body: string,
    bodyVersion: number,
    createdAt: Date,
    updatedAt: Date,
    createVersion: number,
    collisionVersion: number,
  ]
>(
  (db) =>
    db
      .select({
        chatId: messages.chatId,
        number: messages.number,
        body: messages.body,
        bodyVersion: messages.bodyVersion,
        createdAt: messages.createdAt,
        updatedAt: messages.updatedAt,
        createVersion: messages.createVersion,
        collisionVersion: messages.collisionVersion,
      })
      .from(messages),
  messages.chatId,
  messages.number,
)

const readBack = async (db: Db, keys: Array<{ chatId: number; number: number }>) =>
  (
    await storedMessages(
      db,
      keys.map((key) => [key.chatId, key.number] as const),
    )
  ).map((row) => ({
    chatId: row[0],
    number: row[1],
    body: row[2],
    bodyVersion: row[3],
    createdAt: row[4],
    updatedAt: row[5],
    createVersion: row[6],
    collisionVersion: row[7],
  }))

const upsertMessages = bulkUpsert<MessageInsert>(messages, (db, row) =>
  db
    .insert(messages)
    .values(row)
    .onDuplicateKeyUpdate({
      set: {
        ...versionedUpsert({ key: 'body', column: 'body' }, { key: 'bodyVersion', column: 'body_version' }),
        persistedAt: sql`CURRENT_TIMESTAMP(3)`,
      },
    }),
)

/**
 * Persists message creations and body updates: a lookup of the chats this process does not know
 * yet, one multi-row upsert, a read-back of the rows as stored unless MySQL says they are all new
 * ones, and one bulk request to the search index.
 */
export const persistMessages = async (deps: PersistDeps, jobs: MessageJob[]): Promise<void> => {
  if (jobs.length === 0) return
  const collapsed = collapse(jobs, (job) => `${pad(job.app)}:${pad(job.chat)}:${pad(job.message)}`)
  const chatRefs = new Map<string, ChatRef>()
  const chatTimes = new Map<string, Date>()
  for (const { winner, createdAt } of collapsed) {
    const key = `${winner.app}:${winner.chat}`
    chatRefs.set(key, { app: winner.app, chat: winner.chat })
    if (!chatTimes.has(key) || createdAt < chatTimes.get(key)!) chatTimes.set(key, createdAt)
  }
  const { chatIdOf, created } = await resolveChatIds(deps.db, [...chatRefs.values()], chatTimes)

  const rows = collapsed.map(({ winner, createdAt, createVersion }) => ({
    chatId: chatIdOf(winner),
    number: winner.message,
    body: winner.body,
    bodyVersion: winner.version,
    createdAt,
    updatedAt: acceptedAt(winner.version),
    createVersion,
  }))
  const { isInsertedAsGiven } = await retryOnDeadlock(() => upsertMessages(deps.db, rows))

  // Index what MySQL now holds, not what this batch carried: an older job must not reach the index.
  // When every row was new (the usual first delivery of creates), MySQL holds exactly the rows sent.
  const stored = isInsertedAsGiven
    ? rows.map((row) => ({ ...row, collisionVersion: 0 }))
    : await readBack(deps.db, rows)
  const chatOf = new Map(collapsed.map(({ winner }) => [chatIdOf(winner), winner]))
  const documents: MessageDocument[] = stored.map((row) => ({
    applicationId: chatOf.get(row.chatId)!.app,
    chatId: row.chatId,
    chatNumber: chatOf.get(row.chatId)!.chat,
    number: row.number,
    body: row.body,
    version: row.bodyVersion,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  }))
  // The live logs, the index and the bookkeeping each take what MySQL now holds and none needs
  // another: they run together, so that the batch holds its poller for the longest of them, not
  // their sum. All settle before the batch does; the first failure fails it (it is delivered again,
  // and the log drops repeats).
  const tokenOf = new Map(jobs.map((job) => [job.app, job.token]))
  const steps = await Promise.allSettled([
    publishLiveMessages(
      deps.redis,
      documents.map((document, i) => ({
        token: chatOf.get(document.chatId)!.token,
        chat: document.chatNumber,
        message: toMessageOutput(stored[i]!),
        version: document.version,
      })),
    ),
    indexMessages(deps, documents),
    markDirty(
      deps,
      DIRTY_CHATS_KEY,
      rows.map((row) => row.chatId),
    ),
    markDirty(
      deps,
      DIRTY_APPLICATIONS_KEY,
      created.map((ref) => ref.app),
    ),
    raise(deps, [
      ...jobs.map((job) => ({ token: job.token, field: `m:${job.chat}`, number: job.message })),
      ...created.map((ref) => ({ token: tokenOf.get(ref.app)!, field: 'n', number: ref.chat })),
    ]),
  ])
  const failed = steps.find((step) => step.status === 'rejected')
  if (failed) throw failed.reason

  const storedOf = new Map(
    stored.map((row) => [`${row.chatId}:${row.number}`, { ...row, version: row.bodyVersion }]),
  )
  failCollisions(deps, jobs, (job) => storedOf.get(`${chatIdOf(job)}:${job.message}`))
}
