import { request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import { serve } from '@hono/node-server'
import * as v from 'valibot'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { expectShape } from '../../tests/factories.ts'
import { errorOutput } from '../api/schemas.ts'
import { createLogger } from '../logger.ts'
import { createApi, MAX_BODY_BYTES, mountApis, responseHeader } from './api.ts'
import { jsonBody } from './validate.ts'

const TOKEN = 'a'.repeat(32)
const lines: string[] = []
const logger = createLogger('info', (line) => lines.push(line))
const accessLines = () =>
  lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((entry) => entry.msg === 'request')

// Two function apps, as the server composes them: a body-reading POST and a streaming GET.
const echoApp = () =>
  createApi(logger).post('/applications/:token/echo', jsonBody(v.object({ body: v.string() })), (c) => {
    const { length } = c.req.valid('json').body
    responseHeader(c, 'Location', `/echoes/${length}`)
    return c.json({ length }, 202)
  })
let releaseStream: () => void = () => undefined
const streamApp = () =>
  createApi(logger).get('/stream', () => {
    const encoder = new TextEncoder()
    const stream = new ReadableStream<Uint8Array>({
      start: (controller) => {
        controller.enqueue(encoder.encode('first\n'))
        releaseStream = () => {
          controller.enqueue(encoder.encode('last\n'))
          controller.close()
        }
      },
    })
    return new Response(stream, { headers: { 'content-type': 'text/plain' } })
  })

/** A raw HTTP request, so that the body can be sent chunked, without Content-Length. */
const send = (
  port: number,
  { method = 'POST', path = `/applications/${TOKEN}/echo`, headers = {}, chunks = [] as string[] } = {},
) =>
  new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      let body = ''
      res.on('data', (chunk) => {
        body += chunk
      })
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }))
    })
    req.on('error', reject)
    for (const chunk of chunks) req.write(chunk)
    req.end()
  })

describe('the shared middleware on a server root', () => {
  let server: ReturnType<typeof serve>
  let port: number

  beforeAll(async () => {
    const app = mountApis(createApi(logger), [echoApp(), streamApp()])
    server = await new Promise((resolve) => {
      const instance = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(instance))
    })
    port = (server.address() as AddressInfo).port
  })
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())))
  beforeEach(() => {
    lines.length = 0
  })

  it('writes one access log line per request, with the route pattern and never the token', async () => {
    const body = JSON.stringify({ body: 'hi' })
    const res = await send(port, {
      headers: { 'content-type': 'application/json', 'content-length': String(body.length) },
      chunks: [body],
    })

    expect(res.status).toBe(202)
    expect(res.headers.location).toBe('/echoes/2')
    expect(res.headers['content-type']).toBe('application/json')
    expect(accessLines()).toEqual([
      expect.objectContaining({
        method: 'POST',
        route: '/applications/:token/echo',
        status: 202,
        request_id: res.headers['x-request-id'],
      }),
    ])
    expect(lines.join('\n')).not.toContain(TOKEN)
  })

  it('echoes a well-formed X-Request-Id and replaces a malformed one', async () => {
    const kept = await send(port, { method: 'GET', path: '/nowhere', headers: { 'x-request-id': 'abc-123' } })
    const replaced = await send(port, { method: 'GET', path: '/nowhere', headers: { 'x-request-id': 'a b' } })

    expect(kept.headers['x-request-id']).toBe('abc-123')
    expect(replaced.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/)
  })

  it('answers 413 for a declared Content-Length over 64 KiB', async () => {
    const res = await send(port, {
      headers: { 'content-type': 'application/json', 'content-length': String(MAX_BODY_BYTES + 1) },
      chunks: ['{'],
    })

    expect(res.status).toBe(413)
    expect(expectShape(errorOutput, JSON.parse(res.body)).error.code).toBe('payload_too_large')
  })

  it('answers 413 for a chunked body over 64 KiB, and reads a chunked body under it', async () => {
    const big = JSON.stringify({ body: 'x'.repeat(MAX_BODY_BYTES) })
    const over = await send(port, {
      headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
      chunks: [big.slice(0, 30_000), big.slice(30_000)],
    })
    const under = await send(port, {
      headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
      chunks: ['{"body":', '"hello"}'],
    })

    expect(over.status).toBe(413)
    expect(expectShape(errorOutput, JSON.parse(over.body)).error.code).toBe('payload_too_large')
    expect(under.status).toBe(202)
    expect(JSON.parse(under.body)).toEqual({ length: 5 })
  })

  it('renders 404 and 405 with the contract error shape', async () => {
    const missing = await send(port, { method: 'GET', path: '/nowhere' })
    const wrongMethod = await send(port, { method: 'GET', path: `/applications/${TOKEN}` })

    expect(missing.status).toBe(404)
    expect(expectShape(errorOutput, JSON.parse(missing.body)).error.code).toBe('not_found')
    expect(wrongMethod.status).toBe(405)
    expect(wrongMethod.headers.allow).toContain('PATCH')
  })

  it('answers 404, not 405, for a path that only looks like a route', async () => {
    // `/openapi.json` is a route; its dot is a literal dot, not any character.
    const lookalike = await send(port, { method: 'POST', path: '/openapiXjson' })

    expect(lookalike.status).toBe(404)
    expect(lookalike.headers.allow).toBeUndefined()
  })

  it('passes a streaming response through without buffering it', async () => {
    const firstChunk = await new Promise<string>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, path: '/stream', agent: false }, (res) => {
        expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/)
        res.once('data', (chunk) => {
          resolve(String(chunk))
          releaseStream()
          res.resume()
        })
      })
      req.on('error', reject)
      req.end()
    })

    expect(firstChunk).toBe('first\n')
    expect(accessLines()).toEqual([expect.objectContaining({ route: '/stream', status: 200 })])
  })
})

describe('a function app on its own (Lambda, app.request)', () => {
  it('has the same request id, body limit, access log and error handling', async () => {
    lines.length = 0
    const app = echoApp()

    const ok = await app.request(`/applications/${TOKEN}/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'standalone-1' },
      body: JSON.stringify({ body: 'hey' }),
    })
    const tooLarge = await app.request(`/applications/${TOKEN}/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ body: 'x'.repeat(MAX_BODY_BYTES) }),
    })
    const wrongMethod = await app.request(`/applications/${TOKEN}/echo`, { method: 'GET' })

    expect(ok.status).toBe(202)
    expect(ok.headers.get('x-request-id')).toBe('standalone-1')
    expect(ok.headers.get('location')).toBe('/echoes/3')
    expect(tooLarge.status).toBe(413)
    expect(wrongMethod.status).toBe(404)
    expect(accessLines().map((entry) => entry.status)).toEqual([202, 413, 404])
  })
})
