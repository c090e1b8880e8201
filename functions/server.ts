import { serve } from '@hono/node-server'
import { type Config, loadConfig } from '../lib/config.ts'
import { migrateDatabase } from '../lib/db.ts'
import { createDeps, type Deps } from '../lib/deps.ts'
import { createApi, mountApis } from '../lib/http/api.ts'
import { createLogger } from '../lib/logger.ts'
import { type Poller, startPoller } from '../lib/queue/poller.ts'
import { queueArnOf } from '../lib/queue/provisioning.ts'
import { retryWithBackoff } from '../lib/retry.ts'
import { runMain } from '../lib/run-main.ts'
import { startScheduler } from '../lib/scheduler.ts'
import { createCreateApplicationApp } from './create-application/app.ts'
import { createCreateChatApp } from './create-chat/app.ts'
import { createCreateMessageApp } from './create-message/app.ts'
import { createDocsApp } from './docs/app.ts'
import { createGetApplicationApp } from './get-application/app.ts'
import { createGetChatApp } from './get-chat/app.ts'
import { createGetMessageApp } from './get-message/app.ts'
import { createHealthApp } from './health/app.ts'
import { createListChatsApp } from './list-chats/app.ts'
import { createListMessagesApp } from './list-messages/app.ts'
import { createMetricsApp } from './metrics/app.ts'
import { createPersistChatsConsumer } from './persist-chats/consumer.ts'
import { createPersistMessagesConsumer } from './persist-messages/consumer.ts'
import { createReconcileCountsJob } from './reconcile-counts/job.ts'
import { createRetryIndexingSchedule } from './retry-indexing/job.ts'
import { createSearchMessagesApp } from './search-messages/app.ts'
import { createStreamMessagesApp } from './stream-messages/app.ts'
import { createUpdateApplicationApp } from './update-application/app.ts'
import { createUpdateChatApp } from './update-chat/app.ts'
import { createUpdateMessageApp } from './update-message/app.ts'

/**
 * Every function's app on one root: the same URLs, bodies and errors as the Lambdas, with the shared
 * middleware run once per request (see mountApis).
 */
export const createServerApp = (deps: Deps) =>
  mountApis(createApi(deps.logger), [
    createHealthApp(deps),
    createMetricsApp(deps),
    createDocsApp(deps),
    createCreateApplicationApp(deps),
    createGetApplicationApp(deps),
    createUpdateApplicationApp(deps),
    createCreateChatApp(deps),
    createListChatsApp(deps),
    createGetChatApp(deps),
    createUpdateChatApp(deps),
    createSearchMessagesApp(deps),
    createCreateMessageApp(deps),
    createListMessagesApp(deps),
    createStreamMessagesApp(deps),
    createGetMessageApp(deps),
    createUpdateMessageApp(deps),
  ])

/** The background half of the server: SQS pollers feeding the consumer functions. */
export const startWorkers = async (deps: Deps) => {
  const urls = await deps.queueUrls()
  const consumers = {
    chats: createPersistChatsConsumer(deps),
    messages: createPersistMessagesConsumer(deps),
  }
  // What a failing batch needs in order to succeed: when these are down, polling pauses.
  const isHealthy = () =>
    Promise.all([deps.probes.mysql!(), deps.probes.redis!()]).then(
      () => true,
      () => false,
    )
  const pollers: Poller[] = []
  for (const queue of ['chats', 'messages'] as const) {
    const arn = await queueArnOf(deps.sqs, urls[queue])
    pollers.push(
      startPoller(deps.sqs, urls[queue], arn, consumers[queue], {
        concurrency: deps.config.SQS_POLLERS,
        batchWindowMs: deps.config.SQS_BATCH_WINDOW_MS,
        visibilityTimeoutS: deps.config.SQS_VISIBILITY_TIMEOUT_S,
        logger: deps.logger.child({ queue }),
        isHealthy,
      }),
    )
  }
  return {
    stop: async () => {
      await Promise.all(pollers.map((poller) => poller.stop()))
    },
  }
}

export interface RunningServer {
  port: number
  deps: Deps
  stop(): Promise<void>
}

/**
 * Prepares the backing services (migrations, queues), retrying while they boot, then serves `app`
 * (the server's is `createServerApp(deps)`) and, unless RUN_WORKERS is false, runs the pollers and
 * the scheduler. Returns once listening.
 */
export const startServer = async (
  config: Config,
  deps: Deps,
  app: ReturnType<typeof createServerApp>,
): Promise<RunningServer> => {
  const { logger } = deps
  if (config.DATABASE_MIGRATE_ON_START) {
    await retryWithBackoff('database migration', () => migrateDatabase(config.DATABASE_URL), logger)
  }
  await retryWithBackoff('redis connection', () => deps.redis.ping(), logger)
  await retryWithBackoff('queue setup', () => deps.queueUrls(), logger)
  // In the background: the server must serve (and persist) while the search engine is down. Writes
  // create the index lazily too, and failed writes wait in the outbox for the retry job.
  retryWithBackoff('search index setup', () => deps.search.ensureIndex(), logger).catch((error) =>
    logger.error('search index setup failed; writes will retry it', { err: error }),
  )

  const workers = config.RUN_WORKERS && config.SQS_POLLERS > 0 ? await startWorkers(deps) : undefined
  const scheduler = config.RUN_WORKERS
    ? startScheduler(
        [
          {
            name: 'reconcile-counts',
            intervalMs: config.RECONCILE_INTERVAL_S * 1000,
            run: createReconcileCountsJob(deps),
          },
          createRetryIndexingSchedule(deps),
        ],
        deps.logger,
      )
    : undefined

  const backlog = config.METRICS_ENABLED ? deps.backlog.start() : undefined
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const instance = serve({ fetch: app.fetch, port: config.PORT, hostname: config.HOST }, () =>
      resolve(instance),
    )
  })
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : config.PORT
  logger.info('listening', { port, workers: Boolean(workers) })

  let stopping: Promise<void> | undefined
  const stop = () => {
    // Stop taking requests, finish the batches in flight, flush the buffer, close the pools.
    stopping ??= (async () => {
      logger.info('shutting down')
      // Open live streams never end by themselves: end them, or the server would wait on them.
      await Promise.all([new Promise<void>((resolve) => server.close(() => resolve())), deps.live.close()])
      backlog?.stop()
      await Promise.all([workers?.stop(), scheduler?.stop()])
      await deps.close()
      logger.info('stopped')
    })()
    return stopping
  }
  return { port, deps, stop }
}

const main = async () => {
  const config = loadConfig(process.env)
  const logger = createLogger(config.LOG_LEVEL)
  const deps = createDeps(config, { logger })
  const running = await startServer(config, deps, createServerApp(deps))
  // A parent that started this process with an IPC channel (a process manager, the tests) learns
  // the port it really got: with PORT=0 there is no port to guess, and none another process can take.
  process.send?.({ listening: running.port })
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      running.stop().then(
        () => process.exit(0),
        (error) => {
          logger.error('shutdown failed', { err: error })
          process.exit(1)
        },
      )
    })
  }
}

runMain(import.meta.url, main)
