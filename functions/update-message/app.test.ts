import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { acceptedOutput, errorOutput } from '../../lib/api/schemas.ts'
import { createApplication } from '../../lib/applications.ts'
import { createChat } from '../../lib/chats.ts'
import type { Deps } from '../../lib/deps.ts'
import { createMessage, getMessage } from '../../lib/messages.ts'
import { expectShape, json } from '../../tests/factories.ts'
import { countQueries, createTestDeps, drainQueues } from '../../tests/harness.ts'
import { createUpdateMessageApp } from './app.ts'

describe.each(['PATCH', 'PUT'])('%s /applications/:token/chats/:chat/messages/:message', (method) => {
  let deps: Deps
  let app: ReturnType<typeof createUpdateMessageApp>

  beforeAll(async () => {
    deps = await createTestDeps()
    app = createUpdateMessageApp(deps)
  })
  afterAll(() => deps.close())

  const newMessage = async () => {
    const { token } = await createApplication(deps, { name: 'edits' })
    const chat = await createChat(deps, token, {})
    return { token, chat, message: await createMessage(deps, token, chat, { body: 'original' }) }
  }

  it('answers 202, writes no MySQL in the request, and the last body wins even before the create persists', async () => {
    const { token, chat, message } = await newMessage()
    const path = `/applications/${token}/chats/${chat}/messages/${message}`
    const queries = countQueries(deps)

    const first = await app.request(path, json(method, { body: 'edit 1' }))
    const second = await app.request(path, json(method, { body: 'edit 2' }))

    expect(queries.count).toBe(0)
    queries.stop()
    expect(first.status).toBe(202)
    expect(expectShape(acceptedOutput, await first.json())).toEqual({ number: message })
    expect(first.headers.get('location')).toBe(path)
    expect(second.status).toBe(202)
    await drainQueues(deps)
    const stored = await getMessage(deps, token, chat, message)
    expect(stored.body).toBe('edit 2')
    expect(stored.updated_at > stored.created_at).toBe(true)
  })

  it.each([
    ['an unknown message', (t: string, c: number) => `/applications/${t}/chats/${c}/messages/2`],
    ['an unknown chat', (t: string) => `/applications/${t}/chats/5/messages/1`],
    [
      'a message number out of range',
      (t: string, c: number) => `/applications/${t}/chats/${c}/messages/4294967296`,
    ],
  ])('answers 404 for %s', async (_case, path) => {
    const { token, chat } = await newMessage()

    const res = await app.request(path(token, chat), json(method, { body: 'x' }))

    expect(res.status).toBe(404)
    expect(expectShape(errorOutput, await res.json()).error.code).toBe('not_found')
  })

  it('answers 422 for a blank body', async () => {
    const { token, chat, message } = await newMessage()

    const res = await app.request(
      `/applications/${token}/chats/${chat}/messages/${message}`,
      json(method, { body: '  ' }),
    )

    expect(res.status).toBe(422)
  })
})
