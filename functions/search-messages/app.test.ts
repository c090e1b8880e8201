import { createServer } from 'node:http'
import { createServer as createTcpServer, type Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { errorOutput, searchPageOutput } from '../../lib/api/schemas.ts'
import { createApplication } from '../../lib/applications.ts'
import { createChat } from '../../lib/chats.ts'
import type { Deps } from '../../lib/deps.ts'
import { silentLogger } from '../../lib/logger.ts'
import { createMessage, updateMessage } from '../../lib/messages.ts'
import { createSearch } from '../../lib/search/client.ts'
import { initialIndexName } from '../../lib/search/index-settings.ts'
import { expectShape } from '../../tests/factories.ts'
import { createTestDeps, drainQueues, refreshSearch, workerDatabaseUrl } from '../../tests/harness.ts'
import { startTcpSwitch } from '../../tests/tcp-switch.ts'
import { createSearchMessagesApp } from './app.ts'

describe('GET /applications/:token/chats/:chat/messages/search', () => {
  let deps: Deps
  let app: ReturnType<typeof createSearchMessagesApp>
  let token: string
  let otherToken: string

  const searchPath = (q: string, { app = token, chat = 1, extra = '' } = {}) =>
    `/applications/${app}/chats/${chat}/messages/search?q=${encodeURIComponent(q)}${extra}`
  const hitsFor = async (q: string, options?: Parameters<typeof searchPath>[1]) => {
    const res = await app.request(searchPath(q, options))
    expect(res.status).toBe(200)
    return expectShape(searchPageOutput, await res.json())
  }
  const persist = async () => {
    await drainQueues(deps)
    await refreshSearch(deps)
  }

  beforeAll(async () => {
    deps = await createTestDeps()
    app = createSearchMessagesApp(deps)
    token = (await createApplication(deps, { name: 'search' })).token
    otherToken = (await createApplication(deps, { name: 'other search' })).token
    await createChat(deps, token, {})
    await createChat(deps, token, {})
    await createChat(deps, otherToken, {})
    for (const body of ['Hello World', 'Olá, Mundo! Café <com> leite', 'price: 5$ * 2 (approx) AND "more"']) {
      await createMessage(deps, token, 1, { body })
    }
    // The same texts elsewhere: another chat of the application, and a chat of another application.
    for (const body of ['Hello World', 'Olá, Mundo! Café <com> leite', 'price: 5$ * 2 (approx) AND "more"']) {
      await createMessage(deps, token, 2, { body })
      await createMessage(deps, otherToken, 1, { body })
    }
    await persist()
  })
  afterAll(async () => {
    await deps.search.client.indices.delete({ index: initialIndexName(deps.config.SEARCH_INDEX) })
    await deps.close()
  })

  it('finds a substring inside a word and across words, ignoring case and accents', async () => {
    const page = await hitsFor('LA, MUNDO! CAFE')

    expect(page).toEqual({
      data: [
        {
          number: 2,
          body: 'Olá, Mundo! Café <com> leite',
          created_at: expect.any(String),
          updated_at: expect.any(String),
          highlight: 'O<em>lá, Mundo! Café</em> &lt;com&gt; leite',
        },
      ],
      total: 1,
    })
  })

  it.each([
    ['one character', 'w', [1]],
    ['one accented character', 'Á', [2, 3]],
    ['two characters', 'ld', [1]],
    ['two characters across a space', 'o w', [1]],
    ['three characters', 'orl', [1]],
  ])('finds %s, in this chat only', async (_case, q, expected) => {
    const page = await hitsFor(q)

    expect(page.data.map((hit) => hit.number).sort()).toEqual(expected)
    expect(page.total).toBe(expected.length)
  })

  it.each([
    '*',
    '?',
    '"more"',
    '(approx)',
    '$ * 2',
    'AND',
    ':',
    '<com>',
    '\\',
    '/',
    'OR',
    '~',
    '^',
    '[',
    '{}',
  ])('treats %j as plain text', async (q) => {
    const page = await hitsFor(q)

    expect(page.data.every((hit) => hit.body.toLowerCase().includes(q.toLowerCase()))).toBe(true)
  })

  it('never returns messages of another chat or application', async () => {
    for (const q of ['h', 'll', 'hello', 'Hello World']) {
      const page = await hitsFor(q)
      const other = await hitsFor(q, { app: otherToken })

      expect(page.data.map((hit) => hit.number)).toEqual([1])
      expect(other.data.map((hit) => hit.number)).toEqual([1])
    }
  })

  it.each(['%', '%FF', '%ED%A0%80', '%00', '%F0%9F%98%80', '%E2%80%AE', 'a%2Bb'])(
    'answers 200, never 500, for the raw query string q=%s',
    async (raw) => {
      const res = await app.request(`/applications/${token}/chats/1/messages/search?q=${raw}`)

      expect(res.status).toBe(200)
      expectShape(searchPageOutput, await res.json())
    },
  )

  it('trims q', async () => {
    expect((await hitsFor('  world \t')).data.map((hit) => hit.number)).toEqual([1])
  })

  it('pages with limit and offset', async () => {
    const first = await hitsFor('o', { extra: '&limit=1' })
    const second = await hitsFor('o', { extra: '&limit=1&offset=1' })

    expect(first.total).toBe(3)
    expect(first.data).toHaveLength(1)
    expect(second.data).toHaveLength(1)
    expect(second.data[0]!.number).not.toBe(first.data[0]!.number)
  })

  it('finds the new text of an updated message, and no longer the old one', async () => {
    const number = await createMessage(deps, token, 1, { body: 'before the edit' })
    await persist()

    await updateMessage(deps, token, 1, number, { body: 'after the change' })
    await persist()

    expect((await hitsFor('after the ch')).data.map((hit) => hit.number)).toEqual([number])
    expect((await hitsFor('before')).data).toEqual([])
  })

  it.each([
    ['q is missing', ''],
    ['q is empty', '?q='],
    ['q is only whitespace', '?q=%20%20'],
    ['q is over 256 characters', `?q=${'a'.repeat(257)}`],
  ])('answers 422 when %s', async (_case, query) => {
    const res = await app.request(`/applications/${token}/chats/1/messages/search${query}`)

    expect(res.status).toBe(422)
    expect(expectShape(errorOutput, await res.json()).error.code).toBe('validation_failed')
  })

  it.each([
    ['limit=0', '&limit=0'],
    ['limit=101', '&limit=101'],
    ['limit=abc', '&limit=abc'],
    ['offset=-1', '&offset=-1'],
    ['offset=10001', '&offset=10001'],
  ])('answers 400 for %s', async (_case, extra) => {
    const res = await app.request(searchPath('hello', { extra }))

    expect(res.status).toBe(400)
    expect(expectShape(errorOutput, await res.json()).error.code).toBe('invalid_parameter')
  })

  it('accepts the largest offset and limit', async () => {
    expect(await hitsFor('hello', { extra: '&limit=100&offset=10000' })).toEqual({ data: [], total: 1 })
  })

  it.each([
    ['an unknown application', () => searchPath('hello', { app: 'V'.repeat(32) })],
    ['a malformed token', () => searchPath('hello', { app: 'nope' })],
    ['an unknown chat', () => searchPath('hello', { chat: 99 })],
    ['a chat number of zero', () => searchPath('hello', { chat: 0 })],
  ])('answers 404 for %s', async (_case, path) => {
    const res = await app.request(path())

    expect(res.status).toBe(404)
    expect(expectShape(errorOutput, await res.json()).error.code).toBe('not_found')
  })

  it('asks MySQL for a chat once: a chat it found is searched with MySQL unreachable, a chat it did not find is asked for again', async () => {
    const network = await startTcpSwitch(new URL(`tcp://${new URL(workerDatabaseUrl()).host}`))
    const through = new URL(workerDatabaseUrl())
    through.host = new URL(network.url).host
    const server = await createTestDeps({
      DATABASE_URL: through.toString(),
      DATABASE_QUERY_TIMEOUT_MS: '1000',
    })
    try {
      // This file's index, the database through the switch.
      const api = createSearchMessagesApp({ ...deps, db: server.db })
      const search = (chat: number) => api.request(searchPath('hello', { chat }))
      const found = await search(1)
      const notYet = await search(3)
      await createChat(deps, token, {})
      await drainQueues(deps)
      const foundLater = await search(3)

      network.set('blackhole')
      const known = await search(1)
      const neverAsked = await search(2)
      network.set('pass')

      expect([found.status, notYet.status, foundLater.status]).toEqual([200, 404, 200])
      expect(known.status).toBe(200)
      expect(expectShape(searchPageOutput, await known.json()).data.map((hit) => hit.number)).toEqual([1])
      expect(neverAsked.status).toBe(503)
    } finally {
      await server.close()
      await network.close()
    }
  })

  it('answers 503 with Retry-After, quickly, when the search engine is down', async () => {
    const dead = createSearch(
      { ...deps.config, ELASTICSEARCH_URL: 'http://127.0.0.1:1' },
      { logger: silentLogger },
    )
    const deadApp = createSearchMessagesApp({ ...deps, search: dead })
    const started = performance.now()

    const res = await deadApp.request(searchPath('hello'))

    expect(performance.now() - started).toBeLessThan(3_000)
    expect(res.status).toBe(503)
    expect(res.headers.get('retry-after')).toMatch(/^\d+$/)
    expect(expectShape(errorOutput, await res.json()).error.code).toBe('unavailable')
    await dead.close()
  })

  const searchThrough = async (listen: (port: number) => Promise<() => Promise<void>>) => {
    const port = await new Promise<number>((resolve) => {
      const probe = createTcpServer().listen(0, '127.0.0.1', () => {
        const address = probe.address()
        probe.close(() => resolve(typeof address === 'object' && address ? address.port : 0))
      })
    })
    const stop = await listen(port)
    const search = createSearch(
      { ...deps.config, ELASTICSEARCH_URL: `http://127.0.0.1:${port}` },
      { logger: silentLogger },
    )
    const started = performance.now()
    const res = await createSearchMessagesApp({ ...deps, search }).request(searchPath('hello'))
    const ms = performance.now() - started
    await search.close()
    await stop()
    return { res, ms, body: expectShape(errorOutput, await res.json()) }
  }

  it.each([
    [429, 'es_rejected_execution_exception'],
    [503, 'cluster_block_exception'],
  ])('answers 503 with Retry-After when the engine answers %i (%s)', async (status, type) => {
    const { res, body } = await searchThrough(async (port) => {
      const server = createServer((_req, response) => {
        response.writeHead(status, {
          'content-type': 'application/json',
          'x-elastic-product': 'Elasticsearch',
        })
        response.end(JSON.stringify({ error: { type, reason: 'refused for the test' }, status }))
      })
      await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
      return () => new Promise<void>((resolve) => server.close(() => resolve()))
    })

    expect(res.status).toBe(503)
    expect(res.headers.get('retry-after')).toMatch(/^[1-9]\d*$/)
    expect(body.error.code).toBe('unavailable')
  })

  it('answers 503 within its request timeout when the engine accepts connections and never answers', async () => {
    const { res, ms } = await searchThrough(async (port) => {
      const held = new Set<Socket>()
      const server = createTcpServer((socket) => held.add(socket))
      await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
      return () => {
        for (const socket of held) socket.destroy()
        return new Promise<void>((resolve) => server.close(() => resolve()))
      }
    })

    expect(res.status).toBe(503)
    expect(ms).toBeLessThan(5_000)
  })
})
