import { randomBytes } from 'node:crypto'
import { eq, type SQL, sql } from 'drizzle-orm'
import { jobState } from '../db/schema.ts'
import { type Db, withDatabase } from './db.ts'
import type { Logger } from './logger.ts'
import { type Redis, withRedis } from './redis.ts'

// One lock for the scheduled jobs (reconcile-counts, retry-indexing): a Redis key set with NX and
// a TTL, renewed every third of the TTL while held, released by compare-and-delete. A Redis lock
// alone is not a fence: a holder stalled past the TTL (a GC pause, a statement waiting on row
// locks) still believes it holds it. So each holder also takes a fencing number from MySQL, where
// its writes go (`job_state.fence`, bumped in a transaction), and a write that must not land after
// a successor's carries `isFenceCurrent(lock)` in its own WHERE: the stale holder's statement then
// changes nothing. A statement that already read the fence holds a shared lock on its row, so the
// successor's bump waits for it to commit, and counts after it.

export interface JobLock {
  readonly token: string
  /** This holder's fencing number: higher than every earlier holder's. */
  readonly fence: number
  /** Asks Redis whether this lock is still ours (a cheap early exit; the fence is what protects). */
  isHeld(): Promise<boolean>
  /** Stops renewing and deletes the lock if it is still ours. */
  release(): Promise<void>
}

export type JobLockDeps = { redis: Redis; db: Db; logger: Pick<Logger, 'warn'> }

const RENEW_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`

const RELEASE_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`

/** Bumps and returns the job's fencing number. */
const nextFence = (db: Db, name: string) =>
  withDatabase(() =>
    db.transaction(async (tx) => {
      await tx
        .insert(jobState)
        .values({ name, fence: 1 })
        .onDuplicateKeyUpdate({ set: { fence: sql`${jobState.fence} + 1` } })
      const [row] = await tx.select({ fence: jobState.fence }).from(jobState).where(eq(jobState.name, name))
      return row!.fence
    }),
  )

/**
 * Takes the named job's lock, or returns undefined when another run holds it.
 *
 * @example const lock = await acquireJobLock(deps, 'reconcile', key, 30_000); if (lock) try { … } finally { await lock.release() }
 */
export const acquireJobLock = async (
  deps: JobLockDeps,
  name: string,
  key: string,
  ttlMs: number,
): Promise<JobLock | undefined> => {
  const { redis, logger } = deps
  const token = randomBytes(16).toString('hex')
  if ((await withRedis(() => redis.set(key, token, 'PX', ttlMs, 'NX'))) !== 'OK') return undefined
  let fence: number
  try {
    fence = await nextFence(deps.db, name)
  } catch (error) {
    await redis.eval(RELEASE_SCRIPT, 1, key, token).catch(() => undefined)
    throw error
  }

  const renewal = setInterval(
    () => {
      redis.eval(RENEW_SCRIPT, 1, key, token, ttlMs).then(
        (renewed) => {
          if (renewed !== 1) logger.warn('job lock lost before the run ended', { lock: name })
        },
        (error) => logger.warn('job lock renewal failed', { lock: name, err: error }),
      )
    },
    Math.max(1, Math.floor(ttlMs / 3)),
  )
  renewal.unref()

  return {
    token,
    fence,
    isHeld: async () => (await withRedis(() => redis.get(key))) === token,
    release: async () => {
      clearInterval(renewal)
      await withRedis(() => redis.eval(RELEASE_SCRIPT, 1, key, token))
    },
  }
}

/** A condition for a write's WHERE: true only while no later holder of `name`'s lock exists. */
export const isFenceCurrent = (name: string, lock: Pick<JobLock, 'fence'>): SQL =>
  sql`(SELECT ${jobState.fence} FROM ${jobState} WHERE ${jobState.name} = ${name}) = ${lock.fence}`
