import { describe, expect, it } from 'vitest'
import { createEmfSink, EMF_NAMESPACE } from './metrics.ts'

// On Lambda the counters leave as CloudWatch Embedded Metric Format lines: CloudWatch Logs turns
// each line into metrics only if its directives name fields that the line holds.
const directivesHold = (line: Record<string, unknown>) => {
  const aws = line._aws as {
    Timestamp: number
    CloudWatchMetrics: Array<{ Namespace: string; Dimensions: string[][]; Metrics: Array<{ Name: string }> }>
  }
  expect(aws.Timestamp).toBe(1_700_000_000_000)
  for (const directive of aws.CloudWatchMetrics) {
    expect(directive.Namespace).toBe(EMF_NAMESPACE)
    for (const dimension of directive.Dimensions.flat())
      expect(typeof line[dimension], dimension).toBe('string')
    for (const { Name } of directive.Metrics) expect(line[Name], Name).toBeDefined()
  }
}

describe('the CloudWatch Embedded Metric Format sink', () => {
  const capture = () => {
    const lines: Array<Record<string, unknown>> = []
    const sink = createEmfSink(
      (line) => lines.push(JSON.parse(line)),
      () => 1_700_000_000_000,
    )
    return { lines, sink }
  }

  it('writes one line per request, by route pattern, with its count and duration in seconds', () => {
    const { lines, sink } = capture()

    sink.request('POST', '/applications/:token/chats/:chat{[0-9]+}/messages', 202, 12.5)

    expect(lines).toHaveLength(1)
    directivesHold(lines[0]!)
    expect(lines[0]).toMatchObject({
      method: 'POST',
      route: '/applications/:token/chats/:chat/messages',
      status: '202',
      http_requests_total: 1,
      http_request_duration_seconds: 0.0125,
    })
  })

  it('writes persisted jobs with their lags as values, at most 100 to a line', () => {
    const { lines, sink } = capture()

    sink.jobsPersisted(
      'messages',
      Array.from({ length: 250 }, (_, i) => i / 10),
    )

    expect(lines.map((line) => line.jobs_persisted_total)).toEqual([100, 100, 50])
    for (const line of lines) directivesHold(line)
    expect((lines[2]!.job_persist_lag_seconds as number[]).at(-1)).toBe(24.9)
  })

  it('writes accepted jobs, search and reconcile timings the same way', () => {
    const { lines, sink } = capture()

    sink.jobsAccepted('chats', 25)
    sink.search(40)
    sink.reconcile('full', 'ok', 1500)

    for (const line of lines) directivesHold(line)
    expect(lines).toEqual([
      expect.objectContaining({ queue: 'chats', jobs_accepted_total: 25 }),
      expect.objectContaining({ search_duration_seconds: 0.04 }),
      expect.objectContaining({
        mode: 'full',
        outcome: 'ok',
        reconcile_runs_total: 1,
        reconcile_duration_seconds: 1.5,
      }),
    ])
  })
})
