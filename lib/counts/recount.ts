import { type SQL, sql } from 'drizzle-orm'
import { type Db, retryOnDeadlock, withDatabase } from '../db.ts'
import { isFenceCurrent } from '../lock.ts'
import { type Redis, withRedis } from '../redis.ts'
import { type BatchOptions, type Counter, processingKey, type ReconcileTally } from './counters.ts'
import { RECONCILE_LOCK_NAME, type ReconcileLock, ReconcileLockLostError } from './reconcile-lock.ts'

// Counting: the stored counts of a batch of parent rows, their children counted with one grouped,
// index-only query, and one fenced UPDATE of the counts that differ.

const rowsOf = async <T>(db: Db, query: SQL): Promise<T[]> => {
  const [rows] = await withDatabase(() => db.execute(query))
  return rows as unknown as T[]
}

export const inList = (ids: readonly number[]) =>
  sql.join(
    ids.map((id) => sql`${id}`),
    sql`, `,
  )

/** Stored counts of the given parent rows, keyed by id, in ascending id order. */
export const readStored = async (db: Db, counter: Counter, where: SQL, limit?: number) => {
  const rows = await rowsOf<{ id: number | string; stored: number | string }>(
    db,
    sql`SELECT ${counter.id} AS id, ${counter.count} AS stored FROM ${counter.parent} WHERE ${where} ORDER BY ${counter.id}${
      limit === undefined ? sql`` : sql` LIMIT ${limit}`
    }`,
  )
  return new Map(rows.map((row) => [Number(row.id), Number(row.stored)]))
}

/** Children per parent id, one grouped, index-only count. Parents without children are absent. */
export const countChildren = async (db: Db, counter: Counter, where: SQL) => {
  const rows = await rowsOf<{ id: number | string; n: number | string }>(
    db,
    sql`SELECT ${counter.childParent} AS id, COUNT(*) AS n FROM ${counter.child} WHERE ${where} GROUP BY ${counter.childParent}`,
  )
  return new Map(rows.map((row) => [Number(row.id), Number(row.n)]))
}

/** Writes the counts that differ from the stored ones with one fenced UPDATE; returns how many. */
export const writeCounts = async (
  deps: { db: Db },
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
        sql`UPDATE ${counter.parent} SET ${counter.count} = CASE ${counter.id} ${cases} END WHERE ${counter.id} IN (${inList(ids)}) AND ${isFenceCurrent(RECONCILE_LOCK_NAME, lock)}`,
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
export const reconcileProcessing = async (
  deps: { db: Db; redis: Redis },
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
