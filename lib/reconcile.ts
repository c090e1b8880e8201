import { eq, type SQL, sql } from 'drizzle-orm'
import type { AnyMySqlColumn, MySqlTable } from 'drizzle-orm/mysql-core'
import { applications, chats, jobState, messages } from '../db/schema.ts'
import { type Db, retryOnDeadlock, withDatabase } from './db.ts'
import type { Deps } from './deps.ts'
import { DIRTY_APPLICATIONS_KEY, DIRTY_CHATS_KEY } from './keys.ts'
import { acquireJobLock, isFenceCurrent, type JobLock } from './lock.ts'
import { withRedis } from './redis.ts'

// Design of the reconciler (the counts may lag by at most an hour, see the issue):
//
// - Incremental: the consumers SADD the ids whose children changed, after their commit. A run moves
//   each dirty set into a "processing" set (one Lua script, so an SADD lands either before the move
//   and is processed now, or after it and waits for the next run), recounts those ids, then deletes
//   the processing set. A run that fails leaves the processing set in place and the next run merges
//   the new dirty ids into it, so nothing drained is ever lost. Counting happens after the drain,
//   so a row committed too late for this run's count was marked dirty after the drain: the next run
//   counts it.
// - Full sweep: keyset pagination over the parent table by primary key, one grouped count per batch
//   over the child's unique index (its first column is the parent id), bounded memory. It is
//   resumable: after each batch the last id is saved in MySQL (`job_state`), and a run stops
//   after `timeBudgetMs` (well inside a Lambda's timeout), so the next run continues where it
//   stopped; the sweep counts as done, for the hourly schedule, only once it reached the end. A
//   full run recounts the dirty ids first, since the part of the sweep it reaches may not cover them.
// - Locking: the counts come from plain SELECTs, which are non-locking consistent reads; an
//   `UPDATE … JOIN (SELECT … FROM messages)` would take shared locks on the message rows the
//   consumers are inserting. The one locking statement per batch is an UPDATE of the parent rows
//   whose count is wrong, by primary key in ascending order, in its own short autocommit
//   transaction, retried on deadlock. It never sets updated_at: a count is not a client write.
// - One at a time: the job lock of lib/lock.ts (Redis, renewed, released by compare-and-delete).
//   Each UPDATE carries the lock's MySQL fence in its WHERE, so a run that stalled past the lock's
//   expiry (even inside the statement) writes nothing over its successor's newer counts.
//
// The Lua scripts touch the lock, dirty and processing keys together, so they all share the hash
// tag {dirty} (see lib/keys.ts) and stay in one slot on a Redis Cluster.

export type ReconcileDeps = Pick<Deps, 'db' | 'redis' | 'logger'>
export type ReconcileMode = 'incremental' | 'full'

/** Rows whose count was read, and those among them whose stored count was wrong and is now fixed. */
export interface ReconcileTally {
  checked: number
  updated: number
}

/** What one reconciler run did; `skipped` when another run held the lock. */
export interface ReconcileSummary {
  mode: ReconcileMode
  skipped?: true
  /** A full sweep that ran out of time: the next run resumes it. */
  isSweepPartial?: true
  applications: ReconcileTally
  chats: ReconcileTally
  ms: number
}

export interface ReconcileOptions {
  /** The run's time, compared with the last full sweep's. */
  now: Date
  /** Forces a mode; by default a full sweep runs when the last one is `fullIntervalMs` old or unknown. */
  mode?: ReconcileMode
  fullIntervalMs: number
  /** Parent rows per count query and per UPDATE. */
  batchSize?: number
  lockTtlMs?: number
  /** A full sweep stops after this long; the next run resumes it. At least one batch runs. */
  timeBudgetMs?: number
  /** Called between a batch's count and its UPDATE: a seam for tests that race the consumers. */
  onCounted?: () => Promise<void>
  /** Called right before a batch's UPDATE is sent: a seam for tests that stall a run. */
  beforeWrite?: () => Promise<void>
}

export const RECONCILE_LOCK_KEY = 'counts:{dirty}:lock'
/** Epoch milliseconds of the last completed full sweep. Lost with Redis's data, which makes the next run a sweep. */
export const LAST_FULL_SWEEP_KEY = 'counts:{dirty}:last-full'
const processingKey = (dirtyKey: string) => `${dirtyKey}:processing`

type BatchOptions = Required<Pick<ReconcileOptions, 'batchSize'>> &
  Pick<ReconcileOptions, 'onCounted' | 'beforeWrite'>

