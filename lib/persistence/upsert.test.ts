import { asc, eq } from 'drizzle-orm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { chats } from '../../db/schema.ts'
import { newJobOwner } from '../../tests/factories.ts'
import { createTestDeps } from '../../tests/harness.ts'
import type { Deps } from '../deps.ts'
import { upsertChats } from './chats.ts'

type ChatInsert = typeof chats.$inferInsert

describe('bulkUpsert (the chats upsert)', () => {
  let deps: Deps
  beforeAll(async () => {
    deps = await createTestDeps()
  })
  afterAll(() => deps.close())

  const at = new Date('2026-12-01T10:00:00.123Z')
  const row = (applicationId: number, number: number, fields: Partial<ChatInsert> = {}): ChatInsert => ({
    applicationId,
    number,
    title: `chat ${number}`,
    titleVersion: 10,
    createdAt: at,
    updatedAt: at,
    createVersion: 10,
    ...fields,
  })
  const stored = (applicationId: number) =>
    deps.db
      .select({
        number: chats.number,
        title: chats.title,
        titleVersion: chats.titleVersion,
        createdAt: chats.createdAt,
      })
      .from(chats)
      .where(eq(chats.applicationId, applicationId))
      .orderBy(asc(chats.number))

  it('writes every row of a batch, and keeps the newer version of a row already there', async () => {
    const { app } = await newJobOwner(deps)
    await upsertChats(deps.db, [row(app, 1), row(app, 2, { title: null })])
    await upsertChats(deps.db, [
      row(app, 1, { title: 'older', titleVersion: 5 }),
      row(app, 2, { title: 'newer', titleVersion: 20 }),
      row(app, 3),
    ])

    expect(await stored(app)).toEqual([
      { number: 1, title: 'chat 1', titleVersion: 10, createdAt: at },
      { number: 2, title: 'newer', titleVersion: 20, createdAt: at },
      { number: 3, title: 'chat 3', titleVersion: 10, createdAt: at },
    ])
  })

  it('says that the rows were inserted as given only when MySQL reports every one of them new', async () => {
    const { app } = await newJobOwner(deps)

    const fresh = await upsertChats(deps.db, [row(app, 1), row(app, 2)])
    const sameAgain = await upsertChats(deps.db, [row(app, 1), row(app, 3)])
    const single = await upsertChats(deps.db, [row(app, 4)])

    // Row 1 is left as it is the second time, yet it met an existing key; a single row gets no report.
    expect([fresh, sameAgain, single].map((result) => result.isInsertedAsGiven)).toEqual([true, false, false])
  })

  it('refuses a batch whose later rows set a column the first row leaves out, rather than drop it', async () => {
    const { app } = await newJobOwner(deps)
    const { title: _, ...untitled } = row(app, 1)

    await expect(upsertChats(deps.db, [untitled, row(app, 2)])).rejects.toThrow(/a row sets a column/)
    expect(await stored(app)).toEqual([])
  })
})
