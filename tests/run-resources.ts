import { DeleteQueueCommand, ListQueuesCommand, SQSClient } from '@aws-sdk/client-sqs'
import { Client } from '@elastic/elasticsearch'
import { Redis } from 'ioredis'
import mysql from 'mysql2/promise'

/**
 * Everything a test run creates is named after its run id, so that the run's teardown can find and
 * delete it on whatever it ran against: a compose stack (LocalStack, Elasticsearch, MySQL, Redis
 * with an append-only file) keeps what a run leaves behind across runs.
 */
export const runNames = (runId: string, unique: string) => ({
  REDIS_KEY_PREFIX: `test:${runId}:${unique}:`,
  SQS_CHATS_QUEUE: `test-${runId}-chats-${unique}`,
  SQS_MESSAGES_QUEUE: `test-${runId}-messages-${unique}`,
  SEARCH_INDEX: `test-${runId}-messages-${unique}`,
})

/** The per-worker databases are `chat_test_<runId>_w<n>`, and the ones tests derive from them. */
export const runDatabasePrefix = (runId: string) => `chat_test_${runId}_`

export interface RunServices {
  mysqlUrl: string
  redisUrl: string
  sqsEndpoint: string
  elasticsearchUrl: string
}

const dropDatabases = async (url: string, runId: string) => {
  const connection = await mysql.createConnection(url)
  try {
    const [rows] = await connection.query('SHOW DATABASES LIKE ?', [`${runDatabasePrefix(runId)}%`])
    for (const row of rows as Array<Record<string, string>>) {
      await connection.query(`DROP DATABASE IF EXISTS \`${Object.values(row)[0]}\``)
    }
  } finally {
    await connection.end()
  }
}

const deleteRedisKeys = async (url: string, runId: string) => {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 })
  try {
    let cursor = '0'
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `test:${runId}:*`, 'COUNT', 1000)
      if (keys.length > 0) await redis.unlink(...keys)
      cursor = next
    } while (cursor !== '0')
  } finally {
    redis.disconnect()
  }
}

const deleteQueues = async (endpoint: string, runId: string) => {
  const sqs = new SQSClient({
    endpoint,
    region: process.env.AWS_REGION ?? 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  })
  try {
    const urls: string[] = []
    let token: string | undefined
    do {
      const page = await sqs.send(
        new ListQueuesCommand({ QueueNamePrefix: `test-${runId}-`, MaxResults: 1000, NextToken: token }),
      )
      urls.push(...(page.QueueUrls ?? []))
      token = page.NextToken
    } while (token)
    await Promise.all(urls.map((QueueUrl) => sqs.send(new DeleteQueueCommand({ QueueUrl }))))
  } finally {
    sqs.destroy()
  }
}

const deleteIndices = async (url: string, runId: string) => {
  const client = new Client({ node: url })
  try {
    // Elasticsearch refuses wildcard deletes by default: list the run's indices, delete them by name.
    const found = await client.indices.get({ index: `test-${runId}-*`, expand_wildcards: 'all' })
    const names = Object.keys(found)
    for (let at = 0; at < names.length; at += 50) {
      await client.indices.delete({ index: names.slice(at, at + 50) }, { ignore: [404] })
    }
  } finally {
    await client.close()
  }
}

/**
 * Deletes what the run `runId` created in every service: databases, Redis keys, queues (and their
 * dead-letter queues), search indices. Tries each service; throws after trying all if one failed.
 */
export const removeRunResources = async (runId: string, services: RunServices) => {
  const results = await Promise.allSettled([
    dropDatabases(services.mysqlUrl, runId),
    deleteRedisKeys(services.redisUrl, runId),
    deleteQueues(services.sqsEndpoint, runId),
    deleteIndices(services.elasticsearchUrl, runId),
  ])
  const failures = results.flatMap((result) => (result.status === 'rejected' ? [result.reason] : []))
  if (failures.length > 0) throw new AggregateError(failures, `test run ${runId} left resources behind`)
}
