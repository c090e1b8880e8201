import { describe, expect, it } from 'vitest'
import { allRoutes } from '../../lib/api/routes.ts'
import { silentLogger } from '../../lib/logger.ts'
import { createDocsApp } from './app.ts'

describe('GET /openapi.json and /docs', () => {
  const app = createDocsApp({ logger: silentLogger })

  it('describes every route of the route table, with its body, success and error responses', async () => {
    const res = await app.request('/openapi.json')
    const document = (await res.json()) as {
      openapi: string
      paths: Record<string, Record<string, { responses: Record<string, unknown>; requestBody?: unknown }>>
    }

    expect(res.status).toBe(200)
    expect(document.openapi).toBe('3.1.0')
    for (const route of allRoutes) {
      const path = route.path.replace(/:([a-z]+)(\{[^}]+\})?/gi, '{$1}')
      const operation = document.paths[path]?.[route.method.toLowerCase()]
      expect(operation, `${route.method} ${path}`).toBeDefined()
      expect(Object.keys(operation!.responses).sort()).toEqual(
        [String(route.success.status), ...route.errors.map(String)].sort(),
      )
      expect(Boolean(operation!.requestBody)).toBe(Boolean(route.body))
    }
  })

  it('documents the request schemas the handlers validate with', async () => {
    const document = (await (await app.request('/openapi.json')).json()) as {
      paths: Record<string, Record<string, { requestBody: { content: Record<string, { schema: unknown }> } }>>
    }

    const schema =
      document.paths['/applications/{token}/chats/{chat}/messages']!.post!.requestBody.content[
        'application/json'
      ]!.schema

    expect(schema).toMatchObject({
      type: 'object',
      properties: { body: { type: 'string', minLength: 1, maxLength: 10_000 } },
      required: ['body'],
      additionalProperties: false,
    })
  })

  it('answers 405 with an Allow header for another method', async () => {
    const res = await app.request('/openapi.json', { method: 'POST' })

    expect(res.status).toBe(405)
    expect(res.headers.get('allow')).toBe('GET, HEAD')
  })

  it('serves a page that renders the description', async () => {
    const res = await app.request('/docs')

    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toContain('text/html')
    expect(await res.text()).toContain('data-url="/openapi.json"')
  })
})
