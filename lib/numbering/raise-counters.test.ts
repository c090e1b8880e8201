import { randomBytes } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { countersKey } from '../keys.ts'
import { createRedis, type Redis } from '../redis.ts'
import { raiseCounters } from './raise-counters.ts'

describe('raiseCounters', () => {
  let redis: Redis | undefined

  afterEach(async () => {
    await redis?.quit()
  })

  it('raises a counter below the persisted number and leaves a higher or missing one alone', async () => {
    redis = createRedis(
      process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
      `test:raise:${randomBytes(4).toString('hex')}:`,
    )
    await redis.hset(countersKey('a'), 'c', '3', 'm:1', '9')

    await raiseCounters(redis, [
      { token: 'a', field: 'c', number: 5 },
      { token: 'a', field: 'c', number: 4 },
      { token: 'a', field: 'm:1', number: 2 },
      { token: 'b', field: 'c', number: 7 },
    ])

    expect(await redis.hgetall(countersKey('a'))).toEqual({ c: '5', 'm:1': '9' })
    expect(await redis.exists(countersKey('b'))).toBe(0)
    await redis.del(countersKey('a'))
  })

  // A fresh client whose auto-pipeline is already filling when the first raise runs: with the script
  // defined through ioredis's defineCommand, that threw and then crashed the process (a consumer
  // raising counters beside its other Redis calls took the whole server down).
  it('runs on a fresh client in the same tick as other commands', async () => {
    redis = createRedis(
      process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
      `test:raise:${randomBytes(4).toString('hex')}:`,
    )
    await redis.hset(countersKey('a'), 'c', '1')

    await Promise.all([
      redis.get('unrelated'),
      raiseCounters(redis, [{ token: 'a', field: 'c', number: 3 }]),
      redis.get('unrelated'),
    ])

    expect(await redis.hget(countersKey('a'), 'c')).toBe('3')
    await redis.del(countersKey('a'))
  })
})
