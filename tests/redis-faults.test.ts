import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createCreateChatApp } from '../functions/create-chat/app.ts'
import { createCreateMessageApp } from '../functions/create-message/app.ts'
import { createHealthApp } from '../functions/health/app.ts'
import { errorOutput } from '../lib/api/schemas.ts'
import { createApplication } from '../lib/applications.ts'
import type { Deps } from '../lib/deps.ts'
import { createApi } from '../lib/http/api.ts'
import { silentLogger } from '../lib/logger.ts'
import { listMessages } from '../lib/messages.ts'
import { expectShape, json } from './factories.ts'
import { createTestDeps, drainQueues } from './harness.ts'
import { eventually, freePort } from './processes.ts'
import { type RedisServer, startRedisServer } from './redis-server.ts'

/** The request-path apps on deps whose Redis is a private, faulty redis-server. */
const appsOn = (deps: Deps) =>
  createApi(silentLogger)
    .route('/', createHealthApp(deps))
    .route('/', createCreateChatApp(deps))
    .route('/', createCreateMessageApp(deps))

describe('when Redis refuses a command', () => {
  let shared: Deps
  const cleanups: Array<() => Promise<unknown>> = []

  beforeAll(async () => {
    shared = await createTestDeps()
  })
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  })
  afterAll(() => shared.close())

  const onRedis = async (redis: RedisServer) => {
    cleanups.push(() => redis.stop())
    const deps = await createTestDeps({ REDIS_URL: redis.url })
    cleanups.push(() => deps.close())
    return { deps, app: appsOn(deps) }
  }
  const timed = async (work: () => Response | Promise<Response>) => {
    const started = performance.now()
    const res = await work()
    return { res, ms: performance.now() - started, body: expectShape(errorOutput, await res.json()) }
  }
  const expectUnavailable = (answer: Awaited<ReturnType<typeof timed>>) => {
    expect(answer.res.status).toBe(503)
    expect(answer.res.headers.get('retry-after')).toMatch(/^[1-9]\d*$/)
    expect(answer.body.error.code).toBe('unavailable')
    expect(answer.ms).toBeLessThan(3_000)
  }
  const readyDown = async (app: ReturnType<typeof appsOn>) => {
    const res = await app.request('/ready')
    const body = (await res.json()) as { error?: { details: Array<{ field: string }> } }
    return { status: res.status, down: body.error?.details.map((d) => d.field) ?? [] }
  }

  it('answers 503, not 500, while Redis is at maxmemory under noeviction, and 202 again once it has room', async () => {
    const redis = await startRedisServer(['--maxmemory-policy', 'noeviction'])
    const { deps, app } = await onRedis(redis)
    const { token } = await createApplication(deps, { name: 'full redis' })
    const chat = await app.request(`/applications/${token}/chats`, { method: 'POST' })
    await redis.admin.config('SET', 'maxmemory', '1')

    const message = await timed(() =>
      app.request(`/applications/${token}/chats/1/messages`, json('POST', { body: 'no room' })),
    )
    const another = await timed(() => app.request(`/applications/${token}/chats`, { method: 'POST' }))
    const ready = await readyDown(app)
    await redis.admin.config('SET', 'maxmemory', '0')
    const healed = await app.request(
      `/applications/${token}/chats/1/messages`,
      json('POST', { body: 'room' }),
    )

    expect(chat.status).toBe(202)
    expectUnavailable(message)
    expect(message.body.error.message).toMatch(/Redis/)
    expectUnavailable(another)
    expect(ready).toEqual({ status: 503, down: ['redis'] })
    expect(healed.status).toBe(202)
    expect(await healed.json()).toEqual({ number: 1 })
    await drainQueues(deps)
    expect((await listMessages(deps, token, 1, { limit: 10, after: 0 })).data.map((m) => m.body)).toEqual([
      'room',
    ])
  })

  it.each([
    ['a read-only replica (READONLY)', []],
    [
      'a replica cut off from its master, serving no stale data (MASTERDOWN)',
      ['--replica-serve-stale-data', 'no'],
    ],
  ])('answers 503 on %s, and /ready names Redis', async (_case, options) => {
    const master = String(await freePort()) // nothing listens there
    const redis = await startRedisServer(['--replicaof', '127.0.0.1', master, ...options])
    const { app } = await onRedis(redis)
    const { token } = await createApplication(shared, { name: 'replica' })

    const chat = await timed(() => app.request(`/applications/${token}/chats`, { method: 'POST' }))
    const ready = await readyDown(app)

    expectUnavailable(chat)
    expect(ready).toEqual({ status: 503, down: ['redis'] })
  })

  it('answers 503 while Redis loads its dataset (LOADING), and 202 once it has loaded', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'redis-loading-'))
    cleanups.push(() => rm(dir, { recursive: true, force: true }))
    const seeding = await startRedisServer([], { dir })
    await seeding.admin.eval("for i = 1, 10000 do redis.call('SET', 'filler:' .. i, i) end", 0)
    await seeding.admin.save()
    const { port } = seeding
    await seeding.stop()
    // Some seconds of loading: 10000 keys, each delayed; the server answers LOADING meanwhile.
    const redis = await startRedisServer(
      ['--key-load-delay', '200', '--loading-process-events-interval-bytes', '1024'],
      { dir, port },
    )
    expect(await redis.admin.ping().catch((error: Error) => error.message)).toMatch(/^LOADING/)
    const { app } = await onRedis(redis)
    const { token } = await createApplication(shared, { name: 'loading' })

    const chat = await timed(() => app.request(`/applications/${token}/chats`, { method: 'POST' }))
    const ready = await readyDown(app)

    expectUnavailable(chat)
    expect(ready).toEqual({ status: 503, down: ['redis'] })
    await eventually(
      async () => (await app.request(`/applications/${token}/chats`, { method: 'POST' })).status === 202,
      { what: 'a chat created once Redis has loaded', timeoutMs: 20_000 },
    )
  })
})
