import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Deps } from '../../lib/deps.ts'
import { chatJob as chat, newJobOwner, sqsEvent, storedChatsOf, T0 } from '../../tests/factories.ts'
import { createTestDeps } from '../../tests/harness.ts'
import { createPersistChatsConsumer } from './consumer.ts'

describe('persist-chats consumer', () => {
  let deps: Deps
  let persistChats: ReturnType<typeof createPersistChatsConsumer>

  beforeAll(async () => {
    deps = await createTestDeps()
    persistChats = createPersistChatsConsumer(deps)
  })
  afterAll(() => deps.close())

  const newApplication = () => newJobOwner(deps)
  const storedChats = (app: number) => storedChatsOf(deps.db, app)

  it('persists a batch of creates and updates and reports no failure', async () => {
    const base = await newApplication()

    const result = await persistChats(
      sqsEvent(
        chat(base, { chat: 1, title: 'one', version: T0 + 1_000 }),
        chat(base, { chat: 2, title: 'two', version: T0 + 2_000 }),
        chat(base, { op: 'update', chat: 1, title: 'one, renamed', version: T0 + 3_000 }),
      ),
    )

    expect(result).toEqual({ batchItemFailures: [] })
    expect(await storedChats(base.app)).toEqual([
      {
        number: 1,
        title: 'one, renamed',
        createdAt: new Date('2026-11-24T10:00:00.001Z'),
        updatedAt: new Date('2026-11-24T10:00:00.003Z'),
      },
      {
        number: 2,
        title: 'two',
        createdAt: new Date('2026-11-24T10:00:00.002Z'),
        updatedAt: new Date('2026-11-24T10:00:00.002Z'),
      },
    ])
  })

  it('reports the records it cannot persist, and persists the rest', async () => {
    const base = await newApplication()

    const result = await persistChats(
      sqsEvent(
        { body: 'not json', messageId: 'bad-json' },
        { body: JSON.stringify({ op: 'create', title: 'no numbers' }), messageId: 'bad-shape' },
        { body: JSON.stringify(chat(base, { title: 'fine' })), messageId: 'good' },
      ),
    )

    expect(result.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual(['bad-json', 'bad-shape'])
    expect((await storedChats(base.app)).map((c) => c.title)).toEqual(['fine'])
    await expect(persistChats(sqsEvent('{', '[]'))).rejects.toThrow('all 2 records of the batch failed')
  })

  it('ends in the same state when a batch is delivered again, in any order', async () => {
    const base = await newApplication()
    const create = chat(base, { title: 'first', version: T0 + 1_000 })
    const update = chat(base, { op: 'update', title: 'second', version: T0 + 2_000 })

    await persistChats(sqsEvent(create, update))
    const once = await storedChats(base.app)
    const again = await persistChats(sqsEvent(update, create))
    const updateAlone = await persistChats(sqsEvent(update))

    expect(again).toEqual({ batchItemFailures: [] })
    expect(updateAlone).toEqual({ batchItemFailures: [] })
    expect(await storedChats(base.app)).toEqual(once)
    expect(once).toEqual([
      {
        number: 1,
        title: 'second',
        createdAt: new Date('2026-11-24T10:00:00.001Z'),
        updatedAt: new Date('2026-11-24T10:00:00.002Z'),
      },
    ])
  })

  it('fails a losing create again when it is delivered again beside a new chat', async () => {
    const base = await newApplication()
    await persistChats(sqsEvent(chat(base, { chat: 1, title: 'owner', version: T0 + 1_000 })))
    const loser = {
      body: JSON.stringify([chat(base, { chat: 1, title: 'loser', version: T0 + 9_000 })]),
      messageId: 'loser',
    }
    const first = await persistChats(sqsEvent(loser, chat(base, { chat: 2, version: T0 + 9_001 })))

    // The row already records the loser: the upsert leaves it as it is, yet it met an existing row,
    // so the batch is read back rather than taken as all new.
    const again = await persistChats(sqsEvent(loser, chat(base, { chat: 3, version: T0 + 9_002 })))

    expect([first.batchItemFailures, again.batchItemFailures]).toEqual([
      [{ itemIdentifier: 'loser' }],
      [{ itemIdentifier: 'loser' }],
    ])
    expect((await storedChats(base.app)).map((c) => [c.number, c.title])).toEqual([
      [1, 'owner'],
      [2, null],
      [3, null],
    ])
  })
})
