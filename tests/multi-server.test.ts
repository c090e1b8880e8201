import { and, count, eq } from 'drizzle-orm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { applications, chats, messages } from '../db/schema.ts'
import { createApplication } from '../lib/applications.ts'
import type { Deps } from '../lib/deps.ts'
import { createTestDeps, testConfig } from './harness.ts'
import { eventually, mapLimit, type ServerProcess, startServerProcess, toEnv } from './processes.ts'

// Three server processes share MySQL, Redis and the queues, as three machines would.

describe('three servers under concurrent load', () => {
  let deps: Deps
  let servers: ServerProcess[]

  beforeAll(async () => {
    const config = testConfig({ SQS_POLLERS: '2', LOG_LEVEL: 'warn', WRITE_RATE_LIMIT_PER_S: '0' })
    deps = await createTestDeps(toEnv(config))
    servers = await Promise.all([1, 2, 3].map(() => startServerProcess(toEnv(config))))
  })
  afterAll(async () => {
    await Promise.all(servers?.map((server) => server.stop()) ?? [])
    await deps?.close()
  })

  const post = async (server: ServerProcess, path: string, body?: unknown) => {
    const res = await fetch(`${server.url}${path}`, {
      method: 'POST',
      ...(body !== undefined && {
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      }),
    })
    expect(res.status, await res.clone().text()).toBe(202)
    return ((await res.json()) as { number: number }).number
  }

  const applicationIdOf = async (token: string) =>
    (
      await deps.db.select({ id: applications.id }).from(applications).where(eq(applications.token, token))
    )[0]!.id

  it('numbers 3,000 concurrent chat creations 1..3000 and persists them all', async () => {
    const { token } = await createApplication(deps, { name: 'busy' })

    const numbers = await mapLimit(Array.from({ length: 3_000 }), 300, (_, i) =>
      post(servers[i % 3]!, `/applications/${token}/chats`, { title: `chat ${i}` }),
    )

    expect([...numbers].sort((a, b) => a - b)).toEqual(Array.from({ length: 3_000 }, (_, i) => i + 1))
    const app = await applicationIdOf(token)
    await eventually(
      async () =>
        (await deps.db.select({ n: count() }).from(chats).where(eq(chats.applicationId, app)))[0]!.n ===
        3_000,
      { what: '3000 chats persisted' },
    )
  })

  it('numbers 10,000 concurrent messages over 10 chats densely per chat and persists them all', async () => {
    const { token } = await createApplication(deps, { name: 'chatty' })
    for (let chat = 1; chat <= 10; chat++) await post(servers[0]!, `/applications/${token}/chats`)

    const sent = await mapLimit(Array.from({ length: 10_000 }), 300, async (_, i) => {
      const chat = 1 + (i % 10)
      return {
        chat,
        number: await post(servers[i % 3]!, `/applications/${token}/chats/${chat}/messages`, {
          body: `m${i}`,
        }),
      }
    })

    for (let chat = 1; chat <= 10; chat++) {
      const numbers = sent.filter((item) => item.chat === chat).map((item) => item.number)
      expect(numbers.sort((a, b) => a - b)).toEqual(Array.from({ length: 1_000 }, (_, i) => i + 1))
    }
    const app = await applicationIdOf(token)
    const persisted = () =>
      deps.db
        .select({ chat: chats.number, n: count() })
        .from(messages)
        .innerJoin(chats, eq(chats.id, messages.chatId))
        .where(eq(chats.applicationId, app))
        .groupBy(chats.number)
    await eventually(async () => (await persisted()).reduce((sum, row) => sum + row.n, 0) === 10_000, {
      what: '10000 messages persisted',
      timeoutMs: 90_000,
    })
    expect((await persisted()).every((row) => row.n === 1_000)).toBe(true)
    const [dense] = await deps.db
      .select({ n: count() })
      .from(messages)
      .innerJoin(chats, eq(chats.id, messages.chatId))
      .where(and(eq(chats.applicationId, app), eq(messages.number, 1_000)))
    expect(dense!.n).toBe(10)
  })
})
