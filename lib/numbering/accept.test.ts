import { eq } from 'drizzle-orm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { applications } from '../../db/schema.ts'
import { insertApplicationRows } from '../../tests/factories.ts'
import { createTestDeps } from '../../tests/harness.ts'
import { type RedisServer, startRedisServer } from '../../tests/redis-server.ts'
import { MAX_NUMBER } from '../api/schemas.ts'
import { createApplication } from '../applications.ts'
import type { Deps } from '../deps.ts'
import {
  IdempotencyKeyReusedError,
  NotFoundError,
  NumbersExhaustedError,
  RateLimitedError,
  UnavailableError,
} from '../errors.ts'
import { countersKey, rateKey } from '../keys.ts'
import { acceptChat, acceptChatUpdate, acceptMessage, acceptMessageUpdate } from './accept.ts'

// On a private redis-server, so that INFO commandstats counts this file's script calls only.
describe('numbering, batched per application and event-loop turn', () => {
  let redis: RedisServer
  let deps: Deps

  beforeAll(async () => {
    redis = await startRedisServer()
    deps = await createTestDeps({ REDIS_URL: redis.url })
    // Loads the script, so that no call below pays a NOSCRIPT round trip.
    await acceptChat(deps, (await createApplication(deps, { name: 'warm-up' })).token)
  })
  afterAll(async () => {
    await deps.close()
    await redis.stop()
  })

  /** EVALSHA and EVAL calls Redis has run so far. */
  const scriptCalls = async () => {
    const stats = await redis.admin.info('commandstats')
    return [...stats.matchAll(/^cmdstat_eval(?:sha)?:calls=(\d+)/gm)].reduce(
      (sum, [, n]) => sum + Number(n),
      0,
    )
  }
  const countScriptCalls = async <T>(work: () => Promise<T>) => {
    const before = await scriptCalls()
    const result = await work()
    return { result, calls: (await scriptCalls()) - before }
  }
  const newChat = async (on: Deps = deps) => {
    const { token } = await createApplication(on, { name: 'batched' })
    return { token, chat: (await acceptChat(on, token)).number }
  }
  const expectIncreasing = (versions: number[]) =>
    expect(versions.slice(1).every((version, i) => version > versions[i]!)).toBe(true)
  const rejectionOf = (outcome: PromiseSettledResult<unknown>) =>
    outcome.status === 'rejected' ? outcome.reason : undefined

  // A flood is split into calls of at most 128 requests, still numbered without a gap.
  it.each([
    [100, 1],
    [300, 3],
  ])(
    'numbers %i concurrent messages of an application in %i script call(s), 1..n in arrival order',
    async (count, expectedCalls) => {
      const { token, chat } = await newChat()

      const { result: accepted, calls } = await countScriptCalls(() =>
        Promise.all(Array.from({ length: count }, () => acceptMessage(deps, token, chat))),
      )

      expect(calls).toBe(expectedCalls)
      expect(accepted.map((a) => a.number)).toEqual(Array.from({ length: count }, (_, i) => i + 1))
      expectIncreasing(accepted.map((a) => a.version))
    },
  )

  it('answers every kind in one call, each request seeing the ones before it in the batch', async () => {
    const { token, chat } = await newChat()
    await acceptMessage(deps, token, chat)

    const { result: outcomes, calls } = await countScriptCalls(() =>
      Promise.allSettled([
        acceptChat(deps, token), // chat 2
        acceptMessage(deps, token, 2), // in the chat just numbered
        acceptChatUpdate(deps, token, 2),
        acceptMessage(deps, token, chat), // message 2
        acceptMessageUpdate(deps, token, chat, 2),
        acceptMessageUpdate(deps, token, chat, 3),
        acceptMessage(deps, token, 3),
        acceptChatUpdate(deps, token, 9),
      ]),
    )

    expect(calls).toBe(1)
    const fulfilled = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []))
    expect(fulfilled.map((a) => a.number)).toEqual([2, 1, 2, 2, 2])
    expectIncreasing(fulfilled.map((a) => a.version))
    expect(outcomes.slice(5).map((o) => (rejectionOf(o) as Error)?.message)).toEqual([
      'message 3 not found',
      'chat 3 not found',
      'chat 9 not found',
    ])
    expect(outcomes.slice(5).every((o) => rejectionOf(o) instanceof NotFoundError)).toBe(true)
  })

  it('seeds the application and its counters from MySQL for a batch that finds none of them in Redis', async () => {
    const { applicationId } = await insertApplicationRows(deps.db, [2, 3])
    const [row] = await deps.db.select().from(applications).where(eq(applications.id, applicationId))

    const accepted = await Promise.all([
      acceptMessage(deps, row!.token, 1),
      acceptChat(deps, row!.token),
      acceptMessage(deps, row!.token, 2),
      acceptMessage(deps, row!.token, 1),
    ])

    // Each request retries once its own seed is in, so the order among them is the seeds' order.
    const numbers = accepted.map((a) => a.number)
    expect([numbers[0], numbers[3]].sort()).toEqual([3, 4])
    expect(numbers.slice(1, 3)).toEqual([3, 4])
    expect(new Set(accepted.map((a) => a.applicationId))).toEqual(new Set([applicationId]))
  })

  it('seeds a chat whose counter Redis lacks for its own requests only, while the rest of the batch goes on', async () => {
    const { applicationId } = await insertApplicationRows(deps.db, [2, 3])
    const [row] = await deps.db.select().from(applications).where(eq(applications.id, applicationId))
    const token = row!.token
    await acceptMessage(deps, token, 1) // seeds the application, its chats and chat 1: message 3
    await deps.redis.hdel(countersKey(token), 'm:2') // as after Redis lost it

    const { result: accepted, calls } = await countScriptCalls(() =>
      Promise.all([1, 2, 1, 2, 1, 2].map((chat) => acceptMessage(deps, token, chat))),
    )

    const [inChat1, inChat2] = [0, 1].map((first) => accepted.filter((_, i) => i % 2 === first))
    expect(inChat1!.map((a) => a.number)).toEqual([4, 5, 6])
    expect(inChat2!.map((a) => a.number).sort()).toEqual([4, 5, 6])
    // Chat 1's requests went in the first call; chat 2's each in a later one, after its seed.
    expect(calls).toBeGreaterThanOrEqual(2)
    expect(calls).toBeLessThanOrEqual(4)
    const lastOfChat1 = Math.max(...inChat1!.map((a) => a.version))
    expect(inChat2!.every((a) => a.version > lastOfChat1)).toBe(true)
    expectIncreasing(inChat1!.map((a) => a.version))
  })

  it('seeds once for all the requests of a batch that find the same counters missing', async () => {
    const { applicationId } = await insertApplicationRows(deps.db, [2, 3])
    const [row] = await deps.db.select().from(applications).where(eq(applications.id, applicationId))
    // The real queue count, counted: a re-seed of the chat counter and of chat 1's each ask for it.
    let queueCounts = 0
    const counted = {
      ...deps,
      inFlightJobs: () => {
        queueCounts++
        return deps.inFlightJobs()
      },
    }

    const accepted = await Promise.all(
      Array.from({ length: 50 }, () => acceptMessage(counted, row!.token, 1)),
    )

    expect(queueCounts).toBe(2)
    const numbers = accepted.map((a) => a.number).sort((a, b) => a - b)
    expect(new Set(numbers).size).toBe(50)
    expect(numbers[49]! - numbers[0]!).toBe(49)
    expect(numbers[0]).toBeGreaterThanOrEqual(3)
  })

  it('treats a second copy of an Idempotency-Key in the same batch as a replay, or a conflict for another body', async () => {
    const { token, chat } = await newChat()
    const key = (body: string) => ({ key: 'same', body: { body } })

    const { result: outcomes, calls } = await countScriptCalls(() =>
      Promise.allSettled([
        acceptMessage(deps, token, chat, key('a')),
        acceptMessage(deps, token, chat, key('a')),
        acceptMessage(deps, token, chat, key('b')),
        acceptMessage(deps, token, chat),
        acceptChat(deps, token, key('a')), // chats keep their keys apart from a chat's messages
      ]),
    )

    expect(calls).toBe(1)
    const [first, copy, other, plain, newChatAccepted] = outcomes
    expect(first).toEqual(copy)
    expect(first).toMatchObject({ status: 'fulfilled', value: { number: 1 } })
    expect(rejectionOf(other!)).toBeInstanceOf(IdempotencyKeyReusedError)
    expect((rejectionOf(other!) as IdempotencyKeyReusedError).status).toBe(422)
    expect(plain).toMatchObject({ status: 'fulfilled', value: { number: 2 } })
    expect(newChatAccepted).toMatchObject({ status: 'fulfilled', value: { number: 2 } })
  })

  it('counts the rate limit per request in arrival order, replays aside', async () => {
    const limited = await createTestDeps({ REDIS_URL: redis.url, WRITE_RATE_LIMIT_PER_S: '5' })
    const { token, chat } = await newChat(limited)
    await limited.redis.del(rateKey(token)) // a fresh window for the batch
    const key = { key: 'k', body: { body: 'x' } }

    const { result: outcomes, calls } = await countScriptCalls(() =>
      Promise.allSettled([
        acceptMessage(limited, token, chat, key),
        acceptMessage(limited, token, chat, key),
        ...Array.from({ length: 6 }, () => acceptMessage(limited, token, chat)),
      ]),
    )

    expect(calls).toBe(1)
    expect(outcomes.map((o) => (o.status === 'fulfilled' ? o.value.number : 'limited'))).toEqual([
      1,
      1,
      2,
      3,
      4,
      5,
      'limited',
      'limited',
    ])
    expect(rejectionOf(outcomes[7]!)).toBeInstanceOf(RateLimitedError)
    await limited.close()
  })

  it('refuses a create past 2^31-1 inside a batch, after numbering the last one', async () => {
    const { token, chat } = await newChat()
    await deps.redis.hset(countersKey(token), `m:${chat}`, String(MAX_NUMBER - 1))

    const outcomes = await Promise.allSettled([1, 2, 3].map(() => acceptMessage(deps, token, chat)))

    expect(outcomes[0]).toMatchObject({ status: 'fulfilled', value: { number: MAX_NUMBER } })
    expect(outcomes.slice(1).map((o) => rejectionOf(o) instanceof NumbersExhaustedError)).toEqual([
      true,
      true,
    ])
  })

  it('makes one call per application for two applications writing in the same turn', async () => {
    const [a, b] = [await newChat(), await newChat()]

    const { result: accepted, calls } = await countScriptCalls(() =>
      Promise.all(
        Array.from({ length: 10 }, (_, i) => {
          const { token, chat } = i % 2 === 0 ? a : b
          return acceptMessage(deps, token, chat)
        }),
      ),
    )

    expect(calls).toBe(2)
    expect(accepted.map((x) => x.number)).toEqual([1, 1, 2, 2, 3, 3, 4, 4, 5, 5])
    expect(new Set(accepted.filter((_, i) => i % 2 === 0).map((x) => x.applicationId)).size).toBe(1)
  })

  it('rejects every request of the batch with a 503 when Redis does not answer', async () => {
    const broken = await createTestDeps({ REDIS_URL: 'redis://127.0.0.1:1' })

    const outcomes = await Promise.allSettled([
      acceptChat(broken, 'T'.repeat(32)),
      acceptMessage(broken, 'T'.repeat(32), 1),
      acceptMessageUpdate(broken, 'T'.repeat(32), 1, 1),
    ])

    expect(outcomes.map((o) => rejectionOf(o) instanceof UnavailableError)).toEqual([true, true, true])
    await broken.close()
  })
})
