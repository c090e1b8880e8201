import { writeSync } from 'node:fs'

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

// Lines wait in memory for the end of the current event-loop turn and leave in one write: on a
// busy server that is one syscall for many access log lines instead of one each (stdout is
// synchronous for files and pipes). Whatever is still waiting when the process exits is written
// synchronously then, so `process.exit()` loses nothing.
const FLUSH_BYTES = 64 * 1024
let pending: string[] = []
let pendingBytes = 0
let isScheduled = false
let isExitHooked = false

const flushStdout = () => {
  isScheduled = false
  if (pending.length === 0) return
  const chunk = pending.join('')
  pending = []
  pendingBytes = 0
  process.stdout.write(chunk)
}

/** The default sink: buffered JSON lines to stdout, flushed each event-loop turn and on exit. */
export const writeStdout = (line: string) => {
  if (!isExitHooked) {
    isExitHooked = true
    process.once('exit', () => {
      if (pending.length > 0) writeSync(1, pending.join(''))
      pending = []
    })
  }
  pending.push(`${line}\n`)
  pendingBytes += line.length + 1
  if (pendingBytes >= FLUSH_BYTES) flushStdout()
  else if (!isScheduled) {
    isScheduled = true
    setImmediate(flushStdout)
  }
}

// `,"key":` of each field name seen, so that a name is quoted once (log field names are few).
const memberHeads = new Map<string, string>()
const memberHead = (key: string) => {
  let head = memberHeads.get(key)
  if (head === undefined) {
    head = `,${JSON.stringify(key)}:`
    if (memberHeads.size < 1_000) memberHeads.set(key, head)
  }
  return head
}

/** `,"key":value` for each field JSON can hold (undefined and functions are left out, as JSON.stringify does). */
const jsonMembers = (fields: LogFields | undefined) => {
  let members = ''
  if (fields) {
    for (const key in fields) {
      const field = fields[key]
      // Numbers, the access log line's status and ms, need no JSON.stringify.
      const value =
        typeof field === 'number'
          ? Number.isFinite(field)
            ? String(field)
            : 'null'
          : JSON.stringify(serialize(field))
      if (value !== undefined) members += memberHead(key) + value
    }
  }
  return members
}

// The ISO time of the last line, kept for the lines of the same millisecond.
let lastMs = 0
let lastTime = ''
const isoNow = () => {
  const now = Date.now()
  if (now !== lastMs) {
    lastMs = now
    lastTime = new Date(now).toISOString()
  }
  return lastTime
}

// Lines are built as strings: the base fields (a child's request_id, say) are serialized once, when
// the child is made. A field named like an earlier one comes later in the line, and JSON readers
// keep the last, so it overrides it as before.
class JsonLogger implements Logger {
  readonly #threshold: number
  readonly #level: LogLevel
  readonly #write: (line: string) => void
  readonly #base: string

  constructor(level: LogLevel, write: (line: string) => void, base: string) {
    this.#level = level
    this.#threshold = RANK[level]
    this.#write = write
    this.#base = base
  }

  #log(level: Exclude<LogLevel, 'silent'>, msg: string, fields?: LogFields) {
    if (RANK[level] < this.#threshold) return
    this.#write(
      `{"level":"${level}","time":"${isoNow()}","msg":${JSON.stringify(msg)}${this.#base}${jsonMembers(fields)}}`,
    )
  }

  debug(msg: string, fields?: LogFields) {
    this.#log('debug', msg, fields)
  }
  info(msg: string, fields?: LogFields) {
    this.#log('info', msg, fields)
  }
  warn(msg: string, fields?: LogFields) {
    this.#log('warn', msg, fields)
  }
  error(msg: string, fields?: LogFields) {
    this.#log('error', msg, fields)
  }
  child(fields: LogFields): Logger {
    return new JsonLogger(this.#level, this.#write, this.#base + jsonMembers(fields))
  }
}

/**
 * A JSON-lines logger: one object per line with `level`, `time` and `msg`. Cheap to call and to
 * derive children from: a child per request costs one small object.
 *
 * @example createLogger('info').child({ request_id }).warn('slow query', { ms: 120 })
 */
export const createLogger = (
  level: LogLevel,
  write: (line: string) => void = writeStdout,
  base: LogFields = {},
): Logger => new JsonLogger(level, write, jsonMembers(base))

const ignore = () => undefined

/**
 * A logger that keeps nothing: for tests that do not assert on logs. A plain object, so that a test
 * can spread it and replace one method (`{ ...silentLogger, error: record }`).
 */
export const silentLogger: Logger = {
  debug: ignore,
  info: ignore,
  warn: ignore,
  error: ignore,
  child: () => silentLogger,
}
