import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { applicationOutput, errorOutput } from '../../lib/api/schemas.ts'
import { createApplication } from '../../lib/applications.ts'
import type { Deps } from '../../lib/deps.ts'
import { expectShape, json } from '../../tests/factories.ts'
import { createTestDeps } from '../../tests/harness.ts'
import { createUpdateApplicationApp } from './app.ts'

describe.each(['PATCH', 'PUT'])('%s /applications/:token', (method) => {
  let deps: Deps
  let app: ReturnType<typeof createUpdateApplicationApp>
  const later = new Date('2030-01-01T00:00:00.007Z')

  beforeAll(async () => {
    deps = await createTestDeps()
    app = createUpdateApplicationApp({ ...deps, clock: () => later })
  })
  afterAll(() => deps.close())

  it('renames the application and moves updated_at', async () => {
    const created = await createApplication(deps, { name: 'Before' })

    const res = await app.request(`/applications/${created.token}`, json(method, { name: 'After' }))

    expect(res.status).toBe(200)
    expect(expectShape(applicationOutput, await res.json())).toEqual({
      ...created,
      name: 'After',
      updated_at: later.toISOString(),
    })
  })

  it('answers 404 for an unknown token', async () => {
    const res = await app.request(`/applications/${'B'.repeat(32)}`, json(method, { name: 'x' }))

    expect(res.status).toBe(404)
    expect(expectShape(errorOutput, await res.json()).error.code).toBe('not_found')
  })

  it.each([
    [422, 'validation_failed', { name: '' }],
    [422, 'validation_failed', {}],
    [400, 'invalid_json', '{'],
  ])('answers %i %s for a bad body', async (status, code, body) => {
    const created = await createApplication(deps, { name: 'Stays' })

    const res = await app.request(`/applications/${created.token}`, json(method, body))

    expect(res.status).toBe(status)
    expect(expectShape(errorOutput, await res.json()).error.code).toBe(code)
  })

  it('answers 415 for a body that is not JSON', async () => {
    const created = await createApplication(deps, { name: 'Stays' })

    const res = await app.request(`/applications/${created.token}`, {
      method,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'name=x',
    })

    expect(res.status).toBe(415)
  })

  it('answers 503 when MySQL is down', async () => {
    const broken = await createTestDeps({ DATABASE_URL: 'mysql://root@127.0.0.1:1/nowhere' })

    const res = await createUpdateApplicationApp(broken).request(
      `/applications/${'C'.repeat(32)}`,
      json(method, { name: 'x' }),
    )

    expect(res.status).toBe(503)
    expect(expectShape(errorOutput, await res.json()).error.code).toBe('unavailable')
    await broken.close()
  })

  it('answers 413 for a body over 64 KiB', async () => {
    const created = await createApplication(deps, { name: 'Stays' })

    const res = await app.request(
      `/applications/${created.token}`,
      json(method, { name: 'y'.repeat(66_000) }),
    )

    expect(res.status).toBe(413)
  })
})
