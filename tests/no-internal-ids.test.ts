import { sql } from 'drizzle-orm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createServerApp } from '../functions/server.ts'
import { allRoutes } from '../lib/api/routes.ts'
import type { Deps } from '../lib/deps.ts'
import { createTestDeps, drainQueues } from './harness.ts'

// Internal ids start at a number no client-visible value can be, so that any leak shows.
const ID_BASE = 987_650_000

const keysOf = (value: unknown): string[] =>
  Array.isArray(value)
    ? value.flatMap(keysOf)
    : value && typeof value === 'object'
      ? Object.entries(value).flatMap(([key, inner]) => [key, ...keysOf(inner)])
      : []

describe('no response carries an internal id', () => {
  let deps: Deps
  let app: ReturnType<typeof createServerApp>
  let token: string

  beforeAll(async () => {
    deps = await createTestDeps()
    for (const table of ['applications', 'chats', 'messages']) {
      await deps.db.execute(sql.raw(`ALTER TABLE ${table} AUTO_INCREMENT = ${ID_BASE}`))
    }
    app = createServerApp(deps)
    const res = await app.request('/applications', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'ids' }),
    })
    token = ((await res.json()) as { token: string }).token
    await app.request(`/applications/${token}/chats`, { method: 'POST' })
    await app.request(`/applications/${token}/chats/1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ body: 'hello there' }),
    })
    await drainQueues(deps)
  })
  afterAll(() => deps.close())

  const concretePath = (path: string, chat: string, message: string) =>
    path
      .replace(':token', token)
      .replace(/:chat(\{[^}]+\})?/, chat)
      .replace(/:message(\{[^}]+\})?/, message)

  const firstChunkOf = async (res: Response) => {
    const reader = res.body!.getReader()
    const { value } = await reader.read()
    await reader.cancel()
    return new TextDecoder().decode(value)
  }

  const cases = allRoutes.flatMap((route) =>
    [
      ['existing', '1', '1'],
      ['missing', '77', '77'],
    ].map(([variant, chat, message]) => ({ route, variant: variant!, chat: chat!, message: message! })),
  )

  it.each(cases)('$route.method $route.path ($variant)', async ({ route, chat, message }) => {
    const body = route.body
      ? JSON.stringify(
          route.path.includes('messages')
            ? { body: 'edited' }
            : route.path.endsWith('chats') || route.path.includes(':chat')
              ? { title: 't' }
              : { name: 'n' },
        )
      : undefined
    const query = route.query ? '?q=hello&limit=5' : ''

    const res = await app.request(`${concretePath(route.path, chat, message)}${query}`, {
      method: route.method,
      ...(body && { headers: { 'content-type': 'application/json' }, body }),
    })

    // A live stream stays open: what it sent first is what there is to check.
    const text = route.success.isEventStream && res.ok ? await firstChunkOf(res) : await res.text()
    const headers = [...res.headers.entries()].map(([key, value]) => `${key}: ${value}`).join('\n')
    expect(res.status).not.toBe(500)
    expect(text).not.toMatch(/98765\d{4}/)
    expect(headers).not.toMatch(/98765\d{4}/)
    if (res.headers.get('content-type')?.includes('json')) {
      const keys = keysOf(JSON.parse(text))
      expect(keys.filter((key) => /(^|_)id$|^_/.test(key))).toEqual([])
    }
  })
})
