import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPersistMessagesConsumer } from '../functions/persist-messages/consumer.ts'
import { sqsEvent } from '../tests/factories.ts'
import { createTestDeps } from '../tests/harness.ts'
import { createApplication } from './applications.ts'
import type { Deps } from './deps.ts'
import type { MessageJob } from './jobs.ts'
import { createLogger } from './logger.ts'

describe('the consumers’ log lines', () => {
  let deps: Deps
  let lines: Array<Record<string, unknown>>
  let consume: ReturnType<typeof createPersistMessagesConsumer>
  let base: { token: string; app: number }

  beforeAll(async () => {
    deps = await createTestDeps()
    const logger = createLogger('debug', (line) => lines.push(JSON.parse(line)))
    consume = createPersistMessagesConsumer({ ...deps, logger })
    const { token } = await createApplication(deps, { name: 'logs' })
    base = { token, app: Number(await deps.redis.get(`a:{${token}}`)) }
  })
  afterAll(() => deps.close())

  const job = (message: number, rid: string | undefined, fields: Partial<MessageJob> = {}): MessageJob => ({
    op: 'create',
    ...base,
    chat: 1,
    message,
    body: `message ${message}`,
    version: (Date.now() - 2_000) * 1000 + message,
    ...(rid && { rid }),
    ...fields,
  })
  const linesWith = (msg: string) => lines.filter((line) => line.msg === msg)

  it('logs each persisted job at debug with its request id, and the batch at info with counts and lag', async () => {
    lines = []

    await consume(sqsEvent([job(1, 'req-a'), job(2, 'req-b')], job(3, undefined)))

    const persisted = linesWith('job persisted')
    expect(persisted.map((line) => [line.level, line.queue, line.message, line.request_id])).toEqual([
      ['debug', 'messages', 1, 'req-a'],
      ['debug', 'messages', 2, 'req-b'],
      ['debug', 'messages', 3, undefined], // a job queued before jobs carried their request id
    ])
    for (const line of linesWith('job persisted')) expect(line.lag_ms).toBeGreaterThanOrEqual(2_000)
    expect(linesWith('batch persisted')).toEqual([
      expect.objectContaining({ level: 'info', queue: 'messages', records: 2, failed_records: 0, jobs: 3 }),
    ])
    expect(linesWith('batch persisted')[0]!.lag_ms_max).toBeGreaterThanOrEqual(2_000)
    expect(JSON.stringify(lines)).not.toContain(base.token)
  })

  it('names the request id of every job that failed, packed or not', async () => {
    // Its number is taken by another create: this job goes to the dead-letter queue, loudly.
    await consume(sqsEvent([job(10, 'req-first')]))
    lines = []
    const collision = job(10, 'req-second', { version: Date.now() * 1000 + 99 })
    const invalid = [job(13, 'req-valid-job'), { ...job(14, 'req-invalid-job'), body: '' }]

    const alone = { body: JSON.stringify({ ...job(15, 'req-alone'), body: '' }), messageId: 'alone' }

    const result = await consume(
      sqsEvent([collision, job(11, 'req-packed-with-it')], job(12, 'req-fine'), invalid, alone),
    )

    // The failing jobs of a pack are split out (re-sent alone); the one alone fails its record.
    expect(result.batchItemFailures).toEqual([{ itemIdentifier: 'alone' }])
    const warnings = linesWith('job failed')
    expect(warnings.map((line) => line.request_id).sort()).toEqual([
      'req-alone',
      'req-invalid-job',
      'req-second',
    ])
    for (const line of warnings) expect(line.level).toBe('warn')
    expect(linesWith('number collision').flatMap((line) => line.request_ids as string[])).toContain(
      'req-second',
    )
    expect(linesWith('batch persisted')).toEqual([
      expect.objectContaining({ records: 4, failed_records: 1, jobs: 3 }),
    ])
  })
})
