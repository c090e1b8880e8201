import * as v from 'valibot'

const integer = (fallback: number, min: number, max: number) =>
  v.optional(
    v.pipe(
      v.string(),
      v.trim(),
      v.regex(/^\d+$/, 'must be a whole number'),
      v.transform(Number),
      v.number(),
      v.minValue(min),
      v.maxValue(max),
    ),
    String(fallback),
  )

const boolean = (fallback: boolean) =>
  v.optional(
    v.pipe(
      v.string(),
      v.trim(),
      v.toLowerCase(),
      v.picklist(['true', 'false', '1', '0', 'yes', 'no'], 'must be true or false'),
      v.transform((value) => value === 'true' || value === '1' || value === 'yes'),
    ),
    String(fallback),
  )

const url = (fallback: string, protocols: readonly string[]) =>
  v.optional(
    v.pipe(
      v.string(),
      v.trim(),
      v.url('must be a URL'),
      v.check(
        (value) => protocols.includes(new URL(value).protocol),
        `must start with ${protocols.map((p) => `${p}//`).join(' or ')}`,
      ),
    ),
    fallback,
  )

const plainName = v.pipe(v.string(), v.trim(), v.regex(/^[A-Za-z0-9_.:-]{1,80}$/, 'must be a plain name'))

const name = (fallback: string) => v.optional(plainName, fallback)

/**
 * Every environment variable the system reads, with its default. The defaults run the system
 * natively on a developer machine (MariaDB/MySQL and Redis on localhost).
 */
export const configSchema = v.object({
  NODE_ENV: v.optional(v.picklist(['development', 'production', 'test']), 'development'),
  PORT: integer(3000, 0, 65535),
  HOST: v.optional(v.pipe(v.string(), v.trim(), v.minLength(1)), '0.0.0.0'),
  LOG_LEVEL: v.optional(v.picklist(['debug', 'info', 'warn', 'error', 'silent']), 'info'),
  METRICS_ENABLED: boolean(true),
  DATABASE_URL: url('mysql://root@127.0.0.1:3306/chat', ['mysql:']),
  DATABASE_POOL_SIZE: integer(10, 1, 500),
  DATABASE_MIGRATE_ON_START: boolean(true),
  DATABASE_LOCK_WAIT_TIMEOUT_S: integer(5, 1, 3600),
  DATABASE_QUERY_TIMEOUT_MS: integer(10_000, 100, 3_600_000),
  REDIS_URL: url('redis://127.0.0.1:6379', ['redis:', 'rediss:']),
  REDIS_KEY_PREFIX: v.optional(
    v.pipe(v.string(), v.regex(/^[A-Za-z0-9_:.-]{0,64}$/, 'must be a plain key prefix')),
    'chat:',
  ),
  AWS_REGION: v.optional(
    v.pipe(v.string(), v.trim(), v.regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'must be an AWS region')),
    'us-east-1',
  ),
  AWS_ACCESS_KEY_ID: v.optional(v.string()),
  AWS_SECRET_ACCESS_KEY: v.optional(v.string()),
  SQS_ENDPOINT: url('http://127.0.0.1:4566', ['http:', 'https:']),
  SQS_CREATE_QUEUES: boolean(true),
  SQS_CHATS_QUEUE: name('chats'),
  SQS_MESSAGES_QUEUE: name('messages'),
  // By default `<queue>-dlq`, the names the server and LocalStack create; the CDK stack's are generated.
  SQS_CHATS_DEAD_LETTER_QUEUE: v.optional(plainName),
  SQS_MESSAGES_DEAD_LETTER_QUEUE: v.optional(plainName),
  SQS_MAX_RECEIVES: integer(5, 1, 1000),
  SQS_VISIBILITY_TIMEOUT_S: integer(30, 1, 43200),
  SQS_FLUSH_MS: integer(2, 0, 1000),
  SQS_TIMEOUT_MS: integer(3000, 100, 60_000),
  // Off Lambda, the write-behind buffer's SendMessageBatch calls run in a worker thread.
  SQS_SEND_THREAD: boolean(true),
  SQS_MAX_JOBS_IN_FLIGHT: integer(10_000, 1, 1_000_000),
  SQS_MAX_BYTES_IN_FLIGHT: integer(32 * 1024 * 1024, 64 * 1024, 2 ** 31),
  SQS_POLLERS: integer(2, 0, 64),
  SQS_BATCH_WINDOW_MS: integer(50, 0, 5_000),
  ELASTICSEARCH_URL: url('http://127.0.0.1:9200', ['http:', 'https:']),
  SEARCH_INDEX: name('messages'),
  SEARCH_BULK_CONCURRENCY: integer(4, 1, 64),
  WRITE_RATE_LIMIT_PER_S: integer(5000, 0, 1_000_000),
  RUN_WORKERS: boolean(true),
  RECONCILE_INTERVAL_S: integer(60, 1, 3600),
  RECONCILE_FULL_INTERVAL_S: integer(3600, 60, 3600),
  LIVE_STREAMS_PER_APPLICATION: integer(1000, 1, 1_000_000),
  LIVE_PING_INTERVAL_S: integer(15, 1, 15),
  LIVE_QUEUE_LIMIT: integer(500, 1, 100_000),
  LIVE_STREAM_MAX_S: integer(0, 0, 86_400),
})

export type Config = v.InferOutput<typeof configSchema>

export class ConfigError extends Error {
  override name = 'ConfigError'
}

/**
 * Parses the environment once. Throws a ConfigError naming every missing or malformed variable.
 *
 * @example const config = loadConfig(process.env)
 */
export const loadConfig = (env: Record<string, string | undefined>): Config => {
  const present = Object.fromEntries(
    Object.entries(env).filter(([, value]) => value !== undefined && value !== ''),
  )
  const result = v.safeParse(configSchema, present)
  if (result.success) return result.output
  const problems = result.issues.map((issue) => {
    const key = issue.path?.map((item) => String(item.key)).join('.') ?? '(environment)'
    return `  ${key}=${JSON.stringify(env[key] ?? '')}: ${issue.message}`
  })
  throw new ConfigError(`invalid environment:\n${problems.join('\n')}`)
}
