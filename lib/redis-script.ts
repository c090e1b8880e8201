import { createHash } from 'node:crypto'
import type { Redis } from './redis.ts'

/**
 * A Lua script run by its SHA, sent in full only when Redis lacks it. (ioredis's defineCommand
 * breaks when the command is first defined while an auto-pipeline is already filling.)
 */
export const createScript = (lua: string) => {
  const sha = createHash('sha1').update(lua).digest('hex')
  return async <T>(redis: Redis, keys: string[], args: Array<string | number>): Promise<T> => {
    try {
      return (await redis.evalsha(sha, keys.length, ...keys, ...args)) as T
    } catch (error) {
      if (!/NOSCRIPT/.test(String((error as Error)?.message))) throw error
      return (await redis.eval(lua, keys.length, ...keys, ...args)) as T
    }
  }
}
