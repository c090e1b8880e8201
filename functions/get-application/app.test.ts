import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { applicationOutput, errorOutput } from '../../lib/api/schemas.ts'
import { createApplication } from '../../lib/applications.ts'
import type { Deps } from '../../lib/deps.ts'
import { expectShape } from '../../tests/factories.ts'
import { createTestDeps } from '../../tests/harness.ts'
import { createGetApplicationApp } from './app.ts'

describe('GET /applications/:token', () => {
  let deps: Deps
  let app: ReturnType<typeof createGetApplicationApp>

  beforeAll(async () => {
    deps = await createTestDeps()
    app = createGetApplicationApp(deps)
  })
  afterAll(() => deps.close())

  it('returns the application', async () => {
    const created = await createApplication(deps, { name: 'Read me' })

    const res = await app.request(`/applications/${created.token}`)

    expect(res.status).toBe(200)
    expect(expectShape(applicationOutput, await res.json())).toEqual(created)
  })

  it.each([
    ['an unknown token', 'A'.repeat(32)],
    ['a token of the wrong length', 'short'],
    ['a token with characters tokens never have', `${'A'.repeat(31)}$`],
  ])('answers 404 for %s', async (_case, token) => {
    const res = await app.request(`/applications/${encodeURIComponent(token)}`)

    expect(res.status).toBe(404)
    expect(expectShape(errorOutput, await res.json()).error.code).toBe('not_found')
  })

  it('answers 405 with an Allow header for DELETE, which no route supports', async () => {
    const created = await createApplication(deps, { name: 'Stays' })

    const res = await app.request(`/applications/${created.token}`, { method: 'DELETE' })

    expect(res.status).toBe(405)
    expect(res.headers.get('allow')).toBe('GET, PATCH, PUT, HEAD')
    expect(expectShape(errorOutput, await res.json()).error.code).toBe('method_not_allowed')
  })

  it('answers 503 with Retry-After when MySQL is down', async () => {
    const broken = await createTestDeps({ DATABASE_URL: 'mysql://root@127.0.0.1:1/nowhere' })

    const res = await createGetApplicationApp(broken).request(`/applications/${'A'.repeat(32)}`)

    expect(res.status).toBe(503)
    expect(res.headers.get('retry-after')).toBe('1')
    expect(expectShape(errorOutput, await res.json()).error.code).toBe('unavailable')
    await broken.close()
  })

  it('answers 404 with the error shape for an unknown route', async () => {
    const res = await app.request('/nowhere')

    expect(res.status).toBe(404)
    expect(expectShape(errorOutput, await res.json()).error.code).toBe('not_found')
  })
})
