import { and, eq } from 'drizzle-orm'
import { Redis } from 'ioredis'
import mysql from 'mysql2/promise'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { applications, chats, messages } from '../db/schema.ts'
import type { Deps } from '../lib/deps.ts'
import { createTestDeps, testConfig } from './harness.ts'
import { eventually, mapLimit, type ServerProcess, startServerProcess, toEnv } from './processes.ts'

const worker = Number(process.env.VITEST_POOL_ID ?? '1')

const persistedNumbers = async (deps: Deps, token: string, chat: number) => {
  const rows = await deps.db
    .select({ number: messages.number })
    .from(messages)
    .innerJoin(chats, eq(chats.id, messages.chatId))
    .innerJoin(applications, eq(applications.id, chats.applicationId))
    .where(and(eq(applications.token, token), eq(chats.number, chat)))
  return rows.map((row) => row.number)
}

describe('when things fail under load', () => {
  let deps: Deps
  const servers: ServerProcess[] = []

  beforeAll(async () => {
    deps = await createTestDeps()
  })
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((server) => server.stop()))
  })
  afterAll(() => deps.close())

  const createApp = async (server: ServerProcess) => {
    const res = await fetch(`${server.url}/applications`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'failures' }),
    })
    return ((await res.json()) as { token: string }).token
  }
  const postMessage = async (server: ServerProcess, token: string, chat: number, body: string) => {
    try {
      const res = await fetch(`${server.url}/applications/${token}/chats/${chat}/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ body }),
      })
      return res.status === 202 ? ((await res.json()) as { number: number }).number : undefined
    } catch {
      return undefined // the server died with the request in flight: not accepted
    }
  }

  it('never hands out a persisted number again after Redis loses everything mid-run', async () => {
    // A Redis database of its own, so that flushing it touches no other test.
    const redisUrl = new URL(
      `/${1 + (worker % 15)}`,
      process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    ).toString()
    const env = toEnv(testConfig({ REDIS_URL: redisUrl, LOG_LEVEL: 'warn', WRITE_RATE_LIMIT_PER_S: '0' }))
    const checkDeps = await createTestDeps(env)
    servers.push(await startServerProcess(env), await startServerProcess(env))
    const token = await createApp(servers[0]!)
    await fetch(`${servers[0]!.url}/applications/${token}/chats`, { method: 'POST' })
    const flusher = new Redis(redisUrl)

    const numbers = await mapLimit(Array.from({ length: 1_500 }), 50, async (_, i) => {
      if (i === 600) await flusher.flushdb()
      return postMessage(servers[i % 2]!, token, 1, `message ${i}`)
    })

    const accepted = numbers.filter((n): n is number => n !== undefined)
    expect(accepted.length).toBe(1_500)
    expect(new Set(accepted).size).toBe(accepted.length)
    await eventually(async () => (await persistedNumbers(checkDeps, token, 1)).length >= accepted.length, {
      what: 'every accepted message persisted',
    })
    expect((await persistedNumbers(checkDeps, token, 1)).sort((a, b) => a - b)).toEqual(
      accepted.sort((a, b) => a - b),
    )
    await flusher.quit()
    await checkDeps.close()
  })

  it('persists every job a server answered 202 for, though it is killed with SIGKILL under load', async () => {
    const env = toEnv(
      testConfig({
        SQS_VISIBILITY_TIMEOUT_S: '2',
        SQS_POLLERS: '1',
        LOG_LEVEL: 'warn',
        WRITE_RATE_LIMIT_PER_S: '0',
      }),
    )
    const victim = await startServerProcess(env)
    const token = await createApp(victim)
    await fetch(`${victim.url}/applications/${token}/chats`, { method: 'POST' })
    // The kill must find 202'd jobs not yet persisted, whatever the machine's speed: a transaction
    // holds the range of the chat's messages (a gap lock, FOR UPDATE), so the victim's consumer
    // receives batches and waits in its upsert until the kill. Released once the victim is dead.
    await eventually(
      async () => (await fetch(`${victim.url}/applications/${token}/chats/1`)).status === 200,
      {
        what: 'the chat persisted',
      },
    )
    const [chatRow] = await deps.db
      .select({ id: chats.id })
      .from(chats)
      .innerJoin(applications, eq(applications.id, chats.applicationId))
      .where(and(eq(applications.token, token), eq(chats.number, 1)))
    const holder = await mysql.createConnection(env.DATABASE_URL!)
    await holder.query('START TRANSACTION')
    await holder.query('SELECT number FROM messages WHERE chat_id = ? FOR UPDATE', [chatRow!.id])

    let answered = 0
    let inFlight = 0
    let killed: Promise<{ inFlight: number; persisted: Set<number> }> | undefined
    let numbers: Array<number | undefined>
    let atKill: Awaited<NonNullable<typeof killed>>
    try {
      numbers = await mapLimit(Array.from({ length: 1_000 }), 50, async (_, i) => {
        // The kill lands mid-load: with requests in flight, and with jobs accepted but not yet persisted.
        killed ??=
          answered >= 400
            ? (async (requests) => {
                await victim.kill()
                return { inFlight: requests, persisted: new Set(await persistedNumbers(deps, token, 1)) }
              })(inFlight)
            : undefined
        inFlight++
        const number = await postMessage(victim, token, 1, `message ${i}`)
        inFlight--
        if (number !== undefined) answered++
        return number
      })
      atKill = await killed!
    } finally {
      await holder.query('ROLLBACK')
      await holder.end()
    }
    servers.push(await startServerProcess(env))

    const accepted = numbers.filter((n): n is number => n !== undefined)
    expect(accepted.length).toBeGreaterThanOrEqual(400)
    expect(accepted.length).toBeLessThan(1_000)
    expect(atKill.inFlight).toBeGreaterThan(0)
    // None of the 202s was persisted when the server died: every one comes back from SQS, those its
    // consumer held received but unfinished included.
    expect(accepted.filter((n) => atKill.persisted.has(n))).toEqual([])
    await eventually(
      async () => {
        const persisted = new Set(await persistedNumbers(deps, token, 1))
        return accepted.every((n) => persisted.has(n))
      },
      { what: 'every 202 persisted after the crash', timeoutMs: 60_000 },
    )
  })
})
