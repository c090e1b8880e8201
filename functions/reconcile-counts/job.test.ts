import { eq, inArray } from 'drizzle-orm'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { applications, chats } from '../../db/schema.ts'
import { LAST_FULL_SWEEP_KEY } from '../../lib/counts/reconcile.ts'
import type { Db } from '../../lib/db.ts'
import type { Deps } from '../../lib/deps.ts'
import { DIRTY_APPLICATIONS_KEY, DIRTY_CHATS_KEY } from '../../lib/keys.ts'
import { insertApplicationRows, insertMessages } from '../../tests/factories.ts'
import { createTestDeps } from '../../tests/harness.ts'
import { createReconcileCountsJob } from './job.ts'

const CREATED = new Date('2026-11-24T10:00:00.123Z')
const HOUR = 3_600_000

const seed = insertApplicationRows
const addMessages = insertMessages

/** What the consumers do after a successful batch. */
const markDirty = async (deps: Deps, applicationIds: number[], chatIds: number[]) => {
  if (applicationIds.length > 0) await deps.redis.sadd(DIRTY_APPLICATIONS_KEY, ...applicationIds.map(String))
  if (chatIds.length > 0) await deps.redis.sadd(DIRTY_CHATS_KEY, ...chatIds.map(String))
}

const chatsCount = async (db: Db, id: number) =>
  (await db.select().from(applications).where(eq(applications.id, id)))[0]?.chatsCount

const messagesCounts = async (db: Db, ids: number[]) => {
  const rows = await db.select().from(chats).where(inArray(chats.id, ids)).orderBy(chats.id)
  return rows.map((row) => row.messagesCount)
}

