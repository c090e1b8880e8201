import { randomBytes } from 'node:crypto'
import { ListQueuesCommand } from '@aws-sdk/client-sqs'
import { Redis } from 'ioredis'
import mysql from 'mysql2/promise'
import { describe, expect, inject, it } from 'vitest'
import { createDeps } from '../lib/deps.ts'
import { silentLogger } from '../lib/logger.ts'
import { testConfig } from './harness.ts'
import { serverUrl } from './harness-url.ts'
import { removeRunResources, runDatabasePrefix, runNames } from './run-resources.ts'

describe('the test run teardown', () => {
  it("deletes the run's databases, Redis keys, queues with their dead-letter queues, and indices", async () => {
    const runId = `x${randomBytes(3).toString('hex')}`
    const services = {
      mysqlUrl: serverUrl(),
      redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
      sqsEndpoint: inject('sqsEndpoint'),
      elasticsearchUrl: inject('elasticsearchUrl'),
    }
    const redis = new Redis(services.redisUrl)
    const admin = await mysql.createConnection(services.mysqlUrl)
    const deps = createDeps(testConfig(runNames(runId, 'w9abc')), { logger: silentLogger })
    const otherRun = createDeps(testConfig(), { logger: silentLogger })
    try {
      await admin.query(`CREATE DATABASE \`${runDatabasePrefix(runId)}w9\``)
      await deps.redis.set('some-key', '1')
      await deps.queueUrls()
      await deps.search.ensureIndex()
      await otherRun.redis.set('some-key', '1')
      const listQueues = async () =>
        (await deps.sqs.send(new ListQueuesCommand({ QueueNamePrefix: `test-${runId}-` }))).QueueUrls ?? []
      const listIndices = async () =>
        Object.keys(await deps.search.client.indices.get({ index: `test-${runId}-*` }))
      expect(await redis.keys(`test:${runId}:*`)).toHaveLength(1)
      expect(await listQueues()).toHaveLength(4)
      expect(await listIndices()).toHaveLength(1)

      await removeRunResources(runId, services)

      const [databases] = await admin.query('SHOW DATABASES LIKE ?', [`${runDatabasePrefix(runId)}%`])
      expect(databases).toEqual([])
      expect(await redis.keys(`test:${runId}:*`)).toEqual([])
      expect(await listQueues()).toEqual([])
      expect(await listIndices()).toEqual([])
      expect(await otherRun.redis.get('some-key')).toBe('1') // another run's keys stay
    } finally {
      await admin.end()
      redis.disconnect()
      await Promise.all([deps.close(), otherRun.close()])
    }
  })
})
