import type { ScheduledJob } from '../../lib/scheduler.ts'
import {
  type RetryIndexingDeps,
  type RetryIndexingOptions,
  type RetryIndexingSummary,
  retryIndexing,
} from '../../lib/search/retry-indexing.ts'

/** How often the server retries the outbox: a recovered engine catches up within seconds. */
export const RETRY_INDEXING_INTERVAL_MS = 5_000

/**
 * The scheduled retry of the search outbox (lib/search/retry-indexing.ts). Safe to run twice at
 * once: the second returns `{ skipped: true }`.
 */
export const createRetryIndexingJob =
  (deps: RetryIndexingDeps, options: RetryIndexingOptions = {}) =>
  (): Promise<RetryIndexingSummary> =>
    retryIndexing(deps, options)

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
