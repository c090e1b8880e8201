import { and, eq, max } from 'drizzle-orm'
import { applications, chats, messages } from '../../db/schema.ts'
import { type Db, withDatabase } from '../db.ts'
import { UnavailableError } from '../errors.ts'
import { applicationKey, countersKey } from '../keys.ts'
import { type Redis, withRedis } from '../redis.ts'

// Seeding what Redis lacks (it never saw the application, or lost its data) from MySQL. Seeds are
// written with HSETNX/SET NX, so concurrent seeders agree.

const NEGATIVE_TTL_S = 60

export interface SeedDeps {
  redis: Redis
  db: Db
  /** An upper bound on the jobs accepted but not yet persisted (queued); added to a re-seed. */
  inFlightJobs: () => Promise<number>
}

export const seedApplication = async (deps: SeedDeps, token: string) => {
  const [row] = await withDatabase(() =>
    deps.db.select({ id: applications.id }).from(applications).where(eq(applications.token, token)).limit(1),
  )
  await withRedis(() =>
    row
      ? deps.redis.set(applicationKey(token), String(row.id))
      : deps.redis.set(applicationKey(token), '0', 'EX', NEGATIVE_TTL_S, 'NX'),
  )
}

const inFlight = (deps: SeedDeps) =>
  deps.inFlightJobs().catch((error) => {
    throw new UnavailableError('the queue is', { cause: error })
  })

// A re-seed starts above the highest persisted number plus every job still queued: jobs in flight
// may hold numbers MySQL does not show yet. The queue is counted before MySQL is read, so a job
// that leaves the queue in between is already in MySQL. Gaps are acceptable; duplicates never.
export const seedChats = async (deps: SeedDeps, token: string, applicationId: number) => {
  const queued = await inFlight(deps)
  const [row] = await withDatabase(() =>
    deps.db
      .select({ last: max(chats.number) })
      .from(chats)
      .where(eq(chats.applicationId, applicationId)),
  )
  await withRedis(() => deps.redis.hsetnx(countersKey(token), 'n', String((row?.last ?? 0) + queued)))
}

export const seedMessages = async (deps: SeedDeps, token: string, applicationId: number, chat: number) => {
  const queued = await inFlight(deps)
  const [row] = await withDatabase(() =>
    deps.db
      .select({ last: max(messages.number) })
      .from(messages)
      .innerJoin(chats, eq(chats.id, messages.chatId))
      .where(and(eq(chats.applicationId, applicationId), eq(chats.number, chat))),
  )
  await withRedis(() => deps.redis.hsetnx(countersKey(token), `m:${chat}`, String((row?.last ?? 0) + queued)))
}
