import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { acceptedOutput, errorOutput, MAX_NUMBER } from '../../lib/api/schemas.ts'
import { createApplication } from '../../lib/applications.ts'
import { createChat, getChat } from '../../lib/chats.ts'
import type { Deps } from '../../lib/deps.ts'
import { countersKey } from '../../lib/keys.ts'
import { getMessage, listMessages } from '../../lib/messages.ts'
import { expectShape, json } from '../../tests/factories.ts'
import { countQueries, createTestDeps, drainQueues } from '../../tests/harness.ts'
import { createCreateMessageApp } from './app.ts'

describe('POST /applications/:token/chats/:chat/messages', () => {
  let deps: Deps
  let app: ReturnType<typeof createCreateMessageApp>

  beforeAll(async () => {
    deps = await createTestDeps()
    app = createCreateMessageApp(deps)
  })
  afterAll(() => deps.close())

  const newChat = async () => {
    const { token } = await createApplication(deps, { name: 'messages' })
    const chat = await createChat(deps, token, {})
    return { token, chat }
  }
  const post = (token: string, chat: number, body: unknown, headers: Record<string, string> = {}) =>
    app.request(`/applications/${token}/chats/${chat}/messages`, json('POST', body, headers))

  it('answers 202 with the next number per chat and the Location', async () => {
    const { token, chat } = await newChat()
    const other = await createChat(deps, token, {})

    const first = await post(token, chat, { body: 'hello' })
    const second = await post(token, chat, { body: 'again' })
    const elsewhere = await post(token, other, { body: 'other chat' })

    expect(first.status).toBe(202)
    expect(expectShape(acceptedOutput, await first.json())).toEqual({ number: 1 })
    expect(first.headers.get('location')).toBe(`/applications/${token}/chats/${chat}/messages/1`)
    expect(await second.json()).toEqual({ number: 2 })
    expect(await elsewhere.json()).toEqual({ number: 1 })
  })

  it('accepts a message in a chat whose creation is still in flight, and persists both', async () => {
    const { token } = await createApplication(deps, { name: 'in flight' })
    const chat = await createChat(deps, token, { title: 'not yet persisted' })

    const res = await post(token, chat, { body: 'first!' })

    expect(res.status).toBe(202)
    await drainQueues(deps)
    expect((await getMessage(deps, token, chat, 1)).body).toBe('first!')
    expect((await getChat(deps, token, chat)).title).toBe('not yet persisted')
  })

  it('numbers 300 concurrent messages of one chat 1..300 and persists them all', async () => {
    const { token, chat } = await newChat()

    const responses = await Promise.all(
      Array.from({ length: 300 }, (_, i) => post(token, chat, { body: `m${i}` })),
    )

    const numbers = await Promise.all(
      responses.map(async (res) => ((await res.json()) as { number: number }).number),
    )
    expect(numbers.sort((a, b) => a - b)).toEqual(Array.from({ length: 300 }, (_, i) => i + 1))
    await drainQueues(deps)
    const pages = [
      await listMessages(deps, token, chat, { limit: 100, after: 0 }),
      await listMessages(deps, token, chat, { limit: 100, after: 100 }),
      await listMessages(deps, token, chat, { limit: 100, after: 200 }),
    ]
    expect(pages.flatMap((page) => page.data.map((m) => m.number))).toEqual(numbers)
    expect(pages.map((page) => page.next_after)).toEqual([100, 200, null])
  })

  it('issues no MySQL query for a known chat', async () => {
    const { token, chat } = await newChat()
    const queries = countQueries(deps)

    const responses = await Promise.all(
      Array.from({ length: 20 }, () => post(token, chat, { body: 'quiet' })),
    )

    expect(responses.map((res) => res.status)).toEqual(Array(20).fill(202))
    expect(queries.count).toBe(0)
    queries.stop()
  })

  it('answers 404 for an unknown chat without asking MySQL, and a chat created a moment later is usable at once', async () => {
    const { token, chat } = await newChat()
    const queries = countQueries(deps)

    const flood = await Promise.all(
      Array.from({ length: 100 }, () => post(token, chat + 1, { body: 'nobody' })),
    )
    const next = await createChat(deps, token, {})
    const res = await post(token, next, { body: 'now it exists' })

    expect(new Set(flood.map((r) => r.status))).toEqual(new Set([404]))
    expect(expectShape(errorOutput, await flood[0]!.json()).error.code).toBe('not_found')
    expect(next).toBe(chat + 1)
    expect(res.status).toBe(202)
    expect(queries.count).toBe(0)
    queries.stop()
  })

  it.each([
    ['0', 404],
    ['abc', 404],
    ['99999999999', 404],
  ])('answers %s as a chat number with %i', async (chat, status) => {
    const { token } = await newChat()

    const res = await app.request(
      `/applications/${token}/chats/${chat}/messages`,
      json('POST', { body: 'x' }),
    )

    expect(res.status).toBe(status)
    expect(expectShape(errorOutput, await res.json()).error.code).toBe('not_found')
  })

  it('gives 50 concurrent copies with one Idempotency-Key one number and persists one message', async () => {
    const { token, chat } = await newChat()
    const headers = { 'Idempotency-Key': 'retry-me' }

    const responses = await Promise.all(
      Array.from({ length: 50 }, () => post(token, chat, { body: 'once' }, headers)),
    )
    const reused = await post(token, chat, { body: 'twice' }, headers)

    const numbers = await Promise.all(
      responses.map(async (res) => ((await res.json()) as { number: number }).number),
    )
    expect(new Set(numbers)).toEqual(new Set([1]))
    expect(reused.status).toBe(422)
    expect(expectShape(errorOutput, await reused.json()).error.code).toBe('idempotency_key_reused')
    await drainQueues(deps)
    expect((await listMessages(deps, token, chat, { limit: 100, after: 0 })).data).toHaveLength(1)
  })

  it.each([
    ['a missing body', {}, 'body is required'],
    ['an empty body', { body: '' }, 'body must not be empty'],
    ['a body of only whitespace', { body: ' \n\t ' }, 'body must not be only whitespace'],
    ['a body over 10000 characters', { body: 'b'.repeat(10_001) }, 'body must be at most 10000 characters'],
    ['a body of the wrong type', { body: ['x'] }, 'body must be a string'],
  ])('answers 422 for %s', async (_case, body, message) => {
    const { token, chat } = await newChat()

    const res = await post(token, chat, body)

    expect(res.status).toBe(422)
    expect(expectShape(errorOutput, await res.json()).error.details).toContainEqual({
      field: 'body',
      message,
    })
  })

  it('numbers up to 2^31-1, persists that one, and answers 409 numbers_exhausted past it without a job', async () => {
    const { token, chat } = await newChat()
    await deps.redis.hset(countersKey(token), `m:${chat}`, String(MAX_NUMBER - 1))

    const last = await post(token, chat, { body: 'the last one' })
    const past = await Promise.all([1, 2, 3].map(() => post(token, chat, { body: 'one too many' })))
    const replay = await post(token, chat, { body: 'one too many' }, { 'Idempotency-Key': 'k' })

    expect(await last.json()).toEqual({ number: MAX_NUMBER })
    expect(past.map((res) => res.status)).toEqual([409, 409, 409])
    expect(expectShape(errorOutput, await past[0]!.json()).error).toEqual({
      code: 'numbers_exhausted',
      message: `chat ${chat} has used every message number up to ${MAX_NUMBER}; start a new chat`,
      details: [],
    })
    expect(replay.status).toBe(409)
    expect(await deps.redis.hget(countersKey(token), `m:${chat}`)).toBe(String(MAX_NUMBER))
    await drainQueues(deps)
    const persisted = await listMessages(deps, token, chat, { limit: 100, after: 0 })
    expect(persisted.data.map((message) => [message.number, message.body])).toEqual([
      [MAX_NUMBER, 'the last one'],
    ])
  })

  it.each([
    ['a lone high surrogate', '{"body":"hi \\ud800"}'],
    ['a lone low surrogate', '{"body":"\\udc00 there"}'],
    ['a reversed pair', '{"body":"\\ude00\\ud83d"}'],
  ])('answers 422 naming body for %s, rather than storing U+FFFD', async (_case, text) => {
    const { token, chat } = await newChat()

    const res = await post(token, chat, text)

    expect(res.status).toBe(422)
    const error = expectShape(errorOutput, await res.json()).error
    expect(error.code).toBe('validation_failed')
    expect(error.details).toEqual([
      { field: 'body', message: 'body must be valid Unicode (no lone surrogates)' },
    ])
  })

  it('keeps a body of exactly 10000 characters, emoji included, intact', async () => {
    const { token, chat } = await newChat()
    const body = `${'é'.repeat(9_998)}🙂`

    const res = await post(token, chat, { body })

    expect(await res.json()).toEqual({ number: 1 })
    await drainQueues(deps)
    expect((await getMessage(deps, token, chat, 1)).body).toBe(body)
  })
})
