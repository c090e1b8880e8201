import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { migrateDatabase } from '../lib/db.ts'
import { testConfig, workerDatabaseUrl } from './harness.ts'
import { eventually, type ServerProcess, startServerProcess, toEnv } from './processes.ts'

// Black box: a real server process, its stdout, and nothing but HTTP in between. Its backlog gauges
// count the whole database: a database of this file's own keeps out what the test files before it
// in the same worker left unindexed (a search outage test leaves hundreds).
const databaseUrl = workerDatabaseUrl('_operability')

describe('a server process, for its operator', () => {
  let server: ServerProcess

  beforeAll(async () => {
    await migrateDatabase(databaseUrl)
    server = await startServerProcess(
      toEnv(testConfig({ DATABASE_URL: databaseUrl, LOG_LEVEL: 'debug', SQS_POLLERS: '1' })),
    )
  })
  afterAll(() => server?.stop())

  const post = (path: string, requestId: string, body?: unknown) =>
    fetch(`${server.url}${path}`, {
      method: 'POST',
      headers: { 'x-request-id': requestId, 'content-type': 'application/json' },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    })
  const logLines = () =>
    server
      .output()
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>)

  it("finds the client's X-Request-Id in the consumer's log line for the job it accepted", async () => {
    const run = randomBytes(4).toString('hex')
    const { token } = (await (await post('/applications', `app-${run}`, { name: 'request ids' })).json()) as {
      token: string
    }
    const chatRes = await post(`/applications/${token}/chats`, `chat-${run}`)
    const messageRes = await post(`/applications/${token}/chats/1/messages`, `abc-${run}`, { body: 'hello' })

    expect([chatRes.status, messageRes.status]).toEqual([202, 202])
    expect(messageRes.headers.get('x-request-id')).toBe(`abc-${run}`)
    const persistedLine = (rid: string) =>
      logLines().find((line) => line.msg === 'job persisted' && line.request_id === rid)
    await eventually(async () => Boolean(persistedLine(`abc-${run}`) && persistedLine(`chat-${run}`)), {
      timeoutMs: 30_000,
      what: 'consumer log lines naming the request ids',
    })
    expect(persistedLine(`abc-${run}`)).toMatchObject({
      level: 'debug',
      queue: 'messages',
      chat: 1,
      message: 1,
    })
    expect(persistedLine(`chat-${run}`)).toMatchObject({ level: 'debug', queue: 'chats', chat: 1 })
    expect(logLines().some((line) => line.msg === 'batch persisted' && line.queue === 'messages')).toBe(true)
  })

  it('exports the backlog gauges from a background read, never from a scrape', async () => {
    const scrape = async () => (await fetch(`${server.url}/metrics`)).text()
    const readAt = (text: string) => text.match(/^chat_backlog_updated_timestamp_seconds (\S+)$/m)?.[1]

    await eventually(async () => readAt(await scrape()) !== undefined, { what: 'the first backlog read' })

    const first = await scrape()
    const second = await scrape()

    expect(readAt(second)).toBe(readAt(first))
    expect(first).toMatch(/^chat_queue_messages\{queue="messages",state="dead_letter"\} 0$/m)
    expect(first).toMatch(/^chat_search_index_pending 0$/m)
  })
})
