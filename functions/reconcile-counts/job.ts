import type { Config } from '../../lib/config.ts'
import {
  type ReconcileDeps,
  type ReconcileMode,
  type ReconcileSummary,
  reconcileCounts,
} from '../../lib/counts/reconcile.ts'
import type { Logger } from '../../lib/logger.ts'
import { timeReconcile } from '../../lib/metrics.ts'
import type { Clock } from '../../lib/time.ts'

export type ReconcileCountsDeps = ReconcileDeps & {
  logger: Pick<Logger, 'info'>
  clock: Clock
  config: Pick<Config, 'RECONCILE_FULL_INTERVAL_S'>
}

/**
 * The scheduled reconciliation of chats_count and messages_count: the dirty ids on every run, every
 * row when the last full sweep is RECONCILE_FULL_INTERVAL_S old (or unknown). Safe to run twice at
 * once: the second returns `{ skipped: true }`.
 */
export const createReconcileCountsJob =
  (deps: ReconcileCountsDeps) =>
  async (now: Date = deps.clock(), mode?: ReconcileMode): Promise<ReconcileSummary> => {
    const summary = await timeReconcile(mode, () =>
      reconcileCounts(deps, { now, mode, fullIntervalMs: deps.config.RECONCILE_FULL_INTERVAL_S * 1000 }),
    )
    deps.logger.info(
      summary.skipped ? 'reconcile skipped: another run holds the lock' : 'counts reconciled',
      {
        ...summary,
      },
    )
    return summary
  }
