import { Redis } from 'ioredis'
import { UnavailableError } from './errors.ts'

export type { Redis }

/**
 * An ioredis client with a key prefix and fail-fast settings: a request never waits long on a dead
 * Redis, it gets a 503. Auto-pipelining sends the commands of concurrent requests in one write.
 */
export const createRedis = (url: string, keyPrefix: string): Redis =>
  new Redis(url, {
    keyPrefix,
    lazyConnect: true,
    enableAutoPipelining: true,
    maxRetriesPerRequest: 1,
    // The ready check holds commands, untimed, while Redis loads its dataset (minutes for a big
    // one); without it they reach Redis and come back LOADING at once, which is a fast 503.
    enableReadyCheck: false,
    connectTimeout: 2_000,
    commandTimeout: 2_000,
    retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, 2_000),
  })

// Replies of a Redis that is there but cannot take the command now: out of memory under
// noeviction, a replica (read-only, or cut off from its master), loading, a busy script, a cluster
// moving slots, too few replicas, a failing snapshot. Inside a script the code follows a prefix.
const UNAVAILABLE_REPLY =
  /(?:^|[\s-])(OOM|READONLY|LOADING|MASTERDOWN|BUSY|TRYAGAIN|CLUSTERDOWN|NOREPLICAS|MISCONF) /

/** True when a Redis error means Redis cannot serve now, rather than a bad command (a bug). */
export const isRedisUnavailable = (error: unknown): boolean =>
  (error as Error)?.name !== 'ReplyError' || UNAVAILABLE_REPLY.test(String((error as Error).message))

/**
 * Runs Redis commands and turns failures of Redis (connection lost, timeout, the replies above)
 * into UnavailableError (503). Script errors (a bug) pass through unchanged.
 */
export const withRedis = async <T>(work: () => Promise<T>): Promise<T> => {
  try {
    return await work()
  } catch (error) {
    if (!isRedisUnavailable(error)) throw error
    throw new UnavailableError('Redis is', { cause: error })
  }
}
