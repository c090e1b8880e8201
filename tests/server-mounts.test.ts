import { existsSync, readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { Hono } from 'hono'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createServerApp } from '../functions/server.ts'
import { allRoutes } from '../lib/api/routes.ts'
import type { Deps } from '../lib/deps.ts'
import { createTestDeps } from './harness.ts'

const FUNCTIONS_DIR = fileURLToPath(new URL('../functions/', import.meta.url))

/** Every functions/<name>/app.ts: the HTTP functions that one server mounts. */
const httpFunctions = readdirSync(FUNCTIONS_DIR, { withFileTypes: true })
  .filter((entry) => entry.isDirectory() && existsSync(`${FUNCTIONS_DIR}${entry.name}/app.ts`))
  .map((entry) => entry.name)
  .sort()

/** The handlers an app registers, as `METHOD path`; middleware (`ALL`) left out. */
const endpointsOf = (app: Hono<never>) =>
  new Set(
    app.routes.filter((route) => route.method !== 'ALL').map((route) => `${route.method} ${route.path}`),
  )

describe('functions/server.ts', () => {
  let deps: Deps
  let served: Set<string>

  beforeAll(async () => {
    deps = await createTestDeps()
    served = endpointsOf(createServerApp(deps) as unknown as Hono<never>)
  })

  afterAll(() => deps.close())

  it('finds the HTTP functions', () => {
    expect(httpFunctions.length).toBeGreaterThan(10)
  })

  it.each(httpFunctions)('mounts every route of functions/%s', async (name) => {
    const module = (await import(`${FUNCTIONS_DIR}${name}/app.ts`)) as Record<string, unknown>
    const factories = Object.entries(module).filter(
      ([exported, value]) => /^create\w+App$/.test(exported) && typeof value === 'function',
    )
    expect(factories, `functions/${name}/app.ts exports one create…App factory`).toHaveLength(1)
    const app = (factories[0]![1] as (deps: Deps) => Hono<never>)(deps)

    const own = [...endpointsOf(app)]

    expect(own.length).toBeGreaterThan(0)
    expect(own.filter((endpoint) => !served.has(endpoint))).toEqual([])
  })

  it('serves every route of the route table', () => {
    const missing = allRoutes
      .map((route) => `${route.method} ${route.path}`)
      .filter((endpoint) => !served.has(endpoint))

    expect(missing).toEqual([])
  })
})