const DEFAULT_BATCH_SIZE = 1000
const DEFAULT_LOCK_TTL_MS = 30_000
// The Lambda's timeout is 30 s (infra/lib/chat-stack.ts).
const DEFAULT_TIME_BUDGET_MS = 20_000

interface Counter {
  name: 'applications' | 'chats'
  parent: MySqlTable
  id: AnyMySqlColumn
  count: AnyMySqlColumn
  child: MySqlTable
  /** The child's parent id: the first column of the child's unique index, so counts are index-only. */
  childParent: AnyMySqlColumn
  dirtyKey: string
}

const COUNTERS: readonly Counter[] = [
  {
    name: 'chats',
    parent: chats,
    id: chats.id,
    count: chats.messagesCount,
    child: messages,
    childParent: messages.chatId,
    dirtyKey: DIRTY_CHATS_KEY,
  },
  {
    name: 'applications',
    parent: applications,
    id: applications.id,
    count: applications.chatsCount,
    child: chats,
    childParent: chats.applicationId,
    dirtyKey: DIRTY_APPLICATIONS_KEY,
  },
]

// KEYS: lock, then (dirty, processing) pairs. ARGV[1]: token. RENAME when nothing is pending is
// O(1); a leftover processing set from a failed run is merged instead of overwritten.
const DRAIN_SCRIPT = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local pending = 0
for i = 2, #KEYS, 2 do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    if redis.call('EXISTS', KEYS[i + 1]) == 1 then
      redis.call('SUNIONSTORE', KEYS[i + 1], KEYS[i + 1], KEYS[i])
      redis.call('DEL', KEYS[i])
    else
      redis.call('RENAME', KEYS[i], KEYS[i + 1])
    end
  end
  pending = pending + redis.call('SCARD', KEYS[i + 1])
end
return pending`

// KEYS: lock, then the processing sets. Only the holder may forget the ids it processed.
const FINISH_SCRIPT = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
for i = 2, #KEYS do redis.call('DEL', KEYS[i]) end
return 1`

export type ReconcileLock = JobLock

export class ReconcileLockLostError extends Error {
  override name = 'ReconcileLockLostError'
}

const LOCK_NAME = 'reconcile'

/**
 * Takes the reconciler lock, or returns undefined when another run holds it.
 *
 * @example const lock = await acquireReconcileLock(deps, 30_000); if (lock) try { … } finally { await lock.release() }
 */
export const acquireReconcileLock = (deps: ReconcileDeps, ttlMs = DEFAULT_LOCK_TTL_MS) =>
  acquireJobLock(deps, LOCK_NAME, RECONCILE_LOCK_KEY, ttlMs)

const rowsOf = async <T>(db: Db, query: SQL): Promise<T[]> => {
  const [rows] = await withDatabase(() => db.execute(query))
  return rows as unknown as T[]
}

const inList = (ids: readonly number[]) =>
  sql.join(
    ids.map((id) => sql`${id}`),
    sql`, `,
  )

/** Stored counts of the given parent rows, keyed by id, in ascending id order. */
const readStored = async (db: Db, counter: Counter, where: SQL, limit?: number) => {
  const rows = await rowsOf<{ id: number | string; stored: number | string }>(
    db,
    sql`SELECT ${counter.id} AS id, ${counter.count} AS stored FROM ${counter.parent} WHERE ${where} ORDER BY ${counter.id}${
      limit === undefined ? sql`` : sql` LIMIT ${limit}`
    }`,
  )
  return new Map(rows.map((row) => [Number(row.id), Number(row.stored)]))
}

/** Children per parent id, one grouped, index-only count. Parents without children are absent. */
const countChildren = async (db: Db, counter: Counter, where: SQL) => {
  const rows = await rowsOf<{ id: number | string; n: number | string }>(
    db,
    sql`SELECT ${counter.childParent} AS id, COUNT(*) AS n FROM ${counter.child} WHERE ${where} GROUP BY ${counter.childParent}`,
  )
  return new Map(rows.map((row) => [Number(row.id), Number(row.n)]))
}

