import { and, eq, inArray, or, sql } from 'drizzle-orm'
import { chats, messages } from '../db/schema.ts'
import { type Db, retryOnDeadlock } from './db.ts'
import { acceptedAt, type ChatJob, type MessageJob } from './jobs.ts'
import { DIRTY_APPLICATIONS_KEY, DIRTY_CHATS_KEY } from './keys.ts'
import { publishLiveMessages } from './live/log.ts'
import type { Logger } from './logger.ts'
import { toMessageOutput } from './messages.ts'
import { raiseCounters } from './numbering/raise-counters.ts'
import type { Redis } from './redis.ts'
import { type MessageDocument, markUnindexed, type Search } from './search.ts'

export interface PersistDeps {
  db: Db
  redis: Redis
  search: Pick<Search, 'bulkIndex'>
  logger: Pick<Logger, 'warn' | 'error'>
}

// Delivery is at-least-once and in any order. Every write is an upsert by the natural key whose
// fields follow one rule: the highest version wins, created_at is the earliest seen. Applying a
// set of jobs in any order, any number of times, therefore ends in the state that in-order,
// exactly-once delivery gives. The comparisons use >= so that they hold whether MySQL assigns
// the version column before or after the others (a version is handed out once, so an equal
// version is the same write delivered again). A message may arrive before its chat: the chat row
// is then created bare (no title, version 0) and completed when the chat's own job arrives.
//
// A row's number belongs to the create that first persisted it (`create_version`). Another create
// under the same number can only come from Redis handing a number out twice (it lost writes it had
// acknowledged, see the README): that create changes nothing, and its job fails with
// NumberCollisionError so that it ends in the dead-letter queue, loud, instead of overwriting.
// The row also records that create's version (`collision_version`): an update accepted after it
// may come from the losing create's client, which knows the number but not whose it is, so it no
// longer applies and fails the same way. Updates accepted before it can only be the owner's.
// Every update job is checked against the row as stored: one that did not apply fails.

interface Collapsed<T> {
  key: string
  winner: T
  createdAt: Date
  /** The version of the create among these jobs (the earliest, if several), else 0. */
  createVersion: number
}

type Versioned = { op: 'create' | 'update'; version: number }

/**
 * Folds the jobs of one batch per row: the highest version's content, the earliest time. A second
 * create of the same row within the batch is a collision: it is left out (and reported by the
 * caller, which finds the row owned by another create).
 */
