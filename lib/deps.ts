import type { Config } from './config.ts'
import { createDatabase, type Database, type Db } from './db.ts'
import { createLogger, type Logger } from './logger.ts'
import { createRedis, type Redis } from './redis.ts'
import { systemClock, type Clock } from './time.ts'
import { newToken } from './tokens.ts'

/** Everything a function needs from the outside world, built once per process or cold start. */
export interface Deps {
  config: Config
  logger: Logger
  clock: Clock
  newToken: () => string
  db: Db
  database: Database
  redis: Redis
  /** Named liveness checks of the backing services, for GET /ready. */
  probes: Record<string, () => Promise<unknown>>
  close(): Promise<void>
}

/** Builds clients from config. Connections open lazily, on first use. */
export const createDeps = (config: Config, logger: Logger = createLogger(config.LOG_LEVEL)): Deps => {
  const database = createDatabase(config.DATABASE_URL, config.DATABASE_POOL_SIZE)
  const redis = createRedis(config.REDIS_URL, config.REDIS_KEY_PREFIX)
  return {
    config,
    logger,
    clock: systemClock,
    newToken,
    db: database.db,
    database,
    redis,
    probes: {
      mysql: () => database.pool.query('SELECT 1'),
      redis: () => redis.ping(),
    },
    close: async () => {
      await Promise.allSettled([database.close(), redis.quit()])
    },
  }
}
