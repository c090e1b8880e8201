import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { applicationOutput, errorOutput } from '../../lib/api/schemas.ts'
import type { Deps } from '../../lib/deps.ts'
import { applicationKey } from '../../lib/keys.ts'
import { expectShape, json } from '../../tests/factories.ts'
import { createTestDeps } from '../../tests/harness.ts'
import { createCreateApplicationApp } from './app.ts'

describe('POST /applications', () => {
  let deps: Deps
  let app: ReturnType<typeof createCreateApplicationApp>

  beforeAll(async () => {
    deps = await createTestDeps()
    app = createCreateApplicationApp({ ...deps, clock: () => new Date('2026-11-24T10:00:00.123Z') })
  })
  afterAll(() => deps.close())

  it('creates an application with a generated token and answers 201 with its Location', async () => {
    const res = await app.request('/applications', json('POST', { name: '  Support  ' }))

    expect(res.status).toBe(201)
    const body = expectShape(applicationOutput, await res.json())
    expect(body).toEqual({
      token: expect.stringMatching(/^[A-Za-z0-9_-]{32}$/),
      name: 'Support',
      chats_count: 0,
      created_at: '2026-11-24T10:00:00.123Z',
      updated_at: '2026-11-24T10:00:00.123Z',
    })
    expect(res.headers.get('location')).toBe(`/applications/${body.token}`)
  })

  it('registers the token in Redis so that chat creation can check it without MySQL', async () => {
    const res = await app.request('/applications', json('POST', { name: 'registered' }))
    const { token } = (await res.json()) as { token: string }

    expect(await deps.redis.get(applicationKey(token))).toMatch(/^[1-9][0-9]*$/)
  })

  it('gives every application its own token', async () => {
    const responses = await Promise.all(
      Array.from({ length: 40 }, () => app.request('/applications', json('POST', { name: 'many' }))),
    )

    const tokens = await Promise.all(
      responses.map(async (res) => ((await res.json()) as { token: string }).token),
    )
    expect(new Set(tokens).size).toBe(40)
  })

  it.each([
    ['a missing name', {}, 'name', 'name is required'],
    ['an empty name', { name: '' }, 'name', 'name must not be empty'],
    ['a blank name', { name: '   ' }, 'name', 'name must not be empty'],
    ['a name over 255 characters', { name: 'x'.repeat(256) }, 'name', 'name must be at most 255 characters'],
    ['a name of the wrong type', { name: 42 }, 'name', 'name must be a string'],
    ['an unknown field', { name: 'ok', token: 'mine' }, 'token', 'unknown field'],
    [
      'a name with a lone surrogate',
      '{"name":"bad \\udfff"}',
      'name',
      'name must be valid Unicode (no lone surrogates)',
    ],
  ])('answers 422 for %s', async (_case, body, field, message) => {
    const res = await app.request('/applications', json('POST', body))

    expect(res.status).toBe(422)
    const error = expectShape(errorOutput, await res.json())
    expect(error.error.code).toBe('validation_failed')
    expect(error.error.details).toContainEqual({ field, message })
  })

  it.each([
    ['malformed JSON', '{"name":', 'invalid_json'],
    ['a JSON array', '[{"name":"x"}]', 'invalid_json'],
    ['a JSON string', '"name"', 'invalid_json'],
    ['JSON null', 'null', 'invalid_json'],
    ['an empty body', '', 'invalid_json'],
  ])('answers 400 for %s', async (_case, body, code) => {
    const res = await app.request('/applications', json('POST', body))

    expect(res.status).toBe(400)
    expect(expectShape(errorOutput, await res.json()).error.code).toBe(code)
  })

  it('answers 415 for a body that is not JSON', async () => {
    const res = await app.request('/applications', {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: 'name=x',
    })

    expect(res.status).toBe(415)
    expect(expectShape(errorOutput, await res.json()).error.code).toBe('unsupported_media_type')
  })

  it('answers 413 for a body over 64 KiB', async () => {
    const res = await app.request('/applications', json('POST', { name: 'x'.repeat(70_000) }))

    expect(res.status).toBe(413)
    expect(expectShape(errorOutput, await res.json()).error.code).toBe('payload_too_large')
  })

  it('answers 405 with an Allow header for a method the path does not support', async () => {
    const res = await app.request('/applications', { method: 'DELETE' })

    expect(res.status).toBe(405)
    expect(res.headers.get('allow')).toBe('POST')
    expect(expectShape(errorOutput, await res.json()).error.code).toBe('method_not_allowed')
  })

  it('answers 503 when MySQL is down, and writes nothing', async () => {
    const broken = await createTestDeps({ DATABASE_URL: 'mysql://root@127.0.0.1:1/nowhere' })
    const brokenApp = createCreateApplicationApp(broken)

    const res = await brokenApp.request('/applications', json('POST', { name: 'x' }))

    expect(res.status).toBe(503)
    expect(res.headers.get('retry-after')).toBe('1')
    expect(expectShape(errorOutput, await res.json()).error.code).toBe('unavailable')
    await broken.close()
  })
})
