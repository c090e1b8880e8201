import { ReceiveMessageCommand } from '@aws-sdk/client-sqs'
import { and, eq } from 'drizzle-orm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { chats, messages } from '../../db/schema.ts'
import { createChat } from '../../lib/chats.ts'
import type { Deps } from '../../lib/deps.ts'
import type { ChatJob, MessageJob } from '../../lib/jobs.ts'
import { DIRTY_APPLICATIONS_KEY, DIRTY_CHATS_KEY } from '../../lib/keys.ts'
import { createMessage, updateMessage } from '../../lib/messages.ts'
import {
  chatJob as chat,
  messageJob as message,
  newJobOwner,
  seededRandom,
  shuffle,
  sqsEvent,
  storedChatsOf,
  T0,
} from '../../tests/factories.ts'
import { countQueries, createTestDeps, drainQueues } from '../../tests/harness.ts'
import { createPersistChatsConsumer } from '../persist-chats/consumer.ts'
import { createPersistMessagesConsumer } from './consumer.ts'

describe('persist-messages consumer', () => {
  let deps: Deps
  let persistMessages: ReturnType<typeof createPersistMessagesConsumer>
  let persistChats: ReturnType<typeof createPersistChatsConsumer>

  beforeAll(async () => {
    deps = await createTestDeps()
    persistMessages = createPersistMessagesConsumer(deps)
    persistChats = createPersistChatsConsumer(deps)
  })
  afterAll(() => deps.close())

  const newApplication = () => newJobOwner(deps)
  const storedMessages = (app: number) =>
    deps.db
      .select({
        chat: chats.number,
        number: messages.number,
        body: messages.body,
        createdAt: messages.createdAt,
        updatedAt: messages.updatedAt,
      })
      .from(messages)
      .innerJoin(chats, eq(chats.id, messages.chatId))
      .where(eq(chats.applicationId, app))
      .orderBy(chats.number, messages.number)
  const storedChats = (app: number) => storedChatsOf(deps.db, app)

  it('persists a batch and reports no failure', async () => {
    const base = await newApplication()

    const result = await persistMessages(
      sqsEvent(
        message(base, { message: 1, body: 'one' }),
        message(base, { message: 2, body: 'two', version: T0 + 2_000 }),
      ),
    )

    expect(result).toEqual({ batchItemFailures: [] })
    expect(await storedMessages(base.app)).toEqual([
      {
        chat: 1,
        number: 1,
        body: 'one',
        createdAt: new Date('2026-11-24T10:00:00.001Z'),
        updatedAt: new Date('2026-11-24T10:00:00.001Z'),
      },
      {
        chat: 1,
        number: 2,
        body: 'two',
        createdAt: new Date('2026-11-24T10:00:00.002Z'),
        updatedAt: new Date('2026-11-24T10:00:00.002Z'),
      },
    ])
  })

  it('persists and indexes a batch that spans chats and applications in one pass, and the next batch of new messages in those chats in one statement', async () => {
    const first = await newApplication()
    const second = await newApplication()
    const places = [
      [first, 1, 3],
      [first, 2, 2],
      [second, 1, 2],
    ] as const
    const jobs = places.flatMap(([owner, chat, count]) =>
      Array.from({ length: count }, (_, k) =>
        message(owner, { chat, message: k + 1, body: `spans ${owner.app} ${chat} ${k + 1}` }),
      ),
    )

    const later = places.map(([owner, chat, count]) =>
      message(owner, { chat, message: count + 1, body: `later ${owner.app} ${chat}` }),
    )

    const queries = countQueries(deps)
    const result = await persistMessages(sqsEvent(...jobs))
    const firstCount = queries.count
    const laterResult = await persistMessages(sqsEvent(...later))
    queries.stop()
    await deps.search.client.indices.refresh({ index: deps.search.alias })
    const indexed = await deps.search.client.search<{ body: string }>({
      index: deps.search.alias,
      query: { terms: { application_id: [first.app, second.app] } },
      size: 100,
    })

    expect([result, laterResult]).toEqual([{ batchItemFailures: [] }, { batchItemFailures: [] }])
    expect(indexed.hits.hits.map((hit) => hit._source!.body).sort()).toEqual(
      [...jobs, ...later].map((job) => job.body).sort(),
    )
    // The chats looked up, the three missing ones created bare and looked up again, the messages
    // upserted: one statement each for the whole batch, not a pass per record, and no read-back,
    // since MySQL reports every row as new. The later batch's chats are known: its upsert alone.
    expect([firstCount, queries.count - firstCount]).toEqual([4, 1])
  })

  it('reads the rows back when a batch meets rows already stored, and indexes what MySQL holds', async () => {
    const base = await newApplication()
    const create = message(base, { body: 'created', version: T0 + 1_000 })
    const update = message(base, { op: 'update', body: 'updated', version: T0 + 3_000 })
    await persistMessages(sqsEvent(create, message(base, { message: 2, body: 'two', version: T0 + 2_000 })))
    await persistMessages(sqsEvent(update))

    const queries = countQueries(deps)
    const result = await persistMessages(
      sqsEvent(create, message(base, { message: 3, body: 'three', version: T0 + 4_000 })),
    )
    queries.stop()
    await deps.search.client.indices.refresh({ index: deps.search.alias })
    const indexed = await deps.search.client.search<{ number: number; body: string }>({
      index: deps.search.alias,
      query: { term: { application_id: base.app } },
      sort: [{ number: 'asc' }],
    })

    expect(result).toEqual({ batchItemFailures: [] })
    // The upsert met message 1: the rows are read back, and the index keeps the update's body.
    expect(queries.count).toBe(2)
    expect(indexed.hits.hits.map((hit) => [hit._source!.number, hit._source!.body])).toEqual([
      [1, 'updated'],
      [2, 'two'],
      [3, 'three'],
    ])
  })

  it('creates the chat bare when a message arrives first, and completes it when the chat arrives', async () => {
    const base = await newApplication()

    await persistMessages(sqsEvent(message(base, { chat: 3 })))
    const bare = await storedChats(base.app)
    await persistChats(sqsEvent(chat(base, { chat: 3, title: 'late', version: T0 })))

    expect(bare).toEqual([expect.objectContaining({ number: 3, title: null })])
    expect(await storedChats(base.app)).toEqual([
      {
        number: 3,
        title: 'late',
        createdAt: new Date('2026-11-24T10:00:00.000Z'),
        updatedAt: new Date('2026-11-24T10:00:00.000Z'),
      },
    ])
  })

  it('keeps the newest body when an older update arrives after a newer one, and the creation time of the create', async () => {
    const base = await newApplication()
    const create = message(base, { body: 'v1', version: T0 + 1_000 })
    const newer = message(base, { op: 'update', body: 'v3', version: T0 + 3_000 })
    const older = message(base, { op: 'update', body: 'v2', version: T0 + 2_000 })

    await persistMessages(sqsEvent(newer))
    await persistMessages(sqsEvent(older, create))
    await persistMessages(sqsEvent(newer, create))

    expect(await storedMessages(base.app)).toEqual([
      {
        chat: 1,
        number: 1,
        body: 'v3',
        createdAt: new Date('2026-11-24T10:00:00.001Z'),
        updatedAt: new Date('2026-11-24T10:00:00.003Z'),
      },
    ])
  })

  it('fails only the malformed records of a batch, so they retry and reach the dead-letter queue', async () => {
    const base = await newApplication()
    const event = sqsEvent(
      { body: 'not json', messageId: 'bad-json' },
      { body: JSON.stringify({ op: 'create', body: 'no numbers' }), messageId: 'bad-shape' },
      { body: JSON.stringify(message(base, { body: 'fine' })), messageId: 'good' },
    )

    const result = await persistMessages(event)

    expect(result.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual(['bad-json', 'bad-shape'])
    expect((await storedMessages(base.app)).map((m) => m.body)).toEqual(['fine'])
  })

  it('throws when every record of the batch fails, so the whole invocation counts as failed', async () => {
    await expect(persistMessages(sqsEvent('{', '[]'))).rejects.toThrow('all 2 records of the batch failed')
  })

  it('settles a record the database refuses on its own, without failing the others', async () => {
    const base = await newApplication()
    // A chat number beyond INT UNSIGNED passes the job schema but not MySQL's column.
    const refused = {
      body: JSON.stringify(message(base, { chat: 2 ** 33, body: 'too far' })),
      messageId: 'refused',
    }
    const fine = { body: JSON.stringify(message(base, { body: 'kept' })), messageId: 'fine' }

    const result = await persistMessages(sqsEvent(refused, fine))

    expect(result.batchItemFailures).toEqual([{ itemIdentifier: 'refused' }])
    expect((await storedMessages(base.app)).map((m) => m.body)).toEqual(['kept'])
  })

  it('ends in the in-order, exactly-once state under random duplication and reordering', async () => {
    for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
      const random = seededRandom(seed)
      const base = await newApplication()
      // The API's acceptance order: versions only grow.
      let version = T0
      const accepted: Array<{ kind: 'chat'; job: ChatJob } | { kind: 'message'; job: MessageJob }> = []
      const lastMessage = new Map<number, number>()
      let lastChat = 0
      for (let step = 0; step < 120; step++) {
        version += 1 + Math.floor(random() * 5_000)
        const roll = random()
        if (lastChat === 0 || roll < 0.1) {
          lastChat++
          accepted.push({ kind: 'chat', job: chat(base, { chat: lastChat, title: `t${step}`, version }) })
        } else if (roll < 0.2) {
          const n = 1 + Math.floor(random() * lastChat)
          accepted.push({
            kind: 'chat',
            job: chat(base, { op: 'update', chat: n, title: random() < 0.2 ? null : `u${step}`, version }),
          })
        } else {
          const n = 1 + Math.floor(random() * lastChat)
          const last = lastMessage.get(n) ?? 0
          if (last > 0 && roll < 0.45) {
            const m = 1 + Math.floor(random() * last)
            accepted.push({
              kind: 'message',
              job: message(base, { op: 'update', chat: n, message: m, body: `e${step}`, version }),
            })
          } else {
            lastMessage.set(n, last + 1)
            accepted.push({
              kind: 'message',
              job: message(base, { chat: n, message: last + 1, body: `b${step}`, version }),
            })
          }
        }
      }

      // In order, exactly once.
      const expectedChats = new Map<
        number,
        { number: number; title: string | null; createdAt: Date; updatedAt: Date }
      >()
      const expectedMessages = new Map<
        string,
        { chat: number; number: number; body: string; createdAt: Date; updatedAt: Date }
      >()
      for (const { kind, job } of accepted) {
        const at = new Date(Math.floor(job.version / 1000))
        if (kind === 'chat') {
          const current = expectedChats.get(job.chat)
          expectedChats.set(job.chat, {
            number: job.chat,
            title: job.title,
            createdAt: current?.createdAt ?? at,
            updatedAt: at,
          })
        } else {
          const key = `${job.chat}:${job.message}`
          const current = expectedMessages.get(key)
          expectedMessages.set(key, {
            chat: job.chat,
            number: job.message,
            body: job.body,
            createdAt: current?.createdAt ?? at,
            updatedAt: at,
          })
        }
      }

      // Delivered at least once, in any order: SQS messages of one job or packs of up to 25, in
      // batches of up to ten messages, three batches at a time on the same rows (as concurrent
      // pollers or Lambda invocations run them).
      const deliveries = shuffle(
        accepted.flatMap((item) => (random() < 0.3 ? [item, item] : [item])),
        random,
      )
      const records: Array<{ kind: 'chat' | 'message'; body: string }> = []
      for (let i = 0; i < deliveries.length; ) {
        const kind = deliveries[i]!.kind
        const size = random() < 0.5 ? 1 : 2 + Math.floor(random() * 24)
        const pack: object[] = []
        for (; i < deliveries.length && pack.length < size && deliveries[i]!.kind === kind; i++)
          pack.push(deliveries[i]!.job)
        records.push({ kind, body: JSON.stringify(pack.length === 1 && random() < 0.5 ? pack[0] : pack) })
      }
      const batches: Array<typeof records> = []
      for (let i = 0; i < records.length; ) {
        const size = 1 + Math.floor(random() * 10)
        batches.push(records.slice(i, i + size))
        i += size
      }
      const deliver = async (batch: typeof records) => {
        const ofKind = (kind: 'chat' | 'message') =>
          batch.filter((record) => record.kind === kind).map((record) => ({ body: record.body }))
        const results = await Promise.all([
          ofKind('chat').length ? persistChats(sqsEvent(...ofKind('chat'))) : { batchItemFailures: [] },
          ofKind('message').length
            ? persistMessages(sqsEvent(...ofKind('message')))
            : { batchItemFailures: [] },
        ])
        return results.flatMap((result) => result.batchItemFailures)
      }
      for (let i = 0; i < batches.length; i += 3) {
        const failures = await Promise.all(batches.slice(i, i + 3).map(deliver))
        expect(failures.flat(), `seed ${seed}`).toEqual([])
      }

      expect(await storedChats(base.app), `seed ${seed}`).toEqual(
        [...expectedChats.values()].sort((a, b) => a.number - b.number),
      )
      expect(await storedMessages(base.app), `seed ${seed}`).toEqual(
        [...expectedMessages.values()].sort((a, b) => a.chat - b.chat || a.number - b.number),
      )
    }
  })

  it('never lets a second create under a taken number overwrite the first, and fails its job loudly', async () => {
    const base = await newApplication()
    const first = message(base, { body: 'first owner', version: T0 + 1_000 })
    const second = message(base, { body: 'same number again', version: T0 + 9_000 })

    await persistMessages(sqsEvent(first))
    const result = await persistMessages(
      sqsEvent(
        { body: JSON.stringify([second]), messageId: 'collides' },
        message(base, { message: 2, version: T0 + 9_001 }),
      ),
    )

    expect(result.batchItemFailures).toEqual([{ itemIdentifier: 'collides' }])
    expect((await storedMessages(base.app)).map((m) => [m.number, m.body])).toEqual([
      [1, 'first owner'],
      [2, 'hello'],
    ])
  })

  it('fails a losing create again when it is delivered again beside new messages', async () => {
    const base = await newApplication()
    await persistMessages(sqsEvent(message(base, { body: 'first owner', version: T0 + 1_000 })))
    const loser = {
      body: JSON.stringify([message(base, { body: 'loser', version: T0 + 9_000 })]),
      messageId: 'loser',
    }
    await persistMessages(sqsEvent(loser, message(base, { message: 2, version: T0 + 9_001 })))

    // The row already records the loser: this upsert changes nothing of it, and meets it all the same.
    const again = await persistMessages(sqsEvent(loser, message(base, { message: 3, version: T0 + 9_002 })))

    expect(again.batchItemFailures).toEqual([{ itemIdentifier: 'loser' }])
    expect((await storedMessages(base.app)).map((m) => [m.number, m.body])).toEqual([
      [1, 'first owner'],
      [2, 'hello'],
      [3, 'hello'],
    ])
  })

  it('keeps the earlier of two creates of one number within a batch and fails the later', async () => {
    const base = await newApplication()
    const later = {
      body: JSON.stringify([message(base, { body: 'later', version: T0 + 5_000 })]),
      messageId: 'later',
    }
    const earlier = {
      body: JSON.stringify([message(base, { body: 'earlier', version: T0 + 4_000 })]),
      messageId: 'earlier',
    }

    const result = await persistMessages(sqsEvent(later, earlier))

    expect(result.batchItemFailures).toEqual([{ itemIdentifier: 'later' }])
    expect((await storedMessages(base.app)).map((m) => m.body)).toEqual(['earlier'])
  })

  it('never lets a second chat create under a taken number replace the first, nor the updates after it', async () => {
    const base = await newApplication()

    await persistChats(sqsEvent(chat(base, { title: 'owner', version: T0 })))
    const earlier = await persistChats(
      sqsEvent(chat(base, { op: 'update', title: 'renamed', version: T0 + 5 })),
    )
    const intruder = persistChats(sqsEvent(chat(base, { title: 'intruder', version: T0 + 7 })))
    await expect(intruder).rejects.toThrow('all 1 records of the batch failed')
    const later = persistChats(sqsEvent(chat(base, { op: 'update', title: 'by whom?', version: T0 + 8 })))
    await expect(later).rejects.toThrow('all 1 records of the batch failed')

    expect(earlier.batchItemFailures).toEqual([])
    expect((await storedChats(base.app)).map((c) => c.title)).toEqual(['renamed'])
  })

  it('refuses the updates after a number was handed out twice, so the loser never overwrites the winner', async () => {
    const { token, app } = await newApplication()
    await createChat(deps, token, {})
    await createMessage(deps, token, 1, { body: 'first' })
    await createMessage(deps, token, 1, { body: 'the winner wrote this' })
    await drainQueues(deps)
    // Redis loses its last acknowledged writes: the chat's message counter goes back by one.
    await deps.redis.hset(`n:{${token}}`, 'm:1', '1')

    const loser = await createMessage(deps, token, 1, { body: 'the loser wrote this' })
    const loserCreate = await drainQueues(deps)
    await updateMessage(deps, token, 1, loser, { body: 'the loser edited this' })
    const loserUpdate = await drainQueues(deps)

    expect(loser).toBe(2)
    expect([loserCreate, loserUpdate]).toEqual([0, 0])
    expect((await storedMessages(app)).map((m) => [m.number, m.body])).toEqual([
      [1, 'first'],
      [2, 'the winner wrote this'],
    ])
  })

  it('splits a failing job out of its pack, so that it alone retries and the jobs packed with it are done', async () => {
    const base = await newApplication()
    await persistMessages(sqsEvent(message(base, { body: 'owner' })))
    const colliding = message(base, { body: 'same number again', version: T0 + 9_000 })
    const invalid = { op: 'create', body: 'no numbers' }
    const pack = [
      message(base, { message: 2, body: 'packed 2', version: T0 + 2_000 }),
      colliding,
      invalid,
      message(base, { message: 3, body: 'packed 3', version: T0 + 3_000 }),
    ]

    const result = await persistMessages(sqsEvent({ body: JSON.stringify(pack), messageId: 'pack' }))
    const { Messages = [] } = await deps.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: (await deps.queueUrls()).messages,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 1,
      }),
    )

    expect(result.batchItemFailures).toEqual([])
    expect((await storedMessages(base.app)).map((m) => [m.number, m.body])).toEqual([
      [1, 'owner'],
      [2, 'packed 2'],
      [3, 'packed 3'],
    ])
    expect(Messages.map((m) => JSON.parse(m.Body!))).toEqual(expect.arrayContaining([colliding, invalid]))
    expect(Messages).toHaveLength(2)
  })

  it('marks the chats and applications it touched for the count reconciler', async () => {
    const base = await newApplication()

    await persistMessages(sqsEvent(message(base, { chat: 4 })))

    const [row] = await deps.db
      .select({ id: chats.id })
      .from(chats)
      .where(and(eq(chats.applicationId, base.app), eq(chats.number, 4)))
    expect(await deps.redis.sismember(DIRTY_CHATS_KEY, String(row!.id))).toBe(1)
    expect(await deps.redis.sismember(DIRTY_APPLICATIONS_KEY, String(base.app))).toBe(1)
  })
})
