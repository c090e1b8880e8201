export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent'
export type LogFields = Record<string, unknown>

export interface Logger {
  debug(msg: string, fields?: LogFields): void
  info(msg: string, fields?: LogFields): void
  warn(msg: string, fields?: LogFields): void
  error(msg: string, fields?: LogFields): void
  child(fields: LogFields): Logger
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 }

const serialize = (value: unknown): unknown => {
  if (value instanceof Error) {
    const cause = value.cause === undefined ? undefined : serialize(value.cause)
    return { name: value.name, message: value.message, stack: value.stack, ...(cause ? { cause } : {}) }
  }
  return value
}

/**
 * A JSON-lines logger: one object per line with `level`, `time` and `msg`.
 *
 * @example createLogger('info').child({ request_id }).warn('slow query', { ms: 120 })
 */
export const createLogger = (
  level: LogLevel,
  write: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
  base: LogFields = {},
): Logger => {
  const threshold = RANK[level]
  const log = (lvl: Exclude<LogLevel, 'silent'>) => (msg: string, fields?: LogFields) => {
    if (RANK[lvl] < threshold) return
    const entry: LogFields = { level: lvl, time: new Date().toISOString(), msg, ...base }
    for (const [key, value] of Object.entries(fields ?? {})) entry[key] = serialize(value)
    write(JSON.stringify(entry))
  }
  return {
    debug: log('debug'),
    info: log('info'),
    warn: log('warn'),
    error: log('error'),
    child: (fields) => createLogger(level, write, { ...base, ...fields }),
  }
}

/** A logger that keeps nothing: for tests that do not assert on logs. */
export const silentLogger: Logger = createLogger('silent')
