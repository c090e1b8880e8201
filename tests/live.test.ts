import { type IncomingMessage, request } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { errorOutput } from '../lib/api/schemas.ts'
import { createApplication } from '../lib/applications.ts'
import type { Deps } from '../lib/deps.ts'
import { expectShape } from './factories.ts'
import { createTestDeps, testConfig } from './harness.ts'
import { mapLimit, type ServerProcess, startServerProcess, toEnv } from './processes.ts'
import { messagesOf, readSse, type SseStream } from './sse.ts'

// Live streams across three server processes that share MySQL, Redis and the queues: subscribers
// on one server, writes through the others, persisted by whichever server's poller takes the job.

describe('live message streams across three servers', () => {
  let deps: Deps
  let servers: ServerProcess[]
  let config: ReturnType<typeof testConfig>
  const open: SseStream[] = []

  beforeAll(async () => {
    config = testConfig({
      // No search engine: not under test here, and the slow-reader test's 10 MB of bodies would
      // load the one the other test files share (the writes wait in the outbox, as in an outage).
      ELASTICSEARCH_URL: 'http://127.0.0.1:9',
      SQS_POLLERS: '2',
      LOG_LEVEL: 'warn',
      WRITE_RATE_LIMIT_PER_S: '0',
      LIVE_STREAMS_PER_APPLICATION: '6',
      LIVE_QUEUE_LIMIT: '100',
    })
    deps = await createTestDeps(toEnv(config))
    servers = await Promise.all([1, 2, 3].map(() => startServerProcess(toEnv(config))))
  })
  afterAll(async () => {
    await Promise.all(open.map((stream) => stream.close()))
    await Promise.all(servers?.map((server) => server.stop()) ?? [])
    await deps?.close()
  })

  const send = async (server: ServerProcess, method: string, path: string, body?: unknown) => {
    const res = await fetch(`${server.url}${path}`, {
      method,
      ...(body !== undefined && {
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      }),
    })
    expect(res.status, await res.clone().text()).toBe(202)
    return ((await res.json()) as { number: number }).number
  }
  const newChats = async (count: number) => {
    const { token } = await createApplication(deps, { name: 'live' })
    for (let i = 0; i < count; i++) await send(servers[0]!, 'POST', `/applications/${token}/chats`)
    // The stream answers 404 until the chat is persisted.
    for (let chat = 1; chat <= count; chat++) {
      for (let tries = 0; ; tries++) {
        const res = await fetch(`${servers[0]!.url}/applications/${token}/chats/${chat}`)
        if (res.ok) break
        if (tries > 100) throw new Error(`chat ${chat} not persisted`)
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
    }
    return token
  }
  const streamPath = (token: string, chat: number) => `/applications/${token}/chats/${chat}/messages/stream`
  const subscribe = async (server: ServerProcess, path: string, headers: Record<string, string> = {}) => {
    const sse = readSse(await fetch(`${server.url}${path}`, { headers }))
    open.push(sse)
    return sse
  }

  it('delivers every message created through other servers to subscribers on each server, once each, in number order', async () => {
    const token = await newChats(2)
    const subscribers = await Promise.all(
      [0, 1, 2].flatMap((s) =>
        [1, 2].map(async (chat) => ({ chat, sse: await subscribe(servers[s]!, streamPath(token, chat)) })),
      ),
    )

    await mapLimit(Array.from({ length: 400 }), 40, (_, i) =>
      send(servers[i % 3]!, 'POST', `/applications/${token}/chats/${1 + (i % 2)}/messages`, {
        body: `m${i}`,
      }),
    )
    for (const { sse } of subscribers) await sse.waitFor((events) => messagesOf(events).length >= 200, 30_000)
    await new Promise((resolve) => setTimeout(resolve, 500)) // anything extra would arrive now

    for (const { sse } of subscribers) {
      expect(messagesOf(sse.events).map((m) => m.number)).toEqual(
        Array.from({ length: 200 }, (_, i) => i + 1),
      )
    }
    const first = messagesOf(subscribers[0]!.sse.events)[0]!
    const res = await fetch(`${servers[2]!.url}/applications/${token}/chats/1/messages/${first.number}`)
    expect(await res.json()).toEqual(first)
  })

  it('streams an update made through another server with its new body', async () => {
    const token = await newChats(1)
    const sse = await subscribe(servers[1]!, streamPath(token, 1))
    await send(servers[0]!, 'POST', `/applications/${token}/chats/1/messages`, { body: 'draft' })
    await sse.waitFor((events) => messagesOf(events).length === 1)

    await send(servers[2]!, 'PATCH', `/applications/${token}/chats/1/messages/1`, { body: 'final' })
    const events = await sse.waitFor((all) => messagesOf(all).length === 2)

    expect(messagesOf(events).map((m) => [m.number, m.body])).toEqual([
      [1, 'draft'],
      [1, 'final'],
    ])
  })

  it('resumes on another server from the last cursor, losing and repeating nothing', async () => {
    const token = await newChats(1)
    const post = (i: number) =>
      send(servers[i % 3]!, 'POST', `/applications/${token}/chats/1/messages`, { body: `m${i}` })
    const before = await subscribe(servers[0]!, streamPath(token, 1))
    await mapLimit(Array.from({ length: 50 }), 10, (_, i) => post(i))
    await before.waitFor((events) => messagesOf(events).length === 50)
    await before.close()
    const cursor = before.events.filter((e) => e.event === 'message').at(-1)!.id!

    await mapLimit(Array.from({ length: 50 }), 10, (_, i) => post(50 + i))
    const after = await subscribe(servers[2]!, streamPath(token, 1), { 'last-event-id': cursor })
    await mapLimit(Array.from({ length: 50 }), 10, (_, i) => post(100 + i))
    await after.waitFor((events) => messagesOf(events).length >= 100)
    await new Promise((resolve) => setTimeout(resolve, 300))

    expect(messagesOf(after.events).map((m) => m.number)).toEqual(
      Array.from({ length: 100 }, (_, i) => 51 + i),
    )
  })

  it('sends a reset for a cursor older than what is kept', async () => {
    const token = await newChats(1)
    const first = await subscribe(servers[1]!, streamPath(token, 1))
    await send(servers[0]!, 'POST', `/applications/${token}/chats/1/messages`, { body: 'kept' })
    await first.waitFor((events) => messagesOf(events).length === 1)

    const stale = await subscribe(servers[1]!, `${streamPath(token, 1)}?last_event_id=1-1`)

    const events = await stale.waitFor((all) => all.some((e) => e.event === 'reset'))
    expect(events.filter((e) => e.event !== 'comment').map((e) => [e.event, e.data])).toEqual([
      ['reset', '{}'],
    ])
  })

  it('answers a JSON 404 for an unknown chat before any stream starts', async () => {
    const token = await newChats(1)

    const res = await fetch(`${servers[2]!.url}${streamPath(token, 2)}`)

    expect(res.status).toBe(404)
    expect(res.headers.get('content-type')).toContain('application/json')
    expect(expectShape(errorOutput, await res.json()).error.code).toBe('not_found')
  })

  it('counts open streams per application across servers: past the cap, 429 with Retry-After', async () => {
    const token = await newChats(1)
    const streams = await Promise.all(
      [0, 1, 2, 0, 1, 2].map((s) => subscribe(servers[s]!, streamPath(token, 1))),
    )

    const refused = await fetch(`${servers[1]!.url}${streamPath(token, 1)}`)

    expect(streams.map((s) => s.status)).toEqual([200, 200, 200, 200, 200, 200])
    expect(refused.status).toBe(429)
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0)
    expect(expectShape(errorOutput, await refused.json()).error.code).toBe('rate_limited')
  })

  it('ends its open streams and exits cleanly on SIGTERM', async () => {
    const token = await newChats(1)
    const extra = await startServerProcess(toEnv(config))
    const sse = await subscribe(extra, streamPath(token, 1))
    await send(servers[0]!, 'POST', `/applications/${token}/chats/1/messages`, { body: 'before' })
    await sse.waitFor((events) => messagesOf(events).length === 1)

    const started = performance.now()
    const code = await extra.stop()
    await sse.ended

    expect(code).toBe(0)
    expect(performance.now() - started).toBeLessThan(10_000)
  })

  it('disconnects a reader that stopped reading, while the others keep receiving', async () => {
    const token = await newChats(1)
    const fast = await subscribe(servers[0]!, streamPath(token, 1))
    // A client that reads the headers and then nothing: the socket buffers fill up, then its queue.
    const slow = await new Promise<IncomingMessage>((resolve, reject) => {
      request(new URL(`${servers[0]!.url}${streamPath(token, 1)}`), (res) => {
        res.pause()
        resolve(res)
      })
        .on('error', reject)
        .end()
    })
    const body = 'x'.repeat(10_000)

    await mapLimit(Array.from({ length: 1_000 }), 40, (_, i) =>
      send(servers[1 + (i % 2)]!, 'POST', `/applications/${token}/chats/1/messages`, { body }),
    )
    const events = await fast.waitFor((all) => messagesOf(all).length === 1_000, 60_000)
    // Reading now finds what the socket held and then the end: the server dropped it.
    let received = ''
    slow.setEncoding('utf8').on('data', (chunk: string) => {
      received += chunk
    })
    slow.resume()
    await new Promise((resolve) => slow.socket.once('close', resolve))

    expect(messagesOf(events).map((m) => m.number)).toEqual(Array.from({ length: 1_000 }, (_, i) => i + 1))
    expect(received.split('event: message').length - 1).toBeLessThan(1_000)
  }, 120_000)
})
