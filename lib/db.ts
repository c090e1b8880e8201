import { fileURLToPath } from 'node:url'
import { drizzle, type MySql2Database } from 'drizzle-orm/mysql2'
import { migrate } from 'drizzle-orm/mysql2/migrator'
import mysql, { type Pool, type PoolOptions } from 'mysql2/promise'
import * as schema from '../db/schema.ts'
import { UnavailableError } from './errors.ts'

export type Db = MySql2Database<typeof schema>

export interface Database {
  db: Db
  pool: Pool
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
})

/** Builds the mysql2 pool and the drizzle client. Opens no connection until the first query. */
export const createDatabase = (url: string, poolSize: number): Database => {
  const pool = mysql.createPool(poolOptions(url, poolSize))
  return { db: drizzle(pool, { schema, mode: 'default' }), pool, close: () => pool.end() }
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

/** True when a driver error means the database cannot be reached rather than a bad query. */
export const isConnectionError = (error: unknown): boolean => {
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string' && CONNECTION_ERRORS.has(code)) return true
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

/**
 * Runs a query function and turns connection failures into UnavailableError (503).
 *
 * @example const row = await withDatabase(() => db.select().from(applications).where(...))
 */
export const withDatabase = async <T>(query: () => Promise<T>): Promise<T> => {
  try {
    return await query()
  } catch (error) {
    if (isConnectionError(error)) throw new UnavailableError('the database is', { cause: error })
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
