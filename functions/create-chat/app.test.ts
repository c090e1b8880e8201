import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { acceptedOutput, errorOutput, MAX_NUMBER } from '../../lib/api/schemas.ts'
import { createApplication } from '../../lib/applications.ts'
import { getChat, listChats } from '../../lib/chats.ts'
import type { Deps } from '../../lib/deps.ts'
import { applicationKey, countersKey } from '../../lib/keys.ts'
import { expectShape, json } from '../../tests/factories.ts'
import { countQueries, createTestDeps, drainQueues } from '../../tests/harness.ts'
import { createCreateChatApp } from './app.ts'

describe('POST /applications/:token/chats', () => {
  let deps: Deps
  let app: ReturnType<typeof createCreateChatApp>

  beforeAll(async () => {
    deps = await createTestDeps()
    app = createCreateChatApp(deps)
  })
  afterAll(() => deps.close())

  const newApplication = async () => (await createApplication(deps, { name: 'chats' })).token

  it('answers 202 with the next number and the Location, with or without a body', async () => {
    const token = await newApplication()

    const first = await app.request(`/applications/${token}/chats`, { method: 'POST' })
    const second = await app.request(`/applications/${token}/chats`, json('POST', { title: 'Second' }))

    expect(first.status).toBe(202)
    expect(expectShape(acceptedOutput, await first.json())).toEqual({ number: 1 })
    expect(first.headers.get('location')).toBe(`/applications/${token}/chats/1`)
    expect(await second.json()).toEqual({ number: 2 })
    await drainQueues(deps)
    expect((await getChat(deps, token, 2)).title).toBe('Second')
    expect((await getChat(deps, token, 1)).title).toBeNull()
  })

  it('numbers concurrent creations 1..N without a gap or a duplicate, and persists them all', async () => {
    const token = await newApplication()

    const responses = await Promise.all(
      Array.from({ length: 200 }, () => app.request(`/applications/${token}/chats`, { method: 'POST' })),
    )

    const numbers = await Promise.all(
      responses.map(async (res) => ((await res.json()) as { number: number }).number),
    )
    expect(numbers.sort((a, b) => a - b)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1))
    await drainQueues(deps)
    const page = await listChats(deps, token, { limit: 100, after: 100 })
    expect(page.data.map((chat) => chat.number)).toEqual(Array.from({ length: 100 }, (_, i) => i + 101))
  })

  it('numbers up to 2^31-1, persists that one, and answers 409 numbers_exhausted past it without a job', async () => {
    const token = await newApplication()
    await deps.redis.hset(countersKey(token), 'n', String(MAX_NUMBER - 1))

    const last = await app.request(`/applications/${token}/chats`, json('POST', { title: 'last' }))
    const past = await app.request(`/applications/${token}/chats`, { method: 'POST' })

    expect(await last.json()).toEqual({ number: MAX_NUMBER })
    expect(past.status).toBe(409)
    expect(expectShape(errorOutput, await past.json()).error).toEqual({
      code: 'numbers_exhausted',
      message: `this application has used every chat number up to ${MAX_NUMBER}`,
      details: [],
    })
    expect(await deps.redis.hget(countersKey(token), 'n')).toBe(String(MAX_NUMBER))
    await drainQueues(deps)
    const persisted = await listChats(deps, token, { limit: 100, after: 0 })
    expect(persisted.data.map((chat) => [chat.number, chat.title])).toEqual([[MAX_NUMBER, 'last']])
  })

  it('issues no MySQL query for a known application', async () => {
    const token = await newApplication()
    const queries = countQueries(deps)

    const responses = await Promise.all(
      Array.from({ length: 20 }, () => app.request(`/applications/${token}/chats`, { method: 'POST' })),
    )

    expect(responses.map((res) => res.status)).toEqual(Array(20).fill(202))
    expect(queries.count).toBe(0)
    queries.stop()
  })

  it('answers 404 for an unknown token, and a flood of them costs one MySQL query', async () => {
    const unknown = 'U'.repeat(32)
    const queries = countQueries(deps)

    const responses = await Promise.all(
      Array.from({ length: 50 }, () => app.request(`/applications/${unknown}/chats`, { method: 'POST' })),
    )
    const again = await app.request(`/applications/${unknown}/chats`, { method: 'POST' })

    expect(new Set(responses.map((res) => res.status))).toEqual(new Set([404]))
    expect(again.status).toBe(404)
    expect(expectShape(errorOutput, await again.json()).error.code).toBe('not_found')
    // Concurrent first misses may each look once; after that the negative entry answers.
    expect(queries.count).toBeLessThanOrEqual(50)
    const afterFlood = queries.count
    await Promise.all(
      Array.from({ length: 50 }, () => app.request(`/applications/${unknown}/chats`, { method: 'POST' })),
    )
    expect(queries.count).toBe(afterFlood)
    queries.stop()
  })

  it('finds an application created before Redis lost its key, with one query', async () => {
    const token = await newApplication()
    await deps.redis.del(applicationKey(token))
    const queries = countQueries(deps)

    const res = await app.request(`/applications/${token}/chats`, { method: 'POST' })
    const next = await app.request(`/applications/${token}/chats`, { method: 'POST' })

    expect(res.status).toBe(202)
    expect(await next.json()).toEqual({ number: 2 })
    expect(queries.count).toBe(1) // the application's id; its chat counter survived
    queries.stop()
  })

  describe('with an Idempotency-Key', () => {
    it('gives 50 concurrent copies one number and persists one chat', async () => {
      const token = await newApplication()
      const headers = { 'Idempotency-Key': 'device-42:create-chat' }

      const responses = await Promise.all(
        Array.from({ length: 50 }, () =>
          app.request(`/applications/${token}/chats`, json('POST', { title: 'once' }, headers)),
        ),
      )

      expect(new Set(responses.map((res) => res.status))).toEqual(new Set([202]))
      const numbers = await Promise.all(
        responses.map(async (res) => ((await res.json()) as { number: number }).number),
      )
      expect(new Set(numbers)).toEqual(new Set([1]))
      await drainQueues(deps)
      expect((await listChats(deps, token, { limit: 100, after: 0 })).data).toHaveLength(1)
      const fresh = await app.request(`/applications/${token}/chats`, { method: 'POST' })
      expect(await fresh.json()).toEqual({ number: 2 })
    })

    it('answers 422 idempotency_key_reused for the same key with another body', async () => {
      const token = await newApplication()
      const headers = { 'Idempotency-Key': 'k1' }
      await app.request(`/applications/${token}/chats`, json('POST', { title: 'a' }, headers))

      const res = await app.request(`/applications/${token}/chats`, json('POST', { title: 'b' }, headers))

      expect(res.status).toBe(422)
      expect(expectShape(errorOutput, await res.json()).error.code).toBe('idempotency_key_reused')
    })

    it('scopes keys to the application', async () => {
      const [a, b] = [await newApplication(), await newApplication()]
      await app.request(`/applications/${a}/chats`, json('POST', {}, { 'Idempotency-Key': 'same' }))
      await app.request(`/applications/${a}/chats`, json('POST', {}, { 'Idempotency-Key': 'other' }))

      const res = await app.request(
        `/applications/${b}/chats`,
        json('POST', {}, { 'Idempotency-Key': 'same' }),
      )

      expect(await res.json()).toEqual({ number: 1 })
    })

    it.each([
      ['an empty key', ''],
      ['a key with a space', 'a b'],
      ['a key over 255 characters', 'k'.repeat(256)],
      ['a non-ASCII key', 'clé'],
    ])('answers 400 invalid_parameter for %s', async (_case, key) => {
      const token = await newApplication()

      const res = await app.request(
        `/applications/${token}/chats`,
        json('POST', {}, { 'Idempotency-Key': key }),
      )

      expect(res.status).toBe(400)
      expect(expectShape(errorOutput, await res.json()).error.code).toBe('invalid_parameter')
    })
  })

  it.each([
    [422, 'validation_failed', { title: 5 }],
    [422, 'validation_failed', { title: 't'.repeat(256) }],
    [422, 'validation_failed', { name: 'not a chat field' }],
    [422, 'validation_failed', '{"title":"\\ud800"}'],
    [400, 'invalid_json', '{"title":'],
    [400, 'invalid_json', '[]'],
  ])('answers %i %s for a bad body', async (status, code, body) => {
    const token = await newApplication()

    const res = await app.request(`/applications/${token}/chats`, json('POST', body))

    expect(res.status).toBe(status)
    expect(expectShape(errorOutput, await res.json()).error.code).toBe(code)
  })

  it('answers 415 for a body that is not JSON and 413 for one over 64 KiB', async () => {
    const token = await newApplication()

    const text = await app.request(`/applications/${token}/chats`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: 'title',
    })
    const huge = await app.request(
      `/applications/${token}/chats`,
      json('POST', { title: 'x'.repeat(70_000) }),
    )

    expect(text.status).toBe(415)
    expect(huge.status).toBe(413)
  })

  it('answers 429 with Retry-After past the write rate limit of an application, and only that application', async () => {
    const limited = await createTestDeps({ WRITE_RATE_LIMIT_PER_S: '5' })
    const limitedApp = createCreateChatApp(limited)
    const [busy, calm] = [
      (await createApplication(limited, { name: 'busy' })).token,
      (await createApplication(limited, { name: 'calm' })).token,
    ]

    const statuses = []
    for (let i = 0; i < 7; i++)
      statuses.push((await limitedApp.request(`/applications/${busy}/chats`, { method: 'POST' })).status)
    const over = await limitedApp.request(`/applications/${busy}/chats`, { method: 'POST' })
    const other = await limitedApp.request(`/applications/${calm}/chats`, { method: 'POST' })

    expect(statuses).toEqual([202, 202, 202, 202, 202, 429, 429])
    expect(over.status).toBe(429)
    expect(over.headers.get('retry-after')).toBe('1')
    expect(expectShape(errorOutput, await over.json()).error.code).toBe('rate_limited')
    expect(other.status).toBe(202)
    await limited.close()
  })

  it('answers 503 when SQS refuses the job', async () => {
    const token = await newApplication()
    const broken = await createTestDeps({ SQS_ENDPOINT: 'http://127.0.0.1:1' })
    const brokenApp = createCreateChatApp({ ...broken, redis: deps.redis })

    const res = await brokenApp.request(`/applications/${token}/chats`, { method: 'POST' })

    expect(res.status).toBe(503)
    expect(res.headers.get('retry-after')).toBe('1')
    expect(expectShape(errorOutput, await res.json()).error.code).toBe('unavailable')
    await broken.close()
  })

  it('answers 503 when Redis is down', async () => {
    const token = await newApplication()
    const broken = await createTestDeps({ REDIS_URL: 'redis://127.0.0.1:1' })

    const res = await createCreateChatApp(broken).request(`/applications/${token}/chats`, { method: 'POST' })

    expect(res.status).toBe(503)
    await broken.close()
  })
})
