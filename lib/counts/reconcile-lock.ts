import { acquireJobLock, type JobLock, type JobLockDeps } from '../lock.ts'

// The reconciler's instance of the shared job lock (lib/lock.ts). Its key carries the {dirty} hash
// tag, so that the drain and finish scripts can check it in the same Redis Cluster slot.

export const RECONCILE_LOCK_KEY = 'counts:{dirty}:lock'
export const RECONCILE_LOCK_NAME = 'reconcile'
export const DEFAULT_LOCK_TTL_MS = 30_000

export type ReconcileLock = JobLock

export class ReconcileLockLostError extends Error {
  override name = 'ReconcileLockLostError'
}

/**
 * Takes the reconciler lock, or returns undefined when another run holds it.
 *
 * @example const lock = await acquireReconcileLock(deps, 30_000); if (lock) try { … } finally { await lock.release() }
 */
export const acquireReconcileLock = (deps: JobLockDeps, ttlMs = DEFAULT_LOCK_TTL_MS) =>
  acquireJobLock(deps, RECONCILE_LOCK_NAME, RECONCILE_LOCK_KEY, ttlMs)