const collapse = <T extends Versioned>(jobs: T[], keyOf: (job: T) => string) => {
  const creates = new Map<string, number>()
  for (const job of jobs) {
    if (job.op !== 'create') continue
    const key = keyOf(job)
    creates.set(key, Math.min(creates.get(key) ?? job.version, job.version))
  }
  const rows = new Map<string, Collapsed<T>>()
  for (const job of jobs) {
    const key = keyOf(job)
    if (job.op === 'create' && job.version !== creates.get(key)) continue
    const at = acceptedAt(job.version)
    const row = rows.get(key)
    if (!row) rows.set(key, { key, winner: job, createdAt: at, createVersion: creates.get(key) ?? 0 })
    else {
      if (job.version > row.winner.version) row.winner = job
      if (at < row.createdAt) row.createdAt = at
    }
  }
  // Sorted by key, so that concurrent batches lock rows in one order and rarely deadlock.
  return [...rows.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
}

/** A create whose number another create already holds: Redis handed the number out twice. */
export class NumberCollisionError extends Error {
  override name = 'NumberCollisionError'
  readonly jobs: Array<{ app: number; chat: number; message?: number; version: number }>
  constructor(jobs: Array<{ app: number; chat: number; message?: number; version: number }>) {
    super(
      `number collision: ${jobs
        .map(
          (job) => `application ${job.app} chat ${job.chat}${job.message ? ` message ${job.message}` : ''}`,
        )
        .join(', ')} already belong to another create; these jobs go to the dead-letter queue`,
    )
    this.jobs = jobs
  }
}

// The row is this create's own (or still bare), or the write is an update: only then does it apply.
// True whether MySQL assigns create_version before or after evaluating it.
const isOwnRow = sql.raw('(VALUES(create_version) = 0 OR create_version IN (0, VALUES(create_version)))')

/** The update was accepted before any second create of the row's number. */
const isBeforeCollision = (versionColumn: string) =>
  sql.raw(`(collision_version = 0 OR VALUES(${versionColumn}) < collision_version)`)

// Records the earliest create that found the row owned by another. create_version is assigned
// first (it comes first in the table), and either value of it gives the same answer here.
const collisionVersion = sql.raw(
  'IF(create_version <> 0 AND VALUES(create_version) NOT IN (0, create_version), ' +
    'IF(collision_version = 0, VALUES(create_version), LEAST(collision_version, VALUES(create_version))), collision_version)',
)

const appliesTitle = sql`(${isOwnRow} AND ${isBeforeCollision('title_version')})`
const appliesBody = sql`(${isOwnRow} AND ${isBeforeCollision('body_version')})`

const pad = (n: number) => n.toString().padStart(10, '0')

const markDirty = async (deps: Pick<PersistDeps, 'redis' | 'logger'>, key: string, ids: number[]) => {
  if (ids.length === 0) return
  // Losing this only delays a count until the hourly full sweep; it must not fail the batch.
  await deps.redis
    .sadd(key, ...new Set(ids.map(String)))
    .catch((error) => deps.logger.warn('could not mark counts dirty', { err: error }))
}

const raise = async (
  deps: Pick<PersistDeps, 'redis' | 'logger'>,
  items: Parameters<typeof raiseCounters>[1],
) =>
  raiseCounters(deps.redis, items).catch((error) =>
    deps.logger.warn('could not raise counters', { err: error }),
  )

/**
 * Persists chat creations and title updates: one multi-row upsert per batch, and a read-back of
 * the created rows' owners.
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
  await retryOnDeadlock(() =>
    deps.db
      .insert(chats)
      .values(rows)
      .onDuplicateKeyUpdate({
        set: {
          title: sql`IF(${appliesTitle} AND VALUES(title_version) >= title_version, VALUES(title), title)`,
          updatedAt: sql`IF(${appliesTitle} AND VALUES(title_version) >= title_version, VALUES(updated_at), updated_at)`,
          createdAt: sql`IF(${isOwnRow}, LEAST(created_at, VALUES(created_at)), created_at)`,
          titleVersion: sql`IF(${appliesTitle}, GREATEST(title_version, VALUES(title_version)), title_version)`,
          createVersion: sql`IF(create_version = 0, VALUES(create_version), create_version)`,
          collisionVersion,
        },
      }),
  )
  const stored = await deps.db
    .select({
      app: chats.applicationId,
      chat: chats.number,
      createVersion: chats.createVersion,
      collisionVersion: chats.collisionVersion,
      version: chats.titleVersion,
    })
    .from(chats)
    .where(
      or(...rows.map((row) => and(eq(chats.applicationId, row.applicationId), eq(chats.number, row.number)))),
    )
  const storedOf = new Map(stored.map((row) => [`${row.app}:${row.chat}`, row]))
  const storedRow = (job: ChatJob) => storedOf.get(`${job.app}:${job.chat}`)
  const refused = refusedJobs(jobs, storedRow)

  await markDirty(
    deps,
    DIRTY_APPLICATIONS_KEY,
    rows.map((row) => row.applicationId),
  )
  await raise(
    deps,
    jobs.map((job) => ({ token: job.token, field: 'n', number: job.chat })),
  )
  if (refused.length > 0) failRefused(deps, refused, updatedAfterCollision(refused, storedRow))
}

/** What a job needs to know of its row as stored after the upsert. */
interface StoredRow {
  createVersion: number
  collisionVersion: number
  /** The version of the row's title or body. */
  version: number
}

/**
 * The jobs the stored row does not reflect: a create whose number another create owns, an update
 * accepted after a second create of its number, and any update that did not apply (folded into a
 * refused write of the batch: alone, on its next delivery, it does).
 */
const refusedJobs = <T extends Versioned>(jobs: T[], storedOf: (job: T) => StoredRow | undefined) =>
  jobs.filter((job) => {
    const row = storedOf(job)
    if (!row) return false
    if (job.op === 'create') return row.createVersion !== job.version
    return row.version < job.version || (row.collisionVersion !== 0 && job.version > row.collisionVersion)
  })

/**
 * The losing creates whose row already took an update accepted after them: SQS delivered that
 * update first, so it applied before the collision was known, and may be the loser's.
 */
const updatedAfterCollision = <T extends Versioned>(
  refused: T[],
  storedOf: (job: T) => StoredRow | undefined,
) => refused.filter((job) => job.op === 'create' && (storedOf(job)?.version ?? 0) > job.version)

/** Reports the jobs a collision refused: logged as errors, failed to the DLQ. */
const failRefused = <T extends { app: number; chat: number; version: number; rid?: string | undefined }>(
  deps: Pick<PersistDeps, 'logger'>,
  jobs: T[],
  inDoubt: T[],
) => {
  const error = new NumberCollisionError(jobs)
  deps.logger.error('number collision', {
    err: error,
    request_ids: jobs.map((job) => job.rid),
    ...(inDoubt.length > 0 && { updated_before_detected: new NumberCollisionError(inDoubt).message }),
  })
  throw error
}

/** Writes documents to the index; those that fail wait in the outbox (their rows), never lost. */
const indexMessages = async (deps: Pick<PersistDeps, 'db' | 'search'>, documents: MessageDocument[]) => {
  const { failed } = await deps.search.bulkIndex(documents)
  // If MySQL is down too, this throws: the batch fails and SQS delivers it again.
  await markUnindexed(deps.db, failed)
}

type ChatRef = { app: number; chat: number }

/**
 * Finds the chats' ids; creates bare rows for chats whose own job has not arrived yet, and says
 * which (their applications' chat counts change).
 */
const resolveChatIds = async (db: Db, refs: ChatRef[], fallbackTime: Map<string, Date>) => {
  const keyOf = (ref: ChatRef) => `${ref.app}:${ref.chat}`
  const byApp = new Map<number, number[]>()
  for (const ref of refs) byApp.set(ref.app, [...(byApp.get(ref.app) ?? []), ref.chat])
  const select = () =>
    db
      .select({ id: chats.id, app: chats.applicationId, chat: chats.number })
      .from(chats)
      .where(
        or(
          ...[...byApp].map(([app, numbers]) =>
            and(eq(chats.applicationId, app), inArray(chats.number, numbers)),
          ),
        ),
      )
  const ids = new Map((await select()).map((row) => [keyOf(row), row.id]))
  const missing = refs.filter((ref) => !ids.has(keyOf(ref)))
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
    for (const row of await select()) ids.set(keyOf(row), row.id)
  }
  return { chatIdOf: (ref: ChatRef) => ids.get(keyOf(ref))!, created: missing }
}

