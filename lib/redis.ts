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
    connectTimeout: 2_000,
    commandTimeout: 2_000,
    retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, 2_000),
  })

/**
 * Runs Redis commands and turns connection failures into UnavailableError (503).
 * Script errors (a bug) pass through unchanged.
 */
export const withRedis = async <T>(work: () => Promise<T>): Promise<T> => {
  try {
    return await work()
  } catch (error) {
    const name = (error as Error)?.name
    const message = String((error as Error)?.message ?? '')
    if (name === 'ReplyError' && !/LOADING|READONLY|MASTERDOWN|BUSY/.test(message)) throw error
    throw new UnavailableError('Redis is', { cause: error })
  }
}
