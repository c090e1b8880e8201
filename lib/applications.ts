import { eq, sql } from 'drizzle-orm'
import { type ApplicationRow, applications } from '../db/schema.ts'
import type { ApplicationInput, ApplicationOutput } from './api/schemas.ts'
import { type Db, rows, withDatabase } from './db.ts'
import { NotFoundError } from './errors.ts'
import { applicationKey, countersKey } from './keys.ts'
import type { Logger } from './logger.ts'
import type { Redis } from './redis.ts'
import { type Clock, isoFromDatetime } from './time.ts'

export interface ApplicationDeps {
  db: Db
  redis: Redis
  clock: Clock
  newToken: () => string
  logger: Pick<Logger, 'warn'>
}

/** The client's view of an application row: no internal id. */
export const toApplicationOutput = (row: ApplicationRow): ApplicationOutput => ({
  token: row.token,
  name: row.name,
  chats_count: row.chatsCount,
  created_at: row.createdAt.toISOString(),
  updated_at: row.updatedAt.toISOString(),
})

const isDuplicateKey = (error: unknown) => (error as { errno?: number })?.errno === 1062

/**
 * Inserts an application with a fresh token and registers the token and a zero chat counter in
 * Redis, so that chat and message creation can check it without MySQL. A failed registration only costs one MySQL lookup
 * later (see resolveApplication), so it does not fail the request.
 */
export const createApplication = async (
  deps: Pick<ApplicationDeps, 'db' | 'redis' | 'clock' | 'newToken' | 'logger'>,
  input: ApplicationInput,
): Promise<ApplicationOutput> => {
  const now = deps.clock()
  for (let attempt = 0; ; attempt++) {
    const row = { token: deps.newToken(), name: input.name, chatsCount: 0, createdAt: now, updatedAt: now }
    try {
      const [result] = await withDatabase(() => deps.db.insert(applications).values(row))
      await deps.redis
        .multi()
        .set(applicationKey(row.token), String(result.insertId))
        .hsetnx(countersKey(row.token), 'n', '0')
        .exec()
        .catch((error) => deps.logger.warn('could not register the token in Redis', { err: error }))
      return toApplicationOutput({ id: result.insertId, ...row })
    } catch (error) {
      // 192 random bits do not collide; if the generator ever does, a new token fixes it.
      if (!isDuplicateKey(error) || attempt >= 2) throw error
    }
  }
}

const byToken = rows<[token: string, name: string, chatsCount: number, createdAt: string, updatedAt: string]>(
  (db) =>
    db
      .select({
        token: applications.token,
        name: applications.name,
        chatsCount: applications.chatsCount,
        createdAt: applications.createdAt,
        updatedAt: applications.updatedAt,
      })
      .from(applications)
      .where(eq(applications.token, sql.placeholder('token')))
      .limit(1),
)

/** Reads one application by token. */
export const getApplication = async (deps: Pick<ApplicationDeps, 'db'>, token: string) => {
  const [row] = await withDatabase(() => byToken(deps.db, { token }))
  if (!row) throw new NotFoundError('application not found')
  return {
    token: row[0],
    name: row[1],
    chats_count: row[2],
    created_at: isoFromDatetime(row[3]),
    updated_at: isoFromDatetime(row[4]),
  } satisfies ApplicationOutput
}

/** Renames an application. */
export const updateApplication = async (
  deps: Pick<ApplicationDeps, 'db' | 'clock'>,
  token: string,
  input: ApplicationInput,
): Promise<ApplicationOutput> => {
  const [result] = await withDatabase(() =>
    deps.db
      .update(applications)
      .set({ name: input.name, updatedAt: deps.clock() })
      .where(eq(applications.token, token)),
  )
  if (result.affectedRows === 0) throw new NotFoundError('application not found')
  return getApplication(deps, token)
}
