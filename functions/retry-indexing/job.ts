import { randomBytes } from 'node:crypto'
import type { Deps } from '../../lib/deps.ts'
import type { ScheduledJob } from '../../lib/scheduler.ts'
import {
  countPending,
  documentId,
  isUnavailable,
  loadDocuments,
  readPending,
  type Search,
  settlePending,
} from '../../lib/search.ts'

export type RetryIndexingDeps = Pick<Deps, 'db' | 'redis' | 'logger'> & {
  search: Pick<Search, 'bulkIndex' | 'ensureIndex'>
}

/** What one run did. `unavailable` when the engine could not be reached (everything stays pending). */
export interface RetryIndexingSummary {
  skipped?: true
  unavailable?: true
  /** Pending before the run. */
  pending: number
  indexed: number
  /** Already indexed at this version or a newer one. */
  stale: number
  failed: number
  /** Pending messages with no row in MySQL: nothing to index, forgotten. */
  missing: number
}

export interface RetryIndexingOptions {
  batchSize?: number
  /** Bounds one run; the rest waits for the next. */
  maxPerRun?: number
  lockTtlMs?: number
}

/** How often the server retries the outbox: a recovered engine catches up within seconds. */
export const RETRY_INDEXING_INTERVAL_MS = 5_000

const LOCK_KEY = 'search:retry:lock'
const RELEASE_SCRIPT = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`

/**
 * Indexes the messages whose index write failed (the Redis outbox), from the rows MySQL holds now,
 * oldest failure first, until they land. A message leaves the outbox only when its version, or a
 * newer one, is in the index. Safe to run twice at once: the second returns `{ skipped: true }`
 * (and even overlapping runs only repeat idempotent writes).
 */
export const createRetryIndexingJob =
  (
    deps: RetryIndexingDeps,
    { batchSize = 200, maxPerRun = 5_000, lockTtlMs = 60_000 }: RetryIndexingOptions = {},
  ) =>
  async (): Promise<RetryIndexingSummary> => {
    const summary: RetryIndexingSummary = { pending: 0, indexed: 0, stale: 0, failed: 0, missing: 0 }
    summary.pending = await countPending(deps.redis)
    if (summary.pending === 0) return summary

    const lock = randomBytes(12).toString('base64url')
    if ((await deps.redis.set(LOCK_KEY, lock, 'PX', lockTtlMs, 'NX')) !== 'OK')
      return { ...summary, skipped: true }
    try {
      try {
        // The alias may be missing if nothing has created it yet (a Lambda-only deployment).
        await deps.search.ensureIndex()
      } catch (error) {
        if (!isUnavailable(error)) throw error
        deps.logger.warn('search still unavailable, indexing stays pending', { pending: summary.pending })
        return { ...summary, unavailable: true }
      }
      let offset = 0
      for (let seen = 0; seen < maxPerRun; ) {
        const page = await readPending(deps.redis, offset, batchSize)
        if (page.length === 0) break
        seen += page.length
        const documents = await loadDocuments(deps.db, page)
        const found = new Set(documents.map((d) => documentId(d.chatId, d.number)))
        const missing = page.filter((p) => !found.has(documentId(p.chatId, p.number)))
        const outcome = await deps.search.bulkIndex(documents)
        const failed = new Set(outcome.failed)
        const settled = await settlePending(deps.redis, [
          ...documents
            .filter((d) => !failed.has(d))
            .map((d) => ({ id: documentId(d.chatId, d.number), version: d.version })),
          ...missing.map((p) => ({ id: documentId(p.chatId, p.number), version: p.version })),
        ])
        summary.indexed += outcome.indexed
        summary.stale += outcome.stale
        summary.failed += failed.size
        summary.missing += missing.length
        // Every write of the page failed: the engine is down again; wait for the next run.
        if (documents.length > 0 && failed.size === documents.length) break
        // What stays (failed, or a newer version failed meanwhile) is skipped until the next run.
        offset += page.length - settled
      }
      if (summary.indexed + summary.stale + summary.missing > 0 || summary.failed > 0) {
        deps.logger.info('pending search indexing retried', { ...summary })
      }
      return summary
    } finally {
      await deps.redis.eval(RELEASE_SCRIPT, 1, LOCK_KEY, lock).catch(() => undefined)
    }
  }

/**
 * The job as the server's scheduler runs it.
 *
 * @example startScheduler([createRetryIndexingSchedule(deps)], deps.logger)
 */
export const createRetryIndexingSchedule = (
  deps: RetryIndexingDeps,
  {
    intervalMs = RETRY_INDEXING_INTERVAL_MS,
    ...options
  }: RetryIndexingOptions & { intervalMs?: number } = {},
): ScheduledJob => ({ name: 'retry-indexing', intervalMs, run: createRetryIndexingJob(deps, options) })
