import { inArray } from 'drizzle-orm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { applications, chats } from '../../db/schema.ts'
import { insertApplicationRows, insertMessages } from '../../tests/factories.ts'
import { createTestDeps } from '../../tests/harness.ts'
import type { Db } from '../db.ts'
import type { Deps } from '../deps.ts'
import { DIRTY_APPLICATIONS_KEY, DIRTY_CHATS_KEY } from '../keys.ts'
import { LAST_FULL_SWEEP_KEY, type ReconcileSummary, reconcileCounts } from './reconcile.ts'
import { acquireReconcileLock, RECONCILE_LOCK_KEY, ReconcileLockLostError } from './reconcile-lock.ts'

const AT = new Date('2026-11-24T10:00:00.000Z')
const HOUR = 3_600_000

/** One application with `chatCount` chats; chat i (from 0) holds i messages. Counts left at 0. */
const seed = (db: Db, chatCount: number) =>
  insertApplicationRows(
    db,
    Array.from({ length: chatCount }, (_, i) => i),
  )
const addMessages = insertMessages

const messagesCounts = async (db: Db, ids: number[]) =>
  (await db.select().from(chats).where(inArray(chats.id, ids)).orderBy(chats.id)).map(
    (row) => row.messagesCount,
  )

describe('reconcileCounts', () => {
  let deps: Deps

  beforeAll(async () => {
    deps = await createTestDeps()
  })
  afterAll(() => deps.close())

  it('counts the rows a consumer commits during a run on the next run', async () => {
    const { chatIds } = await seed(deps.db, 3)
    await deps.redis.sadd(DIRTY_CHATS_KEY, ...chatIds.map(String))
    let isRaced = false
    // Between this run's count and its UPDATE, a consumer persists a message and marks its chat.
    const onCounted = async () => {
      if (isRaced) return
      isRaced = true
      await addMessages(deps.db, chatIds[2]!, 3, 1)
      await deps.redis.sadd(DIRTY_CHATS_KEY, String(chatIds[2]))
    }

    const during = await reconcileCounts(deps, {
      now: AT,
      mode: 'incremental',
      fullIntervalMs: HOUR,
      onCounted,
    })
    const countsAfterRace = await messagesCounts(deps.db, chatIds)
    const next = await reconcileCounts(deps, { now: AT, mode: 'incremental', fullIntervalMs: HOUR })

    expect(during.chats).toEqual({ checked: 3, updated: 2 })
    expect(countsAfterRace).toEqual([0, 1, 2])
    expect(next.chats).toEqual({ checked: 1, updated: 1 })
    expect(await messagesCounts(deps.db, chatIds)).toEqual([0, 1, 3])
  })

  it('walks every row in batches smaller than the table during a full sweep', async () => {
    const { applicationId, chatIds } = await seed(deps.db, 7)
    const other = await seed(deps.db, 2)
    let batches = 0

    const summary = await reconcileCounts(deps, {
      now: AT,
      mode: 'full',
      fullIntervalMs: HOUR,
      batchSize: 2,
      onCounted: async () => {
        batches++
      },
    })

    // Other test files share the worker's database: the sweep covers their rows too.
    expect(summary.chats.checked).toBeGreaterThanOrEqual(9)
    expect(batches).toBeGreaterThanOrEqual(Math.ceil(summary.chats.checked / 2) + 1)
    expect(await messagesCounts(deps.db, [...chatIds, ...other.chatIds])).toEqual([0, 1, 2, 3, 4, 5, 6, 0, 1])
    const apps = await deps.db
      .select()
      .from(applications)
      .where(inArray(applications.id, [applicationId, other.applicationId]))
      .orderBy(applications.id)
    expect(apps.map((app) => app.chatsCount)).toEqual([7, 2])
  })

  it('recounts dirty sets larger than one batch', async () => {
    const { applicationId, chatIds } = await seed(deps.db, 12)
    await deps.redis.sadd(DIRTY_CHATS_KEY, ...chatIds.map(String))
    await deps.redis.sadd(DIRTY_APPLICATIONS_KEY, String(applicationId))

    const summary = await reconcileCounts(deps, {
      now: AT,
      mode: 'incremental',
      fullIntervalMs: HOUR,
      batchSize: 5,
    })

    expect(summary.chats).toEqual({ checked: 12, updated: 11 })
    expect(await messagesCounts(deps.db, chatIds)).toEqual(Array.from({ length: 12 }, (_, i) => i))
  })

  it('writes nothing over a newer run’s counts when it stalls past the lock’s expiry', async () => {
    const { chatIds } = await seed(deps.db, 2)
    await deps.redis.sadd(DIRTY_CHATS_KEY, ...chatIds.map(String))
    let isStalled = false
    // Right before its UPDATE this run stalls; the lock expires, and a newer run counts a message
    // committed meanwhile and writes it.
    const beforeWrite = async () => {
      if (isStalled) return
      isStalled = true
      await deps.redis.del(RECONCILE_LOCK_KEY)
      await addMessages(deps.db, chatIds[1]!, 2, 1)
      await deps.redis.sadd(DIRTY_CHATS_KEY, String(chatIds[1]))
      await reconcileCounts(deps, { now: AT, mode: 'incremental', fullIntervalMs: HOUR })
    }

    const stale = reconcileCounts(deps, { now: AT, mode: 'incremental', fullIntervalMs: HOUR, beforeWrite })

    await expect(stale).rejects.toThrow(ReconcileLockLostError)
    expect(await messagesCounts(deps.db, chatIds)).toEqual([0, 2])
  })

  it('finishes a full sweep over several runs when each has almost no time, up to the last row', async () => {
    const { chatIds } = await seed(deps.db, 6)
    const runs: ReconcileSummary[] = []

    for (let run = 0; run < 500; run++) {
      const summary = await reconcileCounts(deps, {
        now: AT,
        mode: 'full',
        fullIntervalMs: HOUR,
        batchSize: 25,
        timeBudgetMs: 0,
      })
      runs.push(summary)
      if (!summary.isSweepPartial) break
    }

    expect(runs.length).toBeGreaterThan(1)
    expect(runs.slice(0, -1).every((summary) => summary.isSweepPartial)).toBe(true)
    expect(runs.at(-1)!.isSweepPartial).toBeUndefined()
    expect(await messagesCounts(deps.db, chatIds)).toEqual([0, 1, 2, 3, 4, 5])
    expect(Number(await deps.redis.get(LAST_FULL_SWEEP_KEY))).toBe(AT.getTime())
  })

  it('skips without touching the dirty ids while another run holds the lock', async () => {
    const { chatIds } = await seed(deps.db, 2)
    await deps.redis.sadd(DIRTY_CHATS_KEY, ...chatIds.map(String))
    const held = await acquireReconcileLock(deps)

    const summary = await reconcileCounts(deps, { now: AT, fullIntervalMs: HOUR })

    await held!.release()
    expect(summary).toMatchObject({ skipped: true, chats: { checked: 0, updated: 0 } })
    expect(await deps.redis.scard(DIRTY_CHATS_KEY)).toBe(2)
  })
})

