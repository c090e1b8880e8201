import { fileURLToPath } from 'node:url'
import { type Column, fillPlaceholders } from 'drizzle-orm'
import { drizzle, type MySql2Database } from 'drizzle-orm/mysql2'
import { migrate } from 'drizzle-orm/mysql2/migrator'
import mysql, { type Pool, type PoolOptions } from 'mysql2/promise'
import * as schema from '../db/schema.ts'
import { UnavailableError } from './errors.ts'

export type Db = MySql2Database<typeof schema>

export interface Database {
  db: Db
  pool: Pool
  /** One bounded round trip, for readiness checks. */
  ping(): Promise<unknown>
  close(): Promise<void>
}

const MIGRATIONS_FOLDER = fileURLToPath(new URL('../db/migrations', import.meta.url))
const MIGRATION_LOCK = 'chat_system_migrations'

const poolOptions = (url: string, size: number): PoolOptions => ({
  uri: url,
  connectionLimit: size,
  maxIdle: size,
  idleTimeout: 60_000,
  enableKeepAlive: true,
  connectTimeout: 5_000,
  charset: 'utf8mb4_unicode_520_ci',
  timezone: 'Z',
  supportBigNumbers: true,
  // Hitting the limit queues callers; a bounded queue turns a dead database into fast 503s.
  queueLimit: size * 50,
  // mysql2's default, stated because the consumers rely on it: a multi-row upsert's "Duplicates"
  // then counts every row that met an existing key, changed or not (see lib/persistence/upsert.ts).
  flags: ['FOUND_ROWS'],
  // No stack captured at every call (mysql2's "long stack traces": 8-10 µs each, twice per
  // statement through boundStatements, more CPU than the rest of mysql2 on a single-row read).
  // drizzle's DrizzleQueryError still carries the caller's stack; withDatabase's 503 does too.
  trace: false,
})

/**
 * The pool as drizzle sees it, with every `query` and `execute` bounded by `timeoutMs`, the wait
 * for a connection included. A statement past it destroys its connection: mysql2's own `timeout`
 * would leave the connection in the pool with the statement still pending, and every later one
 * queued behind it, so a database that stops answering would keep the pool stuck after it heals.
 */
const boundStatements = (pool: Pool, timeoutMs: number): Pool =>
  new Proxy(pool, {
    get(target, property, receiver) {
      if (property !== 'query' && property !== 'execute') return Reflect.get(target, property, receiver)
      return async (...args: unknown[]) => {
        const acquiring = target.getConnection()
        let timer: NodeJS.Timeout | undefined
        let hasTimedOut = false
        const timedOut = new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            hasTimedOut = true
            reject(Object.assign(new Error(`MySQL did not answer in ${timeoutMs} ms`), { code: 'ETIMEDOUT' }))
          }, timeoutMs)
        })
        const run = acquiring.then(async (connection) => {
          if (hasTimedOut) return connection.release()
          try {
            return await (connection[property] as (...a: unknown[]) => Promise<unknown>)(...args)
          } finally {
            if (hasTimedOut) connection.destroy()
            else connection.release()
          }
        })
        run.catch(() => undefined) // settled after the timeout: nobody awaits it any more
        try {
          return await Promise.race([run, timedOut])
        } finally {
          clearTimeout(timer)
        }
      }
    },
  })

export interface DatabaseOptions {
  poolSize: number
  /** How long a statement waits for a row lock (InnoDB's default is 50 s). */
  lockWaitTimeoutS: number
  /** How long a statement may take, the wait for a connection included. */
  queryTimeoutMs: number
}

/**
 * Builds the mysql2 pool and the drizzle client. Opens no connection until the first query.
 * Statements are bounded twice: by the row-lock wait, server side, and by `queryTimeoutMs`, client
 * side, against a database that stops answering. Either way the request gets its 503 in time.
 */
export const createDatabase = (
  url: string,
  { poolSize, lockWaitTimeoutS, queryTimeoutMs }: DatabaseOptions,
): Database => {
  const pool = mysql.createPool(poolOptions(url, poolSize))
  // Queued on the new connection ahead of the query that asked for it. Should it fail, the
  // server's default stays: a longer bound, not a broken connection.
  pool.pool.on('connection', (connection) => {
    connection.query(`SET SESSION innodb_lock_wait_timeout = ${Math.trunc(lockWaitTimeoutS)}`, () => {})
  })
  const bounded = boundStatements(pool, queryTimeoutMs)
  return {
    db: drizzle(bounded, { schema, mode: 'default' }),
    pool,
    ping: () => bounded.query('SELECT 1'),
    close: () => pool.end(),
  }
}

