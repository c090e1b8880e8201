import { randomBytes } from 'node:crypto'
import type { TestProject } from 'vitest/node'
import { serverUrl } from './harness-url.ts'
import { removeRunResources } from './run-resources.ts'

declare module 'vitest' {
  export interface ProvidedContext {
    runId: string
    sqsEndpoint: string
    elasticsearchUrl: string
  }
}

/**
 * Starts what this machine lacks, once per test run: the SQS emulator (fauxqs, in process) unless
 * SQS_ENDPOINT points at a real one (LocalStack in the compose test service), and the search
 * engine unless ELASTICSEARCH_URL points at a real Elasticsearch.
 */
export default async function setup(project: TestProject) {
  const stops: Array<() => Promise<void>> = []

  // Databases, keys, queues and indices are named after the run, so that two runs on one machine
  // never share them, and the teardown deletes exactly what this run created.
  const runId = randomBytes(3).toString('hex')
  project.provide('runId', runId)

  let sqsEndpoint = process.env.SQS_ENDPOINT
  if (!sqsEndpoint) {
    const { startFauxqs } = await import('fauxqs')
    const fauxqs = await startFauxqs({ port: 0, logger: false })
    sqsEndpoint = fauxqs.address
    stops.push(() => fauxqs.stop())
  }
  project.provide('sqsEndpoint', sqsEndpoint)

  let elasticsearchUrl = process.env.ELASTICSEARCH_URL
  if (!elasticsearchUrl) {
    const { startSearchEngine } = await import('./search-engine/engine.ts')
    const engine = await startSearchEngine()
    elasticsearchUrl = engine.url
    stops.push(() => engine.stop())
  }
  project.provide('elasticsearchUrl', elasticsearchUrl)

  // First thing in the teardown, while the emulators still run.
  const services = {
    mysqlUrl: serverUrl(),
    redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    sqsEndpoint,
    elasticsearchUrl,
  }
  stops.push(() => removeRunResources(runId, services))

  return async () => {
    const failures: unknown[] = []
    for (const stop of stops.reverse()) await stop().catch((error: unknown) => failures.push(error))
    if (failures.length > 0) throw new AggregateError(failures, 'the test run teardown failed')
  }
}
