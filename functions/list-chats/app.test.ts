import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { chatPageOutput, errorOutput } from '../../lib/api/schemas.ts'
import { createApplication } from '../../lib/applications.ts'
import { chatPageQuery, createChat } from '../../lib/chats.ts'
import type { Deps } from '../../lib/deps.ts'
import { expectShape } from '../../tests/factories.ts'
import { createTestDeps, drainQueues, poolOf } from '../../tests/harness.ts'
import { createListChatsApp } from './app.ts'

describe('GET /applications/:token/chats', () => {
  let deps: Deps
  let app: ReturnType<typeof createListChatsApp>
  let token: string

  beforeAll(async () => {
    deps = await createTestDeps()
    app = createListChatsApp(deps)
    token = (await createApplication(deps, { name: 'lists' })).token
    for (let i = 1; i <= 45; i++) await createChat(deps, token, { title: `chat ${i}` })
    await drainQueues(deps)
  })
  afterAll(() => deps.close())

  it('pages by number with limit and after, and says where the next page starts', async () => {
    const first = await app.request(`/applications/${token}/chats`)
    const second = await app.request(`/applications/${token}/chats?limit=20&after=20`)
    const last = await app.request(`/applications/${token}/chats?limit=20&after=40`)

    const pages = await Promise.all(
      [first, second, last].map(async (res) => expectShape(chatPageOutput, await res.json())),
    )
    expect(pages.map((page) => page.data.map((chat) => chat.number))).toEqual([
      Array.from({ length: 20 }, (_, i) => i + 1),
      Array.from({ length: 20 }, (_, i) => i + 21),
      [41, 42, 43, 44, 45],
    ])
    expect(pages.map((page) => page.next_after)).toEqual([20, 40, null])
    expect(pages[0]!.data[0]).toEqual({
      number: 1,
      title: 'chat 1',
      messages_count: 0,
      created_at: expect.any(String),
      updated_at: expect.any(String),
    })
  })

  it('answers an empty page for an application without chats', async () => {
    const empty = (await createApplication(deps, { name: 'empty' })).token

    const res = await app.request(`/applications/${empty}/chats`)

    expect(await res.json()).toEqual({ data: [], next_after: null })
  })

  it('answers 404 for an unknown application', async () => {
    const res = await app.request(`/applications/${'Z'.repeat(32)}/chats`)

    expect(res.status).toBe(404)
    expect(expectShape(errorOutput, await res.json()).error.code).toBe('not_found')
  })

  it.each(['limit=0', 'limit=101', 'limit=abc', 'limit=-1', 'after=x', 'after=1.5', 'limit=1e3'])(
    'answers 400 invalid_parameter for %s',
    async (query) => {
      const res = await app.request(`/applications/${token}/chats?${query}`)

      expect(res.status).toBe(400)
      expect(expectShape(errorOutput, await res.json()).error.code).toBe('invalid_parameter')
    },
  )

  it('reads a page by a range over the (application_id, number) index, without a filesort', async () => {
    const query = chatPageQuery(deps.db, token, { limit: 20, after: 20 }).toSQL()
    const [rows] = (await poolOf(deps).query(`EXPLAIN ${query.sql}`, query.params)) as unknown as [
      Array<Record<string, string | null>>,
    ]

    const chatsPlan = rows.find((row) => row.table === 'chats')!
    expect(chatsPlan.key).toBe('chats_application_number_unique')
    expect(['range', 'ref']).toContain(chatsPlan.type)
    expect(rows.map((row) => row.Extra ?? '').join(' ')).not.toMatch(/filesort|temporary/i)
    expect(rows.every((row) => row.type !== 'ALL')).toBe(true)
  })
})