/** Writes the counts that differ from the stored ones with one fenced UPDATE; returns how many. */
const writeCounts = async (
  deps: ReconcileDeps,
  counter: Counter,
  lock: ReconcileLock,
  stored: Map<number, number>,
  counts: Map<number, number>,
  beforeWrite?: () => Promise<void>,
): Promise<number> => {
  const changes = [...stored]
    .map(([id, was]) => [id, was, counts.get(id) ?? 0] as const)
    .filter(([, was, now]) => was !== now)
    .sort(([a], [b]) => a - b)
  if (changes.length === 0) return 0
  if (!(await lock.isHeld())) throw new ReconcileLockLostError('the reconcile lock expired during the run')
  await beforeWrite?.()

  const ids = changes.map(([id]) => id)
  const cases = sql.join(
    changes.map(([id, , n]) => sql`WHEN ${id} THEN ${n}`),
    sql` `,
  )
  // Only rows whose count is wrong, by primary key (record locks, no gap locks: they all exist),
  // in ascending order; the statement is idempotent, so a deadlock victim simply runs it again.
  // The fence makes it a no-op once another run has taken the lock since this one did.
  const [result] = await retryOnDeadlock(() =>
    withDatabase(() =>
      deps.db.execute(
        sql`UPDATE ${counter.parent} SET ${counter.count} = CASE ${counter.id} ${cases} END WHERE ${counter.id} IN (${inList(ids)}) AND ${isFenceCurrent(LOCK_NAME, lock)}`,
      ),
    ),
  )
  // mysql2 reports matched rows: none means the fence refused the write.
  if ((result as { affectedRows?: number }).affectedRows === 0)
    throw new ReconcileLockLostError('a later run took the reconcile lock; this run wrote nothing')
  return changes.length
}

const parseIds = (members: readonly string[]): number[] => {
  const ids = new Set<number>()
  for (const member of members) if (/^[1-9][0-9]{0,15}$/.test(member)) ids.add(Number(member))
  return [...ids].sort((a, b) => a - b)
}

/** Recounts the ids in the counter's processing set, a bounded chunk at a time. */
const reconcileProcessing = async (
  deps: ReconcileDeps,
  counter: Counter,
  lock: ReconcileLock,
  options: BatchOptions,
): Promise<ReconcileTally> => {
  const tally = { checked: 0, updated: 0 }
  const key = processingKey(counter.dirtyKey)
  let cursor = '0'
  do {
    const [next, members] = await withRedis(() => deps.redis.sscan(key, cursor, 'COUNT', options.batchSize))
    cursor = next
    const ids = parseIds(members)
    // SSCAN's COUNT is a hint (a small set comes back whole): slice to keep IN lists bounded.
    for (let start = 0; start < ids.length; start += options.batchSize) {
      const batch = ids.slice(start, start + options.batchSize)
      const stored = await readStored(deps.db, counter, sql`${counter.id} IN (${inList(batch)})`)
      const counts = await countChildren(deps.db, counter, sql`${counter.childParent} IN (${inList(batch)})`)
      await options.onCounted?.()
      tally.checked += stored.size
      tally.updated += await writeCounts(deps, counter, lock, stored, counts, options.beforeWrite)
    }
  } while (cursor !== '0')
  return tally
}

const sweepName = (counter: Counter) => `reconcile-sweep:${counter.name}`

/** Where the counter's sweep resumes: the last id it finished (0 = from the start). */
const readCheckpoint = async (db: Db, counter: Counter) => {
  const [row] = await withDatabase(() =>
    db
      .select({ position: jobState.position })
      .from(jobState)
      .where(eq(jobState.name, sweepName(counter))),
  )
  return row?.position ?? 0
}

const saveCheckpoint = (db: Db, counter: Counter, position: number) =>
  withDatabase(() =>
    db
      .insert(jobState)
      .values({ name: sweepName(counter), position })
      .onDuplicateKeyUpdate({ set: { position } }),
  )

/**
 * Recounts the parent rows from the checkpoint on: keyset batches by primary key, one grouped range
 * count per batch, the checkpoint saved after each. Returns whether it reached the end before
 * `deadline` (at least one batch runs, so every run advances).
 */
