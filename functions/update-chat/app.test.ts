import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { acceptedOutput, errorOutput } from '../../lib/api/schemas.ts'
import { createApplication } from '../../lib/applications.ts'
import { createChat, getChat } from '../../lib/chats.ts'
import type { Deps } from '../../lib/deps.ts'
import { expectShape, json } from '../../tests/factories.ts'
import { countQueries, createTestDeps, drainQueues } from '../../tests/harness.ts'
import { createUpdateChatApp } from './app.ts'

describe.each(['PATCH', 'PUT'])('%s /applications/:token/chats/:chat', (method) => {
  let deps: Deps
  let app: ReturnType<typeof createUpdateChatApp>

  beforeAll(async () => {
    deps = await createTestDeps()
    app = createUpdateChatApp(deps)
  })
  afterAll(() => deps.close())

  const newChat = async () => {
    const { token } = await createApplication(deps, { name: 'titles' })
    return { token, chat: await createChat(deps, token, { title: 'before' }) }
  }

  it('answers 202 with the number and Location, writes no MySQL in the request, and the last title wins', async () => {
    const { token, chat } = await newChat()
    const queries = countQueries(deps)

    const first = await app.request(`/applications/${token}/chats/${chat}`, json(method, { title: 'first' }))
    const second = await app.request(
      `/applications/${token}/chats/${chat}`,
      json(method, { title: 'second' }),
    )

    expect(queries.count).toBe(0)
    queries.stop()
    expect(first.status).toBe(202)
    expect(expectShape(acceptedOutput, await first.json())).toEqual({ number: chat })
    expect(first.headers.get('location')).toBe(`/applications/${token}/chats/${chat}`)
    expect(second.status).toBe(202)
    await drainQueues(deps)
    const stored = await getChat(deps, token, chat)
    expect(stored.title).toBe('second')
    expect(stored.updated_at > stored.created_at).toBe(true)
  })

  it('clears the title with null', async () => {
    const { token, chat } = await newChat()

    await app.request(`/applications/${token}/chats/${chat}`, json(method, { title: null }))

    await drainQueues(deps)
    expect((await getChat(deps, token, chat)).title).toBeNull()
  })

  it.each([
    ['an unknown chat', (t: string) => `/applications/${t}/chats/9`],
    ['an unknown application', () => `/applications/${'W'.repeat(32)}/chats/1`],
  ])('answers 404 for %s', async (_case, path) => {
    const { token } = await newChat()

    const res = await app.request(path(token), json(method, { title: 'x' }))

    expect(res.status).toBe(404)
    expect(expectShape(errorOutput, await res.json()).error.code).toBe('not_found')
  })

  it.each([
    [422, { title: 7 }],
    [422, {}],
    [400, 'nope'],
  ])('answers %i for a bad body', async (status, body) => {
    const { token, chat } = await newChat()

    const res = await app.request(`/applications/${token}/chats/${chat}`, json(method, body))

    expect(res.status).toBe(status)
  })
})
