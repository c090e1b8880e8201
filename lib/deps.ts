import type { SQSClient } from '@aws-sdk/client-sqs'
import { type BacklogMonitor, createBacklogMonitor } from './backlog.ts'
import type { Config } from './config.ts'
import { createDatabase, type Db } from './db.ts'
import { createLiveHub, type LiveHub } from './live/hub.ts'
import { createLogger, type Logger } from './logger.ts'
import { useMetrics } from './metrics.ts'
import { createSqsClient } from './queue/client.ts'
import { countQueuedJobs } from './queue/count.ts'
import { ensureQueues, lookUpDeadLetterQueues, lookUpQueues, type QueueName } from './queue/provisioning.ts'
import { threadBatchSender } from './queue/sender-thread.ts'
import { createJobQueue, type JobQueue } from './queue/write-behind.ts'
import { createRedis, type Redis } from './redis.ts'
import { createSearch, type Search } from './search/client.ts'
import { countUnindexed } from './search/outbox.ts'
import { type Clock, systemClock } from './time.ts'
import { newToken } from './tokens.ts'

/** Everything a function needs from the outside world, built once per process or cold start. */
export interface Deps {
  config: Config
  logger: Logger
  clock: Clock
  newToken: () => string
  db: Db
  redis: Redis
  sqs: SQSClient
  queueUrls: () => Promise<Record<QueueName, string>>
  deadLetterUrls: () => Promise<Record<QueueName, string>>
  queue: JobQueue
  inFlightJobs: () => Promise<number>
  search: Search
  /** The live message streams of this process (opens its Redis connection on the first stream). */
  live: LiveHub
  /** Queue, dead-letter and index backlog, cached for GET /ready and the GET /metrics gauges. */
  backlog: BacklogMonitor
  /** Named liveness checks of the backing services, for GET /ready. */
  probes: Record<string, () => Promise<unknown>>
  close(): Promise<void>
}

/** Memoizes a promise-returning function, forgetting failures so that the next call tries again. */
const once = <T>(make: () => Promise<T>) => {
  let value: Promise<T> | undefined
  return () => {
    value ??= make().catch((error) => {
      value = undefined
      throw error
    })
    return value
  }
}

/**
 * Builds clients from config. Connections open lazily, on first use. In Lambda the queues belong
 * to the stack and are only looked up, and every job is sent at once (a Lambda serves one request).
 */
export const createDeps = (
  config: Config,
  { logger = createLogger(config.LOG_LEVEL), isLambda = false }: { logger?: Logger; isLambda?: boolean } = {},
): Deps => {
  const database = createDatabase(config.DATABASE_URL, {
    poolSize: config.DATABASE_POOL_SIZE,
    lockWaitTimeoutS: config.DATABASE_LOCK_WAIT_TIMEOUT_S,
    queryTimeoutMs: config.DATABASE_QUERY_TIMEOUT_MS,
  })
  const redis = createRedis(config.REDIS_URL, config.REDIS_KEY_PREFIX)
  // Requests see Redis failures as 503s; the connection's own errors are only worth a log line.
  redis.on('error', (error) => logger.debug('redis connection error', { err: error }))
  const sqs = createSqsClient(config)
  const queueUrls = once(() =>
    config.SQS_CREATE_QUEUES && !isLambda ? ensureQueues(sqs, config) : lookUpQueues(sqs, config),
  )
  // After queueUrls: where the server creates the queues, it creates the dead-letter queues first.
  const deadLetterUrls = once(async () => {
    await queueUrls()
    return lookUpDeadLetterQueues(sqs, config)
  })
  const queue = createJobQueue(sqs, queueUrls, {
    flushMs: isLambda ? 0 : config.SQS_FLUSH_MS,
    timeoutMs: config.SQS_TIMEOUT_MS,
    maxJobs: config.SQS_MAX_JOBS_IN_FLIGHT,
    maxBytes: config.SQS_MAX_BYTES_IN_FLIGHT,
    // A Lambda serves one request at a time: a thread would only add a hop.
    ...(!isLambda && config.SQS_SEND_THREAD && { sender: threadBatchSender(config, logger) }),
    logger,
  })
  const search = createSearch(config, { logger }, { bulkConcurrency: config.SEARCH_BULK_CONCURRENCY })
  const live = createLiveHub({
    redis,
    redisUrl: config.REDIS_URL,
    keyPrefix: config.REDIS_KEY_PREFIX,
    logger,
    streamsPerApplication: config.LIVE_STREAMS_PER_APPLICATION,
    pingIntervalMs: config.LIVE_PING_INTERVAL_S * 1000,
    queueLimit: config.LIVE_QUEUE_LIMIT,
    maxStreamMs: config.LIVE_STREAM_MAX_S * 1000,
  })
  useMetrics(config.METRICS_ENABLED ? (isLambda ? 'emf' : 'prometheus') : 'off')
  return {
    config,
    logger,
    clock: systemClock,
    newToken,
    db: database.db,
    redis,
    sqs,
    queueUrls,
    deadLetterUrls,
    queue,
    // Dead-lettered jobs hold numbers too: a redrive would bring them back.
    inFlightJobs: async () =>
      countQueuedJobs(
        sqs,
        [...Object.values(await queueUrls()), ...Object.values(await deadLetterUrls())],
        config.SQS_TIMEOUT_MS,
      ),
    search,
    live,
    backlog: createBacklogMonitor({
      sqs,
      queueUrls,
      deadLetterUrls,
      countIndexPending: () => countUnindexed(database.db),
      logger,
    }),
    probes: {
      mysql: () => database.ping(),
      // A write: a Redis that answers PING may still refuse writes (maxmemory, a replica).
      redis: () => redis.set('ready', '1', 'PX', 60_000),
      sqs: () => queue.ping(),
      search: () => search.ping(),
    },
    close: async () => {
      await Promise.all([queue.close(), live.close()])
      await Promise.allSettled([database.close(), redis.quit(), search.close()])
      sqs.destroy()
    },
  }
}
