import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Deps } from '../../lib/deps.ts'
import { useMetrics } from '../../lib/metrics.ts'
import { json } from '../../tests/factories.ts'
import { createTestDeps, drainQueues } from '../../tests/harness.ts'
import { createReconcileCountsJob } from '../reconcile-counts/job.ts'
import { createServerApp } from '../server.ts'
import { createMetricsApp } from './app.ts'

/** The value of one sample in a Prometheus text exposition, 0 when absent. */
const sample = (text: string, name: string, labels: Record<string, string> = {}) => {
  const wanted = Object.entries(labels).map(([key, value]) => `${key}="${value}"`)
  for (const line of text.split('\n')) {
    const match = line.match(/^([a-z_:][a-z0-9_:]*)(?:\{(.*)\})? (\S+)$/i)
    if (!match || match[1] !== name) continue
    const present = new Set(match[2]?.match(/[a-z_]+="(?:[^"\\]|\\.)*"/gi) ?? [])
    if (wanted.every((pair) => present.has(pair))) return Number(match[3])
  }
  return 0
}

describe('GET /metrics', () => {
  let deps: Deps
  let app: ReturnType<typeof createServerApp>
  const scrape = async () => {
    const res = await app.request('/metrics')
    expect(res.status).toBe(200)
    return res.text()
  }

  beforeAll(async () => {
    deps = await createTestDeps()
    app = createServerApp(deps)
  })
  afterAll(() => deps.close())

  it('counts requests by method, route pattern and status, never by the URL and its token', async () => {
    const before = await scrape()
    const { token } = (await (
      await app.request('/applications', json('POST', { name: 'metrics' }))
    ).json()) as {
      token: string
    }
    await app.request(`/applications/${token}/chats`, { method: 'POST' })
    for (const body of ['one', 'two'])
      await app.request(`/applications/${token}/chats/1/messages`, json('POST', { body }))
    await app.request(`/applications/${token}/chats/99`)

    const after = await scrape()

    const route = '/applications/:token/chats/:chat/messages'
    const created = { method: 'POST', route, status: '202' }
    expect(
      sample(after, 'chat_http_requests_total', created) -
        sample(before, 'chat_http_requests_total', created),
    ).toBe(2)
    const missing = { method: 'GET', route: '/applications/:token/chats/:chat', status: '404' }
    expect(
      sample(after, 'chat_http_requests_total', missing) -
        sample(before, 'chat_http_requests_total', missing),
    ).toBe(1)
    const timed = { method: 'POST', route, le: '+Inf' }
    expect(
      sample(after, 'chat_http_request_duration_seconds_bucket', timed) -
        sample(before, 'chat_http_request_duration_seconds_bucket', timed),
    ).toBe(2)
    expect(after).not.toContain(token)
  })

  it('counts jobs accepted by SQS and persisted by the consumers, with their lag', async () => {
    await drainQueues(deps)
    const before = await scrape()
    const { token } = (await (await app.request('/applications', json('POST', { name: 'jobs' }))).json()) as {
      token: string
    }
    await app.request(`/applications/${token}/chats`, { method: 'POST' })
    for (const body of ['a', 'b', 'c'])
      await app.request(`/applications/${token}/chats/1/messages`, json('POST', { body }))
    const accepted = await scrape()

    await drainQueues(deps)
    const after = await scrape()

    const messages = { queue: 'messages' }
    const delta = (text: string, name: string) =>
      sample(text, name, messages) - sample(before, name, messages)
    expect(delta(accepted, 'chat_jobs_accepted_total')).toBe(3)
    expect(delta(accepted, 'chat_jobs_persisted_total')).toBe(0)
    expect(delta(after, 'chat_jobs_persisted_total')).toBe(3)
    expect(delta(after, 'chat_job_persist_lag_seconds_count')).toBe(3)
    expect(delta(after, 'chat_job_persist_lag_seconds_sum')).toBeGreaterThan(0)
    expect(sample(after, 'chat_jobs_persisted_total', { queue: 'chats' })).toBeGreaterThanOrEqual(1)
  })

  it('counts reconciler runs by mode and outcome, and times searches', async () => {
    const { token } = (await (
      await app.request('/applications', json('POST', { name: 'search' }))
    ).json()) as {
      token: string
    }
    await app.request(`/applications/${token}/chats`, { method: 'POST' })
    await drainQueues(deps)
    const before = await scrape()

    await createReconcileCountsJob(deps)(new Date(), 'incremental')
    const searched = await app.request(`/applications/${token}/chats/1/messages/search?q=hello`)
    const after = await scrape()

    expect(searched.status).toBe(200)
    expect(
      sample(after, 'chat_search_duration_seconds_count') -
        sample(before, 'chat_search_duration_seconds_count'),
    ).toBe(1)
    const ok = { mode: 'incremental', outcome: 'ok' }
    expect(
      sample(after, 'chat_reconcile_runs_total', ok) - sample(before, 'chat_reconcile_runs_total', ok),
    ).toBe(1)
    const timed = { mode: 'incremental' }
    expect(
      sample(after, 'chat_reconcile_duration_seconds_count', timed) -
        sample(before, 'chat_reconcile_duration_seconds_count', timed),
    ).toBe(1)
  })

  it('shows the queue, dead-letter and index backlog as of the last background read, and the default Node metrics', async () => {
    await deps.backlog.current()

    const text = await scrape()

    for (const queue of ['chats', 'messages'])
      for (const state of ['visible', 'in_flight', 'dead_letter'])
        expect(text).toMatch(
          new RegExp(`^chat_queue_messages\\{queue="${queue}",state="${state}"\\} \\d+$`, 'm'),
        )
    expect(text).toMatch(/^chat_search_index_pending \d+$/m)
    expect(text).toMatch(/^chat_queue_buffer_jobs\{queue="messages"\} 0$/m)
    expect(text).toMatch(/^nodejs_eventloop_lag_seconds \d/m)
    expect(text).toContain('# TYPE chat_search_duration_seconds histogram')
  })

  it('answers 404 when metrics are off, and records nothing meanwhile', async () => {
    const off = createMetricsApp({ logger: deps.logger, config: { METRICS_ENABLED: false } })
    const before = await scrape()
    useMetrics('off')
    try {
      await app.request('/health')

      const res = await off.request('/metrics')

      expect(res.status).toBe(404)
    } finally {
      useMetrics('prometheus')
    }
    const health = { method: 'GET', route: '/health', status: '200' }
    expect(sample(await scrape(), 'chat_http_requests_total', health)).toBe(
      sample(before, 'chat_http_requests_total', health),
    )
  })
})
