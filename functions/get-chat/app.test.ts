import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { chatOutput, errorOutput } from '../../lib/api/schemas.ts'
import { createApplication } from '../../lib/applications.ts'
import { createChat } from '../../lib/chats.ts'
import type { Deps } from '../../lib/deps.ts'
import { expectShape } from '../../tests/factories.ts'
import { createTestDeps, drainQueues, poolOf } from '../../tests/harness.ts'
import { createGetChatApp } from './app.ts'

describe('GET /applications/:token/chats/:chat', () => {
  let deps: Deps
  let app: ReturnType<typeof createGetChatApp>

  beforeAll(async () => {
    deps = await createTestDeps()
    app = createGetChatApp(deps)
  })
  afterAll(() => deps.close())

  it('returns the chat once persisted, and 404 before', async () => {
    const { token } = await createApplication(deps, { name: 'read' })
    const chat = await createChat(deps, token, { title: 'hello' })

    const before = await app.request(`/applications/${token}/chats/${chat}`)
    await drainQueues(deps)
    const after = await app.request(`/applications/${token}/chats/${chat}`)

    expect(before.status).toBe(404)
    expect(after.status).toBe(200)
    expect(expectShape(chatOutput, await after.json())).toMatchObject({
      number: 1,
      title: 'hello',
      messages_count: 0,
    })
  })

  it('gives the timestamps as stored, to the millisecond in UTC', async () => {
    const { token } = await createApplication(deps, { name: 'times' })
    const chat = await createChat(deps, token, { title: null })
    await drainQueues(deps)
    await poolOf(deps).query(
      "UPDATE chats c JOIN applications a ON a.id = c.application_id SET c.created_at = '2026-03-04 05:06:07.089', c.updated_at = '2026-12-31 23:59:59.000' WHERE a.token = ? AND c.number = ?",
      [token, chat],
    )

    const res = await app.request(`/applications/${token}/chats/${chat}`)

    expect(expectShape(chatOutput, await res.json())).toEqual({
      number: chat,
      title: null,
      messages_count: 0,
      created_at: '2026-03-04T05:06:07.089Z',
      updated_at: '2026-12-31T23:59:59.000Z',
    })
  })

  it.each([
    ['an unknown application', `/applications/${'V'.repeat(32)}/chats/1`],
    ['a chat number of zero', `/applications/${'V'.repeat(32)}/chats/0`],
    ['a chat number that is not a number', `/applications/${'V'.repeat(32)}/chats/first`],
  ])('answers 404 for %s', async (_case, path) => {
    const res = await app.request(path)

    expect(res.status).toBe(404)
    expect(expectShape(errorOutput, await res.json()).error.code).toBe('not_found')
  })
})
