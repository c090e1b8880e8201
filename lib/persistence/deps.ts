import type { Db } from '../db.ts'
import type { Logger } from '../logger.ts'
import type { Redis } from '../redis.ts'
import type { Search } from '../search/client.ts'

export interface PersistDeps {
  db: Db
  redis: Redis
  search: Pick<Search, 'bulkIndex'>
  logger: Pick<Logger, 'warn' | 'error'>
}
