import { eq, sql } from 'drizzle-orm'
import { jobState } from '../../db/schema.ts'
import { type Db, withDatabase } from '../db.ts'
import type { BatchOptions, Counter, ReconcileTally } from './counters.ts'
import type { ReconcileLock } from './reconcile-lock.ts'
import { countChildren, readStored, writeCounts } from './recount.ts'

// The full sweep: keyset batches over a parent table, resumable from a checkpoint in MySQL.

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
export const sweepAll = async (
  deps: { db: Db },
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