/**
 * Persists message creations and body updates: a lookup of the chats, one multi-row upsert, a
 * read-back of the rows as stored, and one bulk request to the search index.
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
  await retryOnDeadlock(() =>
    deps.db
      .insert(messages)
      .values(rows)
      .onDuplicateKeyUpdate({
        set: {
          body: sql`IF(${appliesBody} AND VALUES(body_version) >= body_version, VALUES(body), body)`,
          updatedAt: sql`IF(${appliesBody} AND VALUES(body_version) >= body_version, VALUES(updated_at), updated_at)`,
          createdAt: sql`IF(${isOwnRow}, LEAST(created_at, VALUES(created_at)), created_at)`,
          bodyVersion: sql`IF(${appliesBody}, GREATEST(body_version, VALUES(body_version)), body_version)`,
          createVersion: sql`IF(create_version = 0, VALUES(create_version), create_version)`,
          collisionVersion,
          persistedAt: sql`CURRENT_TIMESTAMP(3)`,
        },
      }),
  )

  // Index what MySQL now holds, not what this batch carried: an older job must not reach the index.
  const byChat = new Map<number, number[]>()
  for (const row of rows) byChat.set(row.chatId, [...(byChat.get(row.chatId) ?? []), row.number])
  const stored = await deps.db
    .select()
    .from(messages)
    .where(
      or(
        ...[...byChat].map(([chatId, numbers]) =>
          and(eq(messages.chatId, chatId), inArray(messages.number, numbers)),
        ),
      ),
    )
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
  // Live streams get what MySQL now holds; a failure retries the batch (the log drops repeats).
  await publishLiveMessages(
    deps.redis,
    documents.map((document, i) => ({
      token: chatOf.get(document.chatId)!.token,
      chat: document.chatNumber,
      message: toMessageOutput(stored[i]!),
      version: document.version,
    })),
  )
  await indexMessages(deps, documents)

  await markDirty(deps, DIRTY_CHATS_KEY, [...byChat.keys()])
  await markDirty(
    deps,
    DIRTY_APPLICATIONS_KEY,
    created.map((ref) => ref.app),
  )
  const tokenOf = new Map(jobs.map((job) => [job.app, job.token]))
  await raise(deps, [
    ...jobs.map((job) => ({ token: job.token, field: `m:${job.chat}`, number: job.message })),
    ...created.map((ref) => ({ token: tokenOf.get(ref.app)!, field: 'n', number: ref.chat })),
  ])

  const storedOf = new Map(
    stored.map((row) => [`${row.chatId}:${row.number}`, { ...row, version: row.bodyVersion }]),
  )
  const storedRow = (job: MessageJob) => storedOf.get(`${chatIdOf(job)}:${job.message}`)
  const refused = refusedJobs(jobs, storedRow)
  if (refused.length > 0) failRefused(deps, refused, updatedAfterCollision(refused, storedRow))
}
