import { randomBytes } from 'node:crypto'
import mysql from 'mysql2/promise'
import type { TestProject } from 'vitest/node'
import { serverUrl } from './harness-url.ts'

const dropRunDatabases = async (runId: string) => {
  const connection = await mysql.createConnection(serverUrl())
  try {
    const [rows] = await connection.query('SHOW DATABASES LIKE ?', [`chat_test_${runId}_%`])
    for (const row of rows as Array<Record<string, string>>) {
      await connection.query(`DROP DATABASE IF EXISTS \`${Object.values(row)[0]}\``)
    }
  } finally {
    await connection.end()
  }
}

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

  // Databases are named after the run, so that two runs on one machine never share rows.
  const runId = randomBytes(3).toString('hex')
  project.provide('runId', runId)
  stops.push(() => dropRunDatabases(runId))

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
    const { startSearchEngine } = await import('../scripts/search-engine/start.ts')
    const engine = await startSearchEngine()
    elasticsearchUrl = engine.url
    stops.push(() => engine.stop())
  }
  project.provide('elasticsearchUrl', elasticsearchUrl)

  return async () => {
    for (const stop of stops.reverse()) await stop()
  }
}
