import { countersKey } from '../keys.ts'
import type { Redis } from '../redis.ts'
import { createScript } from '../redis-script.ts'

// Persistence's part of numbering: after a write, pull a counter up to what was persisted. Its
// script stands alone, so that the consumers load none of the request path's.

/** KEYS: counters. ARGV: field, number. Raises a counter that exists to at least `number`. */
const RAISE = `
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current and tonumber(current) < tonumber(ARGV[2]) then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 0
`

const raise = createScript(RAISE)

/**
 * Raises counters that exist to at least the numbers just persisted. After Redis lost its data and
 * re-seeded, this pulls a counter above jobs that were still in flight during the seed.
 */
export const raiseCounters = async (
  redis: Redis,
  persisted: Array<{ token: string; field: string; number: number }>,
) => {
  const highest = new Map<string, { token: string; field: string; number: number }>()
  for (const item of persisted) {
    const key = `${item.token}|${item.field}`
    if ((highest.get(key)?.number ?? 0) < item.number) highest.set(key, item)
  }
  await Promise.all(
    [...highest.values()].map((item) => raise(redis, [countersKey(item.token)], [item.field, item.number])),
  )
}
