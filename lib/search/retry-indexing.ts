import type { Db } from '../db.ts'
import { acquireJobLock } from '../lock.ts'
import type { Logger } from '../logger.ts'
import type { Redis } from '../redis.ts'
import type { Search } from './client.ts'
import { isUnavailable } from './errors.ts'
import { countUnindexed, loadUnindexedPage, settleIndexed, type UnindexedCursor } from './outbox.ts'

export interface RetryIndexingDeps {
  db: Db
  redis: Redis
  logger: Pick<Logger, 'info' | 'warn'>
  search: Pick<Search, 'bulkIndex' | 'ensureIndex'>
}
/** What one run did. `unavailable` when the engine could not be reached (everything stays pending). */
export interface RetryIndexingSummary {
  skipped?: true
  unavailable?: true
  /** Persisted messages not in the index before the run. */
  pending: number
  indexed: number
  /** Already indexed at this version or a newer one. */
  stale: number
  failed: number
}

export interface RetryIndexingOptions {
  batchSize?: number
  /** Bounds one run; the rest waits for the next. */
  maxPerRun?: number
  lockTtlMs?: number
}

const LOCK_KEY = 'search:retry:lock'

/**
 * Indexes the messages whose index write failed (the outbox: rows with `unindexed_version` set),
 * from the rows MySQL holds now, oldest failure first, until they land. A message leaves the
 * outbox only when its version, or a newer one, is in the index. Safe to run twice at once: the
 * second returns `{ skipped: true }` (and even overlapping runs only repeat idempotent writes).
 */
export const retryIndexing = async (
  deps: RetryIndexingDeps,
  { batchSize = 500, maxPerRun = 20_000, lockTtlMs = 60_000 }: RetryIndexingOptions = {},
): Promise<RetryIndexingSummary> => {
  const summary: RetryIndexingSummary = { pending: 0, indexed: 0, stale: 0, failed: 0 }
  summary.pending = await countUnindexed(deps.db)
  if (summary.pending === 0) return summary

  const lock = await acquireJobLock(deps, 'retry-indexing', LOCK_KEY, lockTtlMs)
  if (!lock) return { ...summary, skipped: true }
  try {
    try {
      // The alias may be missing if nothing has created it yet (a Lambda-only deployment).
      await deps.search.ensureIndex()
    } catch (error) {
      if (!isUnavailable(error)) throw error
      deps.logger.warn('search still unavailable, indexing stays pending', { pending: summary.pending })
      return { ...summary, unavailable: true }
    }
    let cursor: UnindexedCursor = { version: 0, id: 0 }
    for (let seen = 0; seen < maxPerRun; ) {
      const page = await loadUnindexedPage(deps.db, cursor, batchSize)
      if (page.length === 0) break
      seen += page.length
      const outcome = await deps.search.bulkIndex(page)
      const failed = new Set(outcome.failed)
      await settleIndexed(
        deps.db,
        page.filter((d) => !failed.has(d)).map((d) => ({ id: d.id, version: d.version })),
      )
      summary.indexed += outcome.indexed
      summary.stale += outcome.stale
      summary.failed += failed.size
      // Every write of the page failed: the engine is down again; wait for the next run.
      if (failed.size === page.length) break
      // What stays (failed, or a newer version failed meanwhile) is past the cursor until the next run.
      const last = page.at(-1)!
      cursor = { version: last.unindexedVersion, id: last.id }
    }
    if (summary.indexed + summary.stale > 0 || summary.failed > 0) {
      deps.logger.info('pending search indexing retried', { ...summary })
    }
    return summary
  } finally {
    await lock.release().catch(() => undefined)
  }
}
