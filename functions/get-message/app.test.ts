import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { errorOutput, messageOutput } from '../../lib/api/schemas.ts'
import { createApplication } from '../../lib/applications.ts'
import { createChat } from '../../lib/chats.ts'
import type { Deps } from '../../lib/deps.ts'
import { createMessage } from '../../lib/messages.ts'
import { expectShape } from '../../tests/factories.ts'
import { createTestDeps, drainQueues } from '../../tests/harness.ts'
import { createGetMessageApp } from './app.ts'

describe('GET /applications/:token/chats/:chat/messages/:message', () => {
  let deps: Deps
  let app: ReturnType<typeof createGetMessageApp>

  beforeAll(async () => {
    deps = await createTestDeps()
    app = createGetMessageApp(deps)
  })
  afterAll(() => deps.close())

  it('returns the message with millisecond UTC timestamps', async () => {
    const { token } = await createApplication(deps, { name: 'read' })
    const chat = await createChat(deps, token, {})
    const number = await createMessage(deps, token, chat, { body: 'Grüße <b>&</b>' })
    await drainQueues(deps)

    const res = await app.request(`/applications/${token}/chats/${chat}/messages/${number}`)

    expect(res.status).toBe(200)
    const message = expectShape(messageOutput, await res.json())
    expect(message).toMatchObject({ number: 1, body: 'Grüße <b>&</b>' })
    expect(message.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
  })

  it.each([
    ['an unknown message', 2],
    ['a message number of zero', 0],
  ])('answers 404 for %s', async (_case, number) => {
    const { token } = await createApplication(deps, { name: 'read' })
    const chat = await createChat(deps, token, {})
    await createMessage(deps, token, chat, { body: 'only one' })
    await drainQueues(deps)

    const res = await app.request(`/applications/${token}/chats/${chat}/messages/${number}`)

    expect(res.status).toBe(404)
    expect(expectShape(errorOutput, await res.json()).error.code).toBe('not_found')
  })
})
