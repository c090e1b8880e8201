import { readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { prepareDatabase, testConfig } from './harness.ts'
import { eventually, type ServerProcess, startServerProcess, toEnv } from './processes.ts'
import { startTcpSwitch } from './tcp-switch.ts'

const MAX_JOBS_IN_FLIGHT = 20

interface Answer {
  status: number | 'no answer'
  ms: number
  retryAfter: string | null
  body: {
    number?: number
    token?: string
    error?: { code: string; message: string; details: Array<{ field: string }> }
  }
}

/** Resident memory of a process, in MiB. */
const rssMiB = (pid: number) =>
  Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024

describe('message creation while SQS accepts connections and never answers', () => {
  let server: ServerProcess
  let sqs: Awaited<ReturnType<typeof startTcpSwitch>>
  let token: string

  const call = async (
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<Answer> => {
    const started = performance.now()
    try {
      const res = await fetch(`${server.url}${path}`, {
        method,
        headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(10_000),
      })
      return {
        status: res.status,
        ms: performance.now() - started,
        retryAfter: res.headers.get('retry-after'),
        body: (await res.json()) as Answer['body'],
      }
    } catch {
      return {
        status: 'no answer',
        ms: performance.now() - started,
        retryAfter: null,
        body: {},
      }
    }
  }
  const createMessages = (count: number, prefix: string) =>
    Promise.all(
      Array.from({ length: count }, (_, i) =>
        call('POST', `/applications/${token}/chats/1/messages`, { body: `${prefix} ${i}` }),
      ),
    )
  const persistedBodies = async () => {
    const bodies = new Map<number, string>()
    for (let after = 0; ; ) {
      const res = await fetch(`${server.url}/applications/${token}/chats/1/messages?limit=100&after=${after}`)
      // Not a page yet (the chat itself not persisted, say): nothing to count; `eventually` asks again.
      if (res.status !== 200) return bodies
      const page = (await res.json()) as {
        data: Array<{ number: number; body: string }>
        next_after: number | null
      }
      for (const message of page.data) bodies.set(message.number, message.body)
      if (page.next_after === null) return bodies
      after = page.next_after
    }
  }

  beforeAll(async () => {
    await prepareDatabase()
    sqs = await startTcpSwitch(new URL(inject('sqsEndpoint')))
    const config = testConfig({
      SQS_ENDPOINT: sqs.url,
      SQS_MAX_JOBS_IN_FLIGHT: String(MAX_JOBS_IN_FLIGHT),
      WRITE_RATE_LIMIT_PER_S: '0',
      LOG_LEVEL: 'warn',
    })
    server = await startServerProcess(toEnv(config))
    token = (await call('POST', '/applications', { name: 'sqs outage' })).body.token as string
    await call('POST', `/applications/${token}/chats`)
    // The chat's own job persisted before any outage starts: once the pollers sit behind a black
    // hole, it could wait out their backoff, and the messages' list answer 404 meanwhile.
    await eventually(async () => (await call('GET', `/applications/${token}/chats/1`)).status === 200, {
      what: 'the chat persisted',
      timeoutMs: 30_000,
    })
  })
  afterAll(async () => {
    await server?.stop()
    await sqs?.close()
  })

  it('answers every create 503 within 5 s, sheds past the buffer bound at once, stays flat, and recovers unattended', {
    timeout: 60_000,
  }, async () => {
    sqs.set('blackhole')
    const rssBefore = rssMiB(server.child.pid!)
    const during = await createMessages(50, 'black hole')
    const ready = await call('GET', '/ready')
    const burst = await createMessages(300, 'burst')
    const rssAfter = rssMiB(server.child.pid!)
    const heldConnections = sqs.openConnections

    sqs.set('pass')
    // Within the bound: with SQS healthy, 20 concurrent creates fit the buffer.
    const healed = await createMessages(MAX_JOBS_IN_FLIGHT, 'healed')

    const shed = during.filter((answer) => /nothing was created/.test(answer.body.error?.message ?? ''))
    const waited = during.filter((answer) => /may have happened/.test(answer.body.error?.message ?? ''))
    const timings = JSON.stringify(during.map((answer) => Math.round(answer.ms)))
    expect(during.map((answer) => answer.status)).toEqual(Array(50).fill(503))
    expect(Math.max(...during.map((answer) => answer.ms)), timings).toBeLessThan(5_000)
    expect(during.every((answer) => /^[1-9]\d*$/.test(answer.retryAfter ?? ''))).toBe(true)
    expect(shed.length + waited.length).toBe(50)
    expect(waited[0]!.body.error!.message).toMatch(
      /may have happened.*same Idempotency-Key gets the same number/,
    )
    // Shed at once, while the first jobs wait out their deadline.
    expect(shed.length, timings).toBeGreaterThan(0)
    expect(Math.max(...shed.map((answer) => answer.ms)), timings).toBeLessThan(
      Math.min(...waited.map((answer) => answer.ms)),
    )
    expect(ready.status).toBe(503)
    expect(ready.body.error!.details.map((detail) => detail.field)).toEqual(['sqs'])
    expect(new Set(burst.map((answer) => answer.status))).toEqual(new Set([503]))
    expect(Math.max(...burst.map((answer) => answer.ms))).toBeLessThan(5_000)
    expect(rssAfter - rssBefore).toBeLessThan(64)
    expect(heldConnections).toBeLessThan(20)
    expect(
      healed.map((answer) => answer.status),
      JSON.stringify(healed.filter((a) => a.status !== 202)),
    ).toEqual(Array(MAX_JOBS_IN_FLIGHT).fill(202))
    const accepted = healed.map((answer) => answer.body.number!)
    await eventually(
      async () => {
        const bodies = await persistedBodies()
        return accepted.every((number) => bodies.has(number))
      },
      { what: 'every 202 persisted', timeoutMs: 30_000 },
    )
  })

  it('says a 503 whose batch SQS may have taken may have created the message, and a retry with the same Idempotency-Key gets the same number, once', {
    timeout: 60_000,
  }, async () => {
    const headers = { 'Idempotency-Key': 'answer-lost' }
    const send = () =>
      call('POST', `/applications/${token}/chats/1/messages`, { body: 'answer lost' }, headers)
    sqs.set('swallow')

    const first = await send()
    sqs.set('pass')
    const retry = await send()

    expect(first.status).toBe(503)
    expect(first.ms).toBeLessThan(5_000)
    expect(first.body.error!.message).toMatch(/may have happened.*same Idempotency-Key gets the same number/)
    expect(retry.status).toBe(202)
    await eventually(async () => (await persistedBodies()).get(retry.body.number!) === 'answer lost', {
      what: 'the message persisted',
      timeoutMs: 30_000,
    })
    const copies = [...(await persistedBodies()).values()].filter((body) => body === 'answer lost')
    expect(copies).toHaveLength(1)
  })
})
