import { connect, createServer, type Server, type Socket } from 'node:net'
import { Client } from '@elastic/elasticsearch'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { initialIndexName } from '../lib/search/index-settings.ts'
import { prepareDatabase, testConfig } from './harness.ts'
import { eventually, freePort, type ServerProcess, startServerProcess, toEnv } from './processes.ts'

/** A TCP hop in front of the search engine that the test can take down and bring back on the same port. */
const startOutageSwitch = async (target: URL, port: number) => {
  const sockets = new Set<Socket>()
  let server: Server | undefined
  const up = () =>
    new Promise<void>((resolve, reject) => {
      server = createServer((client) => {
        const upstream = connect(Number(target.port), target.hostname)
        for (const socket of [client, upstream]) {
          sockets.add(socket)
          socket.on('close', () => sockets.delete(socket))
          socket.on('error', () => socket.destroy())
        }
        client.pipe(upstream).pipe(client)
        client.on('close', () => upstream.destroy())
        upstream.on('close', () => client.destroy())
      })
      server.once('error', reject)
      server.listen(port, '127.0.0.1', () => resolve())
    })
  const down = async () => {
    const closed = new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()))
    for (const socket of sockets) socket.destroy()
    await closed
    server = undefined
  }
  await up()
  return { url: `http://127.0.0.1:${port}`, up, down }
}

describe('search while Elasticsearch is down', () => {
  let server: ServerProcess
  let outage: Awaited<ReturnType<typeof startOutageSwitch>>
  let alias: string

  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${server.url}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    return {
      status: res.status,
      headers: res.headers,
      json: (await res.json()) as Record<string, unknown> & { data?: Array<{ number: number }> },
    }
  }
  const searchFor = (token: string, q: string) =>
    api('GET', `/applications/${token}/chats/1/messages/search?q=${encodeURIComponent(q)}`)
  const numbersFor = async (token: string, q: string) => {
    const res = await searchFor(token, q)
    return res.status === 200
      ? (res.json.data ?? []).map((hit) => hit.number).sort((a, b) => a - b)
      : undefined
  }

  beforeAll(async () => {
    await prepareDatabase()
    outage = await startOutageSwitch(new URL(inject('elasticsearchUrl')), await freePort())
    const config = testConfig({ ELASTICSEARCH_URL: outage.url, LOG_LEVEL: 'info' })
    alias = config.SEARCH_INDEX
    server = await startServerProcess(toEnv(config))
  })
  afterAll(async () => {
    await server?.stop()
    await outage?.up().catch(() => undefined)
    const client = new Client({ node: inject('elasticsearchUrl') })
    await client.indices.delete({ index: initialIndexName(alias) }, { ignore: [404] })
    await client.close()
    await outage?.down()
  })

  it('answers 503 quickly, keeps persisting, and indexes everything once the engine is back, unattended', {
    timeout: 120_000,
  }, async () => {
    const { json: application } = await api('POST', '/applications', { name: 'outage' })
    const token = application.token as string
    await api('POST', `/applications/${token}/chats`)
    await api('POST', `/applications/${token}/chats/1/messages`, { body: 'written before the outage' })
    await eventually(async () => (await numbersFor(token, 'before the outage'))?.length === 1, {
      what: 'the first message indexed',
    })

    await outage.down()
    const started = performance.now()
    const unavailable = await searchFor(token, 'outage')
    const elapsedMs = performance.now() - started
    const ready = await api('GET', '/ready')
    const accepted = []
    for (const body of ['during the outage: one', 'during the outage: two', 'during the outage: three']) {
      accepted.push(await api('POST', `/applications/${token}/chats/1/messages`, { body }))
    }
    const edited = await api('PATCH', `/applications/${token}/chats/1/messages/1`, {
      body: 'rewritten while down',
    })
    await eventually(
      async () => {
        const res = await api('GET', `/applications/${token}/chats/1/messages/1`)
        const last = await api('GET', `/applications/${token}/chats/1/messages/4`)
        return res.json.body === 'rewritten while down' && last.status === 200
      },
      { what: 'messages persisted in MySQL during the outage', timeoutMs: 30_000 },
    )
    const stillDown = await searchFor(token, 'outage')

    expect(unavailable.status).toBe(503)
    expect(unavailable.json).toMatchObject({ error: { code: 'unavailable' } })
    expect(unavailable.headers.get('retry-after')).toMatch(/^\d+$/)
    expect(elapsedMs).toBeLessThan(3_000)
    expect(ready.status).toBe(503)
    expect(JSON.stringify(ready.json)).toContain('search')
    expect(accepted.map((res) => res.status)).toEqual([202, 202, 202])
    expect(edited.status).toBe(202)
    expect(stillDown.status).toBe(503)

    await outage.up()
    await eventually(async () => (await numbersFor(token, 'during the outage'))?.length === 3, {
      what: 'the messages of the outage searchable',
      timeoutMs: 60_000,
    })

    expect(await numbersFor(token, 'during the outage')).toEqual([2, 3, 4])
    expect(await numbersFor(token, 'rewritten while')).toEqual([1])
    expect(await numbersFor(token, 'before the outage')).toEqual([])
    expect((await api('GET', '/ready')).status).toBe(200)
    // The server's scheduled retry job did it, not a redelivery: the consumers never failed a batch.
    expect(server.output()).toContain('pending search indexing retried')
    expect(server.output()).not.toContain('job failed')
  })
})
