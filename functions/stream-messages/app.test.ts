import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { errorOutput } from '../../lib/api/schemas.ts'
import { createApplication } from '../../lib/applications.ts'
import { createChat } from '../../lib/chats.ts'
import type { Deps } from '../../lib/deps.ts'
import { createMessage, updateMessage } from '../../lib/messages.ts'
import { renderMetrics } from '../../lib/metrics.ts'
import { expectShape } from '../../tests/factories.ts'
import { createTestDeps, drainQueues } from '../../tests/harness.ts'
import { messagesOf, readSse, type SseStream } from '../../tests/sse.ts'
import { createStreamMessagesApp } from './app.ts'

describe('GET /applications/:token/chats/:chat/messages/stream', () => {
  let deps: Deps
  let app: ReturnType<typeof createStreamMessagesApp>
  const open: SseStream[] = []

  beforeAll(async () => {
    deps = await createTestDeps({ LIVE_STREAMS_PER_APPLICATION: '3', LIVE_PING_INTERVAL_S: '1' })
    app = createStreamMessagesApp(deps)
  })
  afterAll(async () => {
    await Promise.all(open.map((stream) => stream.close()))
    await deps.close()
  })

  const newChat = async () => {
    const { token } = await createApplication(deps, { name: 'live' })
    const chat = await createChat(deps, token, { title: 'live' })
    await drainQueues(deps)
    return { token, chat, path: `/applications/${token}/chats/${chat}/messages/stream` }
  }
  const stream = async (path: string, headers: Record<string, string> = {}) => {
    const res = await app.request(path, { headers })
    const sse = readSse(res)
    open.push(sse)
    return sse
  }

  it('sends each message once persisted, in number order, then its update with the new body', async () => {
    const { token, chat, path } = await newChat()
    const live = await stream(path)
    for (const body of ['one', 'two', 'three']) await createMessage(deps, token, chat, { body })

    await drainQueues(deps)
    await live.waitFor((events) => messagesOf(events).length === 3)
    await updateMessage(deps, token, chat, 2, { body: 'two, edited' })
    await drainQueues(deps)
    const events = await live.waitFor((all) => messagesOf(all).length === 4)

    expect(live.status).toBe(200)
    expect(live.headers.get('content-type')).toContain('text/event-stream')
    expect(messagesOf(events).map((m) => [m.number, m.body])).toEqual([
      [1, 'one'],
      [2, 'two'],
      [3, 'three'],
      [2, 'two, edited'],
    ])
    const ids = events.filter((e) => e.event === 'message').map((e) => e.id!)
    expect(new Set(ids).size).toBe(4)
  })

  it('records how long after its append each write of live events went out', async () => {
    const writes = async () => {
      const { body } = await renderMetrics()
      return Number(/^chat_live_delivery_delay_seconds_count (\d+)$/m.exec(body)?.[1] ?? Number.NaN)
    }
    const { token, chat, path } = await newChat()
    const live = await stream(path)
    const before = await writes()
    await createMessage(deps, token, chat, { body: 'timed' })
    await drainQueues(deps)
    await live.waitFor((events) => messagesOf(events).length === 1)

    expect(await writes()).toBe(before + 1)
    const { body } = await renderMetrics()
    // Appended and written by this process within the test: well under the 10 s bucket.
    expect(Number(/^chat_live_delivery_delay_seconds_bucket\{le="10"\} (\d+)$/m.exec(body)?.[1])).toBe(
      before + 1,
    )
  })

  it.each([
    ['the Last-Event-ID header', (cursor: string) => ['', { 'last-event-id': cursor }] as const],
    ['the last_event_id parameter', (cursor: string) => [`?last_event_id=${cursor}`, {}] as const],
  ])('resumes after the cursor given in %s, losing and repeating nothing', async (_how, resume) => {
    const { token, chat, path } = await newChat()
    const first = await stream(path)
    await createMessage(deps, token, chat, { body: 'a' })
    await drainQueues(deps)
    const [seen] = await first.waitFor((events) => messagesOf(events).length === 1)
    await first.close()
    const cursor = first.events.find((e) => e.event === 'message')!.id!
    for (const body of ['b', 'c']) await createMessage(deps, token, chat, { body })
    await drainQueues(deps)

    const [query, headers] = resume(cursor)
    const again = await stream(`${path}${query}`, headers)
    await createMessage(deps, token, chat, { body: 'd' })
    await drainQueues(deps)
    const events = await again.waitFor((all) => messagesOf(all).length === 3)

    expect(JSON.parse(seen!.data).body).toBe('a')
    expect(messagesOf(events).map((m) => m.body)).toEqual(['b', 'c', 'd'])
  })

  it('sends a reset for a cursor older than the log keeps', async () => {
    const { token, chat, path } = await newChat()
    await createMessage(deps, token, chat, { body: 'kept' })
    await drainQueues(deps)

    const live = await stream(path, { 'last-event-id': '1-0' })
    const events = await live.waitFor((all) => all.some((e) => e.event === 'reset'))

    expect(events.find((e) => e.event === 'reset')).toMatchObject({ data: '{}' })
    expect(messagesOf(events)).toEqual([])
  })

  it('sends a ping comment every LIVE_PING_INTERVAL_S', async () => {
    const { path } = await newChat()

    const live = await stream(path)

    await live.waitFor((events) => events.some((e) => e.event === 'comment' && e.data === 'ping'), 3_000)
  })

  it.each([
    ['an unknown application', `/applications/${'V'.repeat(32)}/chats/1/messages/stream`],
    ['an unknown chat', 'CHAT'],
  ])('answers a JSON 404 for %s, without a stream', async (_case, given) => {
    const path = given === 'CHAT' ? (await newChat()).path.replace(/chats\/\d+/, 'chats/99') : given

    const res = await app.request(path)

    expect(res.status).toBe(404)
    expect(expectShape(errorOutput, await res.json()).error.code).toBe('not_found')
  })

  it('answers 429 with Retry-After past LIVE_STREAMS_PER_APPLICATION open streams, and admits again once one closes', async () => {
    const { path } = await newChat()
    const streams = await Promise.all([1, 2, 3].map(() => stream(path)))

    const refused = await app.request(path)
    await streams[0]!.close()
    const admitted = await stream(path)

    expect(streams.map((s) => s.status)).toEqual([200, 200, 200])
    expect(refused.status).toBe(429)
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/)
    expect(expectShape(errorOutput, await refused.json()).error.code).toBe('rate_limited')
    expect(admitted.status).toBe(200)
  })
})