describe('acquireReconcileLock', () => {
  let deps: Deps

  beforeAll(async () => {
    deps = await createTestDeps()
  })
  afterAll(() => deps.close())

  it('grants the lock to one holder at a time', async () => {
    const first = await acquireReconcileLock(deps)

    const second = await acquireReconcileLock(deps)

    expect(first).toBeDefined()
    expect(second).toBeUndefined()
    await first!.release()
    const third = await acquireReconcileLock(deps)
    expect(third).toBeDefined()
    await third!.release()
  })

  it('frees the lock when its holder dies without releasing it', async () => {
    await deps.redis.set(RECONCILE_LOCK_KEY, 'a dead holder', 'PX', 50)

    await new Promise((resolve) => setTimeout(resolve, 80))
    const lock = await acquireReconcileLock(deps)

    expect(lock).toBeDefined()
    await lock!.release()
  })

  it('keeps the lock past its ttl while the holder lives', async () => {
    const lock = await acquireReconcileLock(deps, 300)

    await new Promise((resolve) => setTimeout(resolve, 800))

    expect(await lock!.isHeld()).toBe(true)
    await lock!.release()
  })

  it('never releases a lock that another holder has taken since', async () => {
    const stale = await acquireReconcileLock(deps, 50)
    await new Promise((resolve) => setTimeout(resolve, 10))
    await deps.redis.set(RECONCILE_LOCK_KEY, 'the next holder', 'PX', 10_000)

    await stale!.release()

    expect(await deps.redis.get(RECONCILE_LOCK_KEY)).toBe('the next holder')
    expect(await stale!.isHeld()).toBe(false)
    await deps.redis.del(RECONCILE_LOCK_KEY)
  })
})
