import type { Db } from '../db.ts'
import type { Logger } from '../logger.ts'
import { type Redis, withRedis } from '../redis.ts'
import { type BatchOptions, COUNTERS, type Counter, processingKey, type ReconcileTally } from './counters.ts'
import {
  acquireReconcileLock,
  DEFAULT_LOCK_TTL_MS,
  RECONCILE_LOCK_KEY,
  ReconcileLockLostError,
} from './reconcile-lock.ts'
import { reconcileProcessing } from './recount.ts'
import { sweepAll } from './sweep.ts'

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

//
// The parts: counters.ts (what is counted), recount.ts (a batch: count, compare, fenced UPDATE),
// sweep.ts (the resumable full sweep), reconcile-lock.ts (the lock); this file drains the dirty
// sets and runs them.

export interface ReconcileDeps {
  db: Db
  redis: Redis
  logger: Pick<Logger, 'debug' | 'warn'>
}

export type ReconcileMode = 'incremental' | 'full'

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

export interface ReconcileOptions extends Partial<BatchOptions> {
  /** The run's time, compared with the last full sweep's. */
  now: Date
  /** Forces a mode; by default a full sweep runs when the last one is `fullIntervalMs` old or unknown. */
  mode?: ReconcileMode
  fullIntervalMs: number
  lockTtlMs?: number
  /** A full sweep stops after this long; the next run resumes it. At least one batch runs. */
  timeBudgetMs?: number
}

/** Epoch milliseconds of the last completed full sweep. Lost with Redis's data, which makes the next run a sweep. */
export const LAST_FULL_SWEEP_KEY = 'counts:{dirty}:last-full'

const DEFAULT_BATCH_SIZE = 1000
// The Lambda's timeout is 30 s (infra/lib/chat-stack.ts).
const DEFAULT_TIME_BUDGET_MS = 20_000

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

/** True when no full sweep is recorded, or the last one finished `fullIntervalMs` or more before `now`. */
export const isFullSweepDue = async (deps: { redis: Redis }, now: Date, fullIntervalMs: number) => {
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
