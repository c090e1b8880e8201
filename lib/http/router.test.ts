import { UnsupportedPathError } from 'hono/router'
import { TrieRouter } from 'hono/router/trie-router'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createServerApp } from '../../functions/server.ts'
import { createTestDeps } from '../../tests/harness.ts'
import type { Deps } from '../deps.ts'
import { RouteListRouter } from './router.ts'

describe('the API router', () => {
  let deps: Deps
  let app: ReturnType<typeof createServerApp>

  beforeAll(async () => {
    deps = await createTestDeps()
    app = createServerApp(deps)
  })
  afterAll(() => deps.close())

  it("serves the server's root with the route list, not the trie", async () => {
    expect((await app.request('/health')).status).toBe(200)
    expect(app.router.name).toBe('SmartRouter + RouteListRouter')
  })

  it('matches what the TrieRouter matches, in the same order, with the same parameters', () => {
    const list = new RouteListRouter<number>()
    const trie = new TrieRouter<number>()
    for (const [index, route] of app.routes.entries()) {
      list.add(route.method, route.path, index)
      trie.add(route.method, route.path, index)
    }
    const application = '/applications/AbC-123_x'
    const paths = [
      '/health',
      '/health/',
      '/applications',
      '/applications/',
      application,
      `${application}/chats`,
      `${application}/chats/`,
      `${application}/chats/7`,
      `${application}/chats/seven`,
      `${application}/chats/7/messages`,
      `${application}/chats/7/messages/42`,
      `${application}/chats/7/messages/search`,
      `${application}/chats/7/messages/stream`,
      `${application}/chats/7/messages/4x2`,
      `${application}/chats/7/messages/42/extra`,
      '/applications/a%20b/chats/1',
      '/openapi.json',
      '/openapiXjson',
      '/nowhere',
    ]
    const normalize = (result: ReturnType<TrieRouter<number>['match']>) =>
      result[0].map(([handler, params]) => [handler, { ...params }])
    for (const method of ['GET', 'POST', 'PATCH', 'PUT', 'DELETE'])
      for (const path of paths) {
        expect([method, path, normalize(list.match(method, path))]).toEqual([
          method,
          path,
          normalize(trie.match(method, path)),
        ])
      }
  })

  it('refuses the path forms it does not handle, so that the next router takes the routes', () => {
    const router = new RouteListRouter<number>()
    for (const path of ['/a/:id?', '/a/*/b', '/a/b*', 'relative'])
      expect(() => router.add('GET', path, 1), path).toThrow(UnsupportedPathError)
  })
})
