import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { errorOutput, messagePageOutput } from '../../lib/api/schemas.ts'
import { createApplication } from '../../lib/applications.ts'
import { createChat } from '../../lib/chats.ts'
import type { Deps } from '../../lib/deps.ts'
import { createMessage, getMessage, messagePageQuery } from '../../lib/messages.ts'
import { expectShape } from '../../tests/factories.ts'
import { createTestDeps, drainQueues, poolOf } from '../../tests/harness.ts'
import { createListMessagesApp } from './app.ts'

describe('GET /applications/:token/chats/:chat/messages', () => {
  let deps: Deps
  let app: ReturnType<typeof createListMessagesApp>
  let token: string

  beforeAll(async () => {
    deps = await createTestDeps()
    app = createListMessagesApp(deps)
    token = (await createApplication(deps, { name: 'lists' })).token
    await createChat(deps, token, {})
    await createChat(deps, token, {})
    for (let i = 1; i <= 25; i++) await createMessage(deps, token, 1, { body: `message ${i}` })
    await drainQueues(deps)
  })
  afterAll(() => deps.close())

  it('pages by number with limit and after', async () => {
    const first = expectShape(
      messagePageOutput,
      await (await app.request(`/applications/${token}/chats/1/messages?limit=10`)).json(),
    )
    const last = expectShape(
      messagePageOutput,
      await (await app.request(`/applications/${token}/chats/1/messages?limit=10&after=20`)).json(),
    )

    expect(first.data.map((m) => m.number)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    expect(first.next_after).toBe(10)
    expect(first.data[0]!.body).toBe('message 1')
    expect(last.data.map((m) => m.number)).toEqual([21, 22, 23, 24, 25])
    expect(last.next_after).toBeNull()
  })

  it('gives the timestamps as stored, to the millisecond in UTC, as a single message read does', async () => {
    await poolOf(deps).query(
      "UPDATE messages m JOIN chats c ON c.id = m.chat_id JOIN applications a ON a.id = c.application_id SET m.created_at = '2026-03-04 05:06:07.089', m.updated_at = '2026-12-31 23:59:59.000' WHERE a.token = ? AND c.number = 1 AND m.number = 3",
      [token],
    )

    const page = expectShape(
      messagePageOutput,
      await (await app.request(`/applications/${token}/chats/1/messages?limit=1&after=2`)).json(),
    )

    expect(page.data[0]).toMatchObject({
      number: 3,
      created_at: '2026-03-04T05:06:07.089Z',
      updated_at: '2026-12-31T23:59:59.000Z',
    })
    expect(page.data[0]).toEqual(await getMessage(deps, token, 1, 3))
  })

  it('answers an empty page for a chat without messages', async () => {
    const res = await app.request(`/applications/${token}/chats/2/messages`)

    expect(await res.json()).toEqual({ data: [], next_after: null })
  })

  it.each([
    ['an unknown chat', () => `/applications/${token}/chats/3/messages`],
    ['an unknown application', () => `/applications/${'Q'.repeat(32)}/chats/1/messages`],
  ])('answers 404 for %s', async (_case, path) => {
    const res = await app.request(path())

    expect(res.status).toBe(404)
    expect(expectShape(errorOutput, await res.json()).error.code).toBe('not_found')
  })

  it('answers 400 for a malformed limit', async () => {
    const res = await app.request(`/applications/${token}/chats/1/messages?limit=many`)

    expect(res.status).toBe(400)
    expect(expectShape(errorOutput, await res.json()).error.details).toEqual([
      { field: 'limit', message: 'limit must be a whole number' },
    ])
  })

  it('reads a page by a range over the (chat_id, number) index, without a filesort', async () => {
    const query = messagePageQuery(deps.db, token, 1, { limit: 10, after: 10 }).toSQL()
    const [rows] = (await poolOf(deps).query(`EXPLAIN ${query.sql}`, query.params)) as unknown as [
      Array<Record<string, string | null>>,
    ]

    const messagesPlan = rows.find((row) => row.table === 'messages')!
    expect(messagesPlan.key).toBe('messages_chat_number_unique')
    expect(['range', 'ref']).toContain(messagesPlan.type)
    expect(rows.map((row) => row.Extra ?? '').join(' ')).not.toMatch(/filesort|temporary/i)
    expect(rows.every((row) => row.type !== 'ALL')).toBe(true)
  })
})