const sweepAll = async (
  deps: ReconcileDeps,
  counter: Counter,
  lock: ReconcileLock,
  options: BatchOptions & { deadline: number },
): Promise<ReconcileTally & { isDone: boolean }> => {
  const tally = { checked: 0, updated: 0, isDone: false }
  let after = await readCheckpoint(deps.db, counter)
  for (let batch = 0; batch === 0 || performance.now() < options.deadline; batch++) {
    const stored = await readStored(deps.db, counter, sql`${counter.id} > ${after}`, options.batchSize)
    const ids = [...stored.keys()]
    if (ids.length > 0) {
      const counts = await countChildren(
        deps.db,
        counter,
        sql`${counter.childParent} BETWEEN ${ids[0]!} AND ${ids.at(-1)!}`,
      )
      await options.onCounted?.()
      tally.checked += stored.size
      tally.updated += await writeCounts(deps, counter, lock, stored, counts, options.beforeWrite)
    }
    if (stored.size < options.batchSize) {
      await saveCheckpoint(deps.db, counter, 0)
      return { ...tally, isDone: true }
    }
    after = ids.at(-1)!
    await saveCheckpoint(deps.db, counter, after)
  }
  return tally
}

/** True when no full sweep is recorded, or the last one finished `fullIntervalMs` or more before `now`. */
export const isFullSweepDue = async (deps: Pick<Deps, 'redis'>, now: Date, fullIntervalMs: number) => {
  const last = Number(await withRedis(() => deps.redis.get(LAST_FULL_SWEEP_KEY)))
  return !Number.isFinite(last) || last <= 0 || now.getTime() - last >= fullIntervalMs
}

/**
 * Sets applications.chats_count and chats.messages_count from the persisted rows, under the
 * reconciler lock: the dirty ids (incremental) or every row (full sweep). Safe to run any number
 * of times at once: all but one return `{ skipped: true }`.
 *
 * @example await reconcileCounts(deps, { now: new Date(), fullIntervalMs: 3_600_000 })
 */
export const reconcileCounts = async (
  deps: ReconcileDeps,
  options: ReconcileOptions,
): Promise<ReconcileSummary> => {
  const started = performance.now()
  const elapsed = () => Math.round(performance.now() - started)
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE
  const lock = await acquireReconcileLock(deps, options.lockTtlMs ?? DEFAULT_LOCK_TTL_MS)
  if (!lock) {
    const none = { checked: 0, updated: 0 }
    return {
      mode: options.mode ?? 'incremental',
      skipped: true,
      applications: none,
      chats: { ...none },
      ms: elapsed(),
    }
  }
  try {
    const mode =
      options.mode ??
      ((await isFullSweepDue(deps, options.now, options.fullIntervalMs)) ? 'full' : 'incremental')
    const keys = COUNTERS.flatMap((counter) => [counter.dirtyKey, processingKey(counter.dirtyKey)])
    const drained = await withRedis(() =>
      deps.redis.eval(DRAIN_SCRIPT, keys.length + 1, RECONCILE_LOCK_KEY, ...keys, lock.token),
    )
    if (drained === -1) throw new ReconcileLockLostError('the reconcile lock expired before the drain')

    const tallies: Record<Counter['name'], ReconcileTally> = {
      chats: { checked: 0, updated: 0 },
      applications: { checked: 0, updated: 0 },
    }
    const batch = { ...options, batchSize }
    for (const counter of COUNTERS)
      tallies[counter.name] = await reconcileProcessing(deps, counter, lock, batch)
    let isSweepDone = true
    if (mode === 'full') {
      const deadline = started + (options.timeBudgetMs ?? DEFAULT_TIME_BUDGET_MS)
      for (const counter of COUNTERS) {
        const swept = await sweepAll(deps, counter, lock, { ...batch, deadline })
        tallies[counter.name].checked += swept.checked
        tallies[counter.name].updated += swept.updated
        isSweepDone &&= swept.isDone
        if (!swept.isDone) break
      }
    }

    const processing = COUNTERS.map((counter) => processingKey(counter.dirtyKey))
    const finished = await withRedis(() =>
      deps.redis.eval(FINISH_SCRIPT, processing.length + 1, RECONCILE_LOCK_KEY, ...processing, lock.token),
    )
    if (finished !== 1) throw new ReconcileLockLostError('the reconcile lock expired before the run ended')
    if (mode === 'full' && isSweepDone)
      await withRedis(() => deps.redis.set(LAST_FULL_SWEEP_KEY, String(options.now.getTime())))

    const summary: ReconcileSummary = {
      mode,
      ...(!isSweepDone && { isSweepPartial: true as const }),
      applications: tallies.applications,
      chats: tallies.chats,
      ms: elapsed(),
    }
    deps.logger.debug('counts reconciled', { ...summary, drained })
    return summary
  } finally {
    await lock.release().catch((error) => deps.logger.warn('reconcile lock release failed', { err: error }))
  }
}