const CONNECTION_ERRORS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'EPIPE',
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'POOL_CLOSED',
  'ER_CON_COUNT_ERROR',
  'ER_SERVER_SHUTDOWN',
])

// Server errors that say the database cannot take the statement now, not that it is wrong:
// a lock held too long, a deadlock, a server or session in read-only mode, a user whose write
// privileges were taken away (as when an operator fences a primary), a statement time limit.
const UNAVAILABLE_ERRNOS = new Set([
  1142, // ER_TABLEACCESS_DENIED_ERROR
  1205, // ER_LOCK_WAIT_TIMEOUT
  1213, // ER_LOCK_DEADLOCK
  1290, // ER_OPTION_PREVENTS_STATEMENT (--read-only, --super-read-only)
  1792, // ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION
  1836, // ER_READ_ONLY_MODE
  1969, // MariaDB ER_STATEMENT_TIMEOUT
  3024, // MySQL ER_QUERY_TIMEOUT
])

/** True when a driver error means the database cannot serve the statement now rather than a bad query. */
export const isDatabaseUnavailable = (error: unknown): boolean => {
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    const { code, errno } = e as { code?: unknown; errno?: unknown }
    if (typeof code === 'string' && CONNECTION_ERRORS.has(code)) return true
    if (typeof errno === 'number' && UNAVAILABLE_ERRNOS.has(errno)) return true
    if (e.message.includes('Queue limit reached')) return true
  }
  return false
}

/**
 * A statement built once per database client (on first use) instead of once per request: drizzle's
 * prepared query keeps the SQL text and the row mapping, and takes placeholders' values per call.
 *
 * @example const byToken = prepared((db) => db.select().from(t).where(eq(t.token, sql.placeholder('token'))).prepare())
 */
export const prepared = <T>(build: (db: Db) => T) => {
  const statements = new WeakMap<Db, T>()
  return (db: Db): T => {
    let statement = statements.get(db)
    if (statement === undefined) {
      statement = build(db)
      statements.set(db, statement)
    }
    return statement
  }
}

/** What `rows` needs of a drizzle query: its SQL and parameters (placeholders included). */
interface BuiltQuery {
  toSQL(): { sql: string; params: unknown[] }
}

/**
 * A hot read that drizzle builds once per client (so the SQL is still the schema's) and mysql2 runs
 * as it is, on the same bounded pool, each row an array of the selected columns in their order and
 * each DATETIME as MySQL's text (see isoFromDatetime): no drizzle row mapping and no Date per value.
 * On a page of 50 messages those cost more CPU than mysql2 itself. `Row` is the selected columns'
 * tuple, DATETIME columns as strings.
 *
 * @example const page = rows<[number, string]>((db) => db.select({ n: t.number, at: t.createdAt }).from(t).where(eq(t.id, sql.placeholder('id'))))
 * const [[n, at]] = await page(db, { id: 1 })
 */
export const rows = <Row extends unknown[]>(build: (db: Db) => BuiltQuery) => {
  const statements = new WeakMap<Db, { sql: string; params: unknown[] }>()
  return async (db: Db, values: Record<string, unknown>): Promise<Row[]> => {
    let statement = statements.get(db)
    if (statement === undefined) {
      statement = build(db).toSQL()
      statements.set(db, statement)
    }
    return arrayRows<Row>(db, statement.sql, fillPlaceholders(statement.params, values), {
      dateStrings: true,
    })
  }
}

/**
 * A select of rows by their (parent id, number) keys, for the consumers' batches: drizzle builds
 * the select once per client, without a condition, and each call adds the keys grouped by parent,
 * `(parent = ? and number in (?)) or …`, whose lists mysql2 expands. Drizzle building the whole
 * condition walks every parameter: per batch of 250, 2 ms of CPU for chats written
 * `(application = ? and number = ?) or …`, 0.3 ms for messages grouped by chat. Each row an array of
 * the selected columns in their order (arrayRows).
 *
 * @example const stored = byParentAndNumber<[number, number]>((db) => db.select({ p: t.parentId, n: t.number }).from(t), t.parentId, t.number)
 * const found = await stored(db, [[7, 1], [7, 2]])
 */
