import { serve } from '@hono/node-server'
import { createDocsApp } from './docs/app.ts'
import { createCreateApplicationApp } from './create-application/app.ts'
import { createGetApplicationApp } from './get-application/app.ts'
import { createHealthApp } from './health/app.ts'
import { createUpdateApplicationApp } from './update-application/app.ts'
import { ConfigError, type Config, loadConfig } from '../lib/config.ts'
import { migrateDatabase } from '../lib/db.ts'
import { createDeps, type Deps } from '../lib/deps.ts'
import { createApi } from '../lib/http/api.ts'
import { createLogger } from '../lib/logger.ts'
import { retryWithBackoff } from '../lib/retry.ts'

/** Every function's app on one root: the same URLs, bodies and errors as the Lambdas. */
export const createServerApp = (deps: Deps) =>
  createApi(deps.logger)
    .route('/', createHealthApp(deps))
    .route('/', createDocsApp(deps))
    .route('/', createCreateApplicationApp(deps))
    .route('/', createGetApplicationApp(deps))
    .route('/', createUpdateApplicationApp(deps))

export interface RunningServer {
  port: number
  deps: Deps
  stop(): Promise<void>
}

/** Prepares the backing services (migrations…), then serves HTTP. Returns once listening. */
export const startServer = async (config: Config, deps: Deps = createDeps(config)): Promise<RunningServer> => {
  const { logger } = deps
  if (config.DATABASE_MIGRATE_ON_START) {
    await retryWithBackoff('database migration', () => migrateDatabase(config.DATABASE_URL), logger)
  }
  await retryWithBackoff('redis connection', () => deps.redis.connect().catch((error) => {
    if (deps.redis.status === 'ready' || deps.redis.status === 'connect') return
    throw error
  }), logger)

  const app = createServerApp(deps)
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const instance = serve({ fetch: app.fetch, port: config.PORT, hostname: config.HOST }, () => resolve(instance))
  })
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : config.PORT
  logger.info('listening', { port })

  let stopping: Promise<void> | undefined
  const stop = () => {
    stopping ??= (async () => {
      logger.info('shutting down')
      await new Promise<void>((resolve) => server.close(() => resolve()))
      await deps.close()
      logger.info('stopped')
    })()
    return stopping
  }
  return { port, deps, stop }
}

const main = async () => {
  let config: Config
  try {
    config = loadConfig(process.env)
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
    process.stderr.write(`${error.message}\n`)
    process.exit(78) // EX_CONFIG
  }
  const logger = createLogger(config.LOG_LEVEL)
  const running = await startServer(config, createDeps(config, logger))
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

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  main().catch((error) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
    process.exit(1)
  })
}
