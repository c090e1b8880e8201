import { countersKey } from '../keys.ts'
import type { Redis } from '../redis.ts'
import { scripted } from './scripts.ts'

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
  const r = scripted(redis)
  await Promise.all(
    [...highest.values()].map((item) =>
      r.raiseCounter(countersKey(item.token), item.field, String(item.number)),
    ),
  )
}