export const byParentAndNumber = <Row extends unknown[]>(
  build: (db: Db) => BuiltQuery,
  parent: Column,
  number: Column,
) => {
  const selects = prepared((db) => build(db).toSQL().sql)
  const condition = `(\`${parent.name}\` = ? and \`${number.name}\` in (?))`
  return async (db: Db, keys: Iterable<readonly [parent: number, number: number]>): Promise<Row[]> => {
    const numbersOf = new Map<number, number[]>()
    for (const [parentId, key] of keys) {
      const numbers = numbersOf.get(parentId)
      if (numbers) numbers.push(key)
      else numbersOf.set(parentId, [key])
    }
    if (numbersOf.size === 0) return []
    const params: unknown[] = []
    for (const [parentId, numbers] of numbersOf) params.push(parentId, numbers)
    const where = Array.from(numbersOf.keys(), () => condition).join(' or ')
    return arrayRows<Row>(db, `${selects(db)} where ${where}`, params)
  }
}

/**
 * Runs a drizzle-built query on mysql2 as it is (see `rows`), for a query whose shape changes per
 * call: each row an array of the selected columns in their order, DATETIME columns as Dates (or as
 * MySQL's text with `dateStrings`).
 */
export const arrayRows = async <Row extends unknown[]>(
  db: Db,
  sql: string,
  params: unknown[],
  { dateStrings = false } = {},
): Promise<Row[]> => {
  const [result] = await poolOf(db).query({ sql, rowsAsArray: true, dateStrings }, params)
  return result as Row[]
}

/** The mysql2 pool under a drizzle database: drizzle() keeps the client it was given (createDatabase's bounded pool). */
export const poolOf = (db: Db) => (db as Db & { $client: Pool }).$client

/**
 * Runs a query function and turns the database's failures into UnavailableError (503).
 *
 * @example const row = await withDatabase(() => db.select().from(applications).where(...))
 */
export const withDatabase = async <T>(query: () => Promise<T>): Promise<T> => {
  try {
    return await query()
  } catch (error) {
    if (isDatabaseUnavailable(error)) throw new UnavailableError('the database is', { cause: error })
    throw error
  }
}

/** MySQL's deadlock and lock-wait errors: the statement can simply be run again. */
export const isRetryableLockError = (error: unknown): boolean => {
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    const errno = (e as { errno?: unknown }).errno
    if (errno === 1213 || errno === 1205) return true
  }
  return false
}

/** Runs `work` again (up to `attempts` times) when MySQL reports a deadlock or a lock wait timeout. */
export const retryOnDeadlock = async <T>(work: () => Promise<T>, attempts = 5): Promise<T> => {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work()
    } catch (error) {
      if (attempt >= attempts || !isRetryableLockError(error)) throw error
      await new Promise((resolve) => setTimeout(resolve, 5 * attempt + Math.random() * 20))
    }
  }
}

/**
 * Creates the database if it is missing and applies the committed drizzle-kit migrations.
 * Safe when several servers start at once: they queue on a named lock, and the ones that come
 * later find the migrations applied.
 */
export const migrateDatabase = async (url: string): Promise<void> => {
  const target = new URL(url)
  const name = decodeURIComponent(target.pathname.replace(/^\//, ''))
  if (!/^[A-Za-z0-9_]+$/.test(name))
    throw new Error(`DATABASE_URL must name a database (letters, digits, _): ${name}`)
  const server = new URL(url)
  server.pathname = '/'
  const admin = await mysql.createConnection({ ...poolOptions(server.toString(), 1), uri: server.toString() })
  try {
    await admin.query(
      `CREATE DATABASE IF NOT EXISTS \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci`,
    )
  } catch (error) {
    // A user without CREATE rights on the server can still own an existing database.
    if ((error as { errno?: number }).errno !== 1044) throw error
  } finally {
    await admin.end()
  }

  const connection = await mysql.createConnection({ ...poolOptions(url, 1), uri: url })
  try {
    const [rows] = await connection.query('SELECT GET_LOCK(?, 120) AS locked', [MIGRATION_LOCK])
    if ((rows as Array<{ locked: number | null }>)[0]?.locked !== 1) {
      throw new Error('timed out waiting for another server to finish migrating')
    }
    await migrate(drizzle(connection, { schema, mode: 'default' }), { migrationsFolder: MIGRATIONS_FOLDER })
  } finally {
    await connection.query('SELECT RELEASE_LOCK(?)', [MIGRATION_LOCK]).catch(() => undefined)
    await connection.end()
  }
}
