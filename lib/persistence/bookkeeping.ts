import { raiseCounters } from '../numbering/raise-counters.ts'
import type { PersistDeps } from './deps.ts'

// After a batch: the counts to reconcile and the counters to raise. Neither may fail the batch.

export const markDirty = async (deps: Pick<PersistDeps, 'redis' | 'logger'>, key: string, ids: number[]) => {
  if (ids.length === 0) return
  // Losing this only delays a count until the hourly full sweep; it must not fail the batch.
  await deps.redis
    .sadd(key, ...new Set(ids.map(String)))
    .catch((error) => deps.logger.warn('could not mark counts dirty', { err: error }))
}

export const raise = async (
  deps: Pick<PersistDeps, 'redis' | 'logger'>,
  items: Parameters<typeof raiseCounters>[1],
) =>
  raiseCounters(deps.redis, items).catch((error) =>
    deps.logger.warn('could not raise counters', { err: error }),
  )