describe('reconcile-counts job', () => {
  let deps: Deps
  let job: ReturnType<typeof createReconcileCountsJob>
  const now = new Date('2026-11-24T12:00:00.000Z')

  beforeAll(async () => {
    deps = await createTestDeps()
    job = createReconcileCountsJob(deps)
  })
  beforeEach(async () => {
    await deps.redis.set(LAST_FULL_SWEEP_KEY, String(now.getTime()))
  })
  afterAll(() => deps.close())

  it('sets chats_count and messages_count of the dirty rows to their row counts', async () => {
    const { applicationId, chatIds } = await seed(deps.db, [3, 0, 1])
    await markDirty(deps, [applicationId], chatIds)

    const summary = await job(now)

    expect(summary).toEqual({
      mode: 'incremental',
      applications: { checked: 1, updated: 1 },
      chats: { checked: 3, updated: 2 },
      ms: expect.any(Number),
    })
    expect(await chatsCount(deps.db, applicationId)).toBe(3)
    expect(await messagesCounts(deps.db, chatIds)).toEqual([3, 0, 1])
    expect(await deps.redis.exists(DIRTY_CHATS_KEY, `${DIRTY_CHATS_KEY}:processing`)).toBe(0)
  })

  it('counts the rows persisted after a run on the next run', async () => {
    const { applicationId, chatIds } = await seed(deps.db, [2])
    await markDirty(deps, [applicationId], chatIds)
    await job(now)

    await addMessages(deps.db, chatIds[0]!, 3, 4)
    await markDirty(deps, [], chatIds)
    const summary = await job(now)

    expect(summary.chats).toEqual({ checked: 1, updated: 1 })
    expect(await messagesCounts(deps.db, chatIds)).toEqual([6])
  })

  it('sets the count to zero for a chat whose stored count is too high and that has no messages', async () => {
    const { chatIds } = await seed(deps.db, [0])
    await deps.db.update(chats).set({ messagesCount: 7 }).where(eq(chats.id, chatIds[0]!))
    await markDirty(deps, [], chatIds)

    await job(now)

    expect(await messagesCounts(deps.db, chatIds)).toEqual([0])
  })

  it('leaves updated_at alone: a count is not a client write', async () => {
    const { applicationId, chatIds } = await seed(deps.db, [5])
    await markDirty(deps, [applicationId], chatIds)

    await job(now)

    const [chat] = await deps.db.select().from(chats).where(eq(chats.id, chatIds[0]!))
    const [app] = await deps.db.select().from(applications).where(eq(applications.id, applicationId))
    expect(chat).toMatchObject({ messagesCount: 5, updatedAt: CREATED })
    expect(app).toMatchObject({ chatsCount: 1, updatedAt: CREATED })
  })

  it('ignores dirty ids that are malformed or name no row', async () => {
    const { chatIds } = await seed(deps.db, [1])
    await deps.redis.sadd(DIRTY_CHATS_KEY, 'not-an-id', '0', '999999999', String(chatIds[0]))

    const summary = await job(now)

    expect(summary.chats).toEqual({ checked: 1, updated: 1 })
  })

  it('does the work once when two reconcilers start at once, and neither fails', async () => {
    const { applicationId, chatIds } = await seed(deps.db, [2, 4])
    await markDirty(deps, [applicationId], chatIds)
    const other = await createTestDeps({ REDIS_KEY_PREFIX: deps.config.REDIS_KEY_PREFIX })

    const summaries = await Promise.all([job(now), createReconcileCountsJob(other)(now)])

    await other.close()
    expect(summaries.filter((summary) => summary.skipped)).toHaveLength(1)
    const [ran] = summaries.filter((summary) => !summary.skipped)
    expect(ran?.chats).toEqual({ checked: 2, updated: 2 })
    expect(await messagesCounts(deps.db, chatIds)).toEqual([2, 4])
  })

  it('keeps the drained ids for the next run when a run fails', async () => {
    const { applicationId, chatIds } = await seed(deps.db, [3])
    await markDirty(deps, [applicationId], chatIds)
    const broken = await createTestDeps({
      REDIS_KEY_PREFIX: deps.config.REDIS_KEY_PREFIX,
      DATABASE_URL: 'mysql://root@127.0.0.1:1/nowhere',
    })
    await expect(createReconcileCountsJob(broken)(now)).rejects.toThrow()
    await broken.close()

    const summary = await job(now)

    expect(summary.chats).toEqual({ checked: 1, updated: 1 })
    expect(await messagesCounts(deps.db, chatIds)).toEqual([3])
  })

  it('repairs deliberately corrupted counts with a full sweep, which the incremental run cannot see', async () => {
    const first = await seed(deps.db, [2, 0, 5])
    const second = await seed(deps.db, [1])
    const chatIds = [...first.chatIds, ...second.chatIds]
    const applicationIds = [first.applicationId, second.applicationId]
    await deps.db.update(chats).set({ messagesCount: 42 }).where(inArray(chats.id, chatIds))
    await deps.db.update(applications).set({ chatsCount: 9 }).where(inArray(applications.id, applicationIds))

    const incremental = await job(now, 'incremental')
    const corrupted = await messagesCounts(deps.db, chatIds)
    const full = await job(now, 'full')

    expect(incremental.chats).toEqual({ checked: 0, updated: 0 })
    expect(corrupted).toEqual([42, 42, 42, 42])
    // Other test files share the worker's database: the sweep covers their rows too.
    expect(full.mode).toBe('full')
    expect(full.chats.updated).toBeGreaterThanOrEqual(4)
    expect(full.applications.updated).toBeGreaterThanOrEqual(2)
    expect(await messagesCounts(deps.db, chatIds)).toEqual([2, 0, 5, 1])
    expect(await chatsCount(deps.db, first.applicationId)).toBe(3)
    expect(await chatsCount(deps.db, second.applicationId)).toBe(1)
  })

  it('sweeps everything when no full sweep is recorded, then only the dirty ids until the interval has passed', async () => {
    await deps.redis.del(LAST_FULL_SWEEP_KEY)

    const modes = [
      (await job(now)).mode,
      (await job(new Date(now.getTime() + HOUR - 1))).mode,
      (await job(new Date(now.getTime() + HOUR))).mode,
      (await job(new Date(now.getTime() + HOUR + 1))).mode,
    ]

    expect(modes).toEqual(['full', 'incremental', 'full', 'incremental'])
  })
})
