// Persistence figures, each in a process of its own (argv[2] is the mode, argv[3] a JSON argument;
// the result goes to the parent over IPC):
//   upsert  the baseline: raw multi-row upserts into the messages table of the same schema
//   index   a ceiling: bulk indexing into a fresh index, with the project's mapping or a variant of it
//   drain   the project: the real consumers (pollers, MySQL upserts, bulk indexing) draining the queues
import { Client, type estypes } from '@elastic/elasticsearch'
import mysql from 'mysql2/promise'
import { startWorkers } from '../functions/server.ts'
import { loadConfig } from '../lib/config.ts'
import { createDeps } from '../lib/deps.ts'
import { silentLogger } from '../lib/logger.ts'
import { useMetrics } from '../lib/metrics.ts'
import { INDEX_MAPPINGS, INDEX_SETTINGS } from '../lib/search/index-settings.ts'
import { cpuMeter } from './proc.ts'

/** The bulk ceiling's shape: what one consumer batch holds, several in flight, as the pollers run. */
const BATCH = 250
const CONCURRENCY = 4

export const benchBody = (i: number) =>
  `message ${i}: the quick brown fox jumps over the lazy dog, item ${i % 1000} — ça va?`

const timed = async (count: number, work: (from: number, to: number) => Promise<void>) => {
  let next = 0
  const started = performance.now()
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < count) {
        const from = next
        next = Math.min(count, next + BATCH)
        await work(from, next)
      }
    }),
  )
  const ms = performance.now() - started
  return { count, ms: Math.round(ms), per_s: Math.round((count / ms) * 1000) }
}

const upsert = async ({ rows, chatId }: { rows: number; chatId: number }) => {
  const pool = mysql.createPool({
    uri: process.env.DATABASE_URL,
    connectionLimit: CONCURRENCY,
    timezone: 'Z',
  })
  const now = new Date()
  const result = await timed(rows, async (from, to) => {
    const values = []
    for (let i = from; i < to; i++) values.push([chatId, i + 1, benchBody(i), 1, now, now, 1])
    await pool.query(
      'INSERT INTO messages (chat_id, number, body, body_version, created_at, updated_at, create_version) VALUES ? ON DUPLICATE KEY UPDATE body = VALUES(body), body_version = VALUES(body_version), updated_at = VALUES(updated_at)',
      [values],
    )
  })
  await pool.end()
  return result
}

// Mapping v1's 1–2 gram field (`drop: ['v1']` swaps it in for body.chars): what v2 saved, measured
// in the same run.
const V1_SHORT = { type: 'text', analyzer: 'body_short', search_analyzer: 'folded_keyword' }
const settings: estypes.IndicesIndexSettings = {
  ...INDEX_SETTINGS,
  max_ngram_diff: 1,
  analysis: {
    tokenizer: {
      ...INDEX_SETTINGS.analysis?.tokenizer,
      unigram_bigram: { type: 'ngram', min_gram: 1, max_gram: 2, token_chars: [] },
    },
    analyzer: {
      ...INDEX_SETTINGS.analysis?.analyzer,
      body_short: { type: 'custom', tokenizer: 'unigram_bigram', filter: ['lowercase', 'asciifolding'] },
      folded_keyword: { type: 'custom', tokenizer: 'keyword', filter: ['lowercase', 'asciifolding'] },
    },
  },
}

/** The project's mapping with some body fields left out, to price each one. */
const mappingWithout = (drop: string[]): estypes.MappingTypeMapping => {
  const body = structuredClone(INDEX_MAPPINGS.properties!.body) as {
    index?: boolean
    fields?: Record<string, unknown>
  }
  for (const name of drop) {
    if (name === 'words') body.index = false
    else if (name === 'v1') {
      delete body.fields?.chars
      body.fields = { ...body.fields, short: V1_SHORT }
    } else delete body.fields?.[name]
  }
  return {
    ...INDEX_MAPPINGS,
    properties: { ...INDEX_MAPPINGS.properties, body: body as estypes.MappingProperty },
  }
}

const index = async ({ docs, drop, name }: { docs: number; drop: string[]; name: string }) => {
  const client = new Client({ node: process.env.ELASTICSEARCH_URL!, requestTimeout: 60_000 })
  await client.indices.create({
    index: name,
    settings,
    mappings: mappingWithout(drop),
  })
  const now = new Date().toISOString()
  try {
    return await timed(docs, async (from, to) => {
      const operations = []
      for (let i = from; i < to; i++) {
        const chatId = 1 + (i % 100)
        operations.push(
          {
            index: {
              _index: name,
              _id: `${chatId}:${i}`,
              routing: String(chatId),
              version: 1,
              version_type: 'external_gte',
            },
          },
          {
            application_id: 1,
            chat_id: chatId,
            number: i,
            body: benchBody(i),
            created_at: now,
            updated_at: now,
            version: 1,
          },
        )
      }
      const response = await client.bulk({ operations })
      if (response.errors) throw new Error('bulk indexing reported errors')
    })
  } finally {
    await client.indices.delete({ index: name }).catch(() => undefined)
    await client.close()
  }
}

const PERSISTED = /"jobs_persisted_total":(\d+)/

/**
 * The consumers draining `jobs` queued jobs, measured once the first tenth (at most 10,000) are
 * persisted: those warm the process up, as a long-running consumer is (its JIT compiled 12.5 % of
 * a fresh drain's CPU samples, on threads of its own). Over the same window, the CPU a job of the
 * other processes named in `others` (the engine, MariaDB, the SQS emulator, Redis).
 */
const drain = async ({ jobs, others = {} }: { jobs: number; others?: Record<string, number[]> }) => {
  // 8 batches at a time, at most CONCURRENCY (4) bulk requests in flight, the ceiling's shape: the
  // other batches' MySQL work overlaps the indexing instead of leaving the engine idle meanwhile.
  const config = loadConfig({
    ...process.env,
    RUN_WORKERS: 'true',
    SQS_POLLERS: '8',
    SEARCH_BULK_CONCURRENCY: String(CONCURRENCY),
  })
  const deps = createDeps(config, { logger: silentLogger })
  // Jobs persisted, counted from the consumers' own metric hook (one line per batch, kept in this
  // process): the queues' depth is asked of SQS only once they are all in. Asking it every 100 ms
  // throughout cost this process nearly as many SQS calls as the consumers' own (424
  // GetQueueAttributes against 488 receives and deletes in one drain of 49,791 jobs).
  let persisted = 0
  let measuring:
    | { persisted: number; at: number; cpu: NodeJS.CpuUsage; others: ReturnType<typeof cpuMeter> }
    | undefined
  const warmUpJobs = Math.min(10_000, Math.floor(jobs / 10))
  const startMeasuring = () => {
    measuring = { persisted, at: performance.now(), cpu: process.cpuUsage(), others: cpuMeter(others) }
  }
  useMetrics('emf', (line) => {
    persisted += Number(PERSISTED.exec(line)?.[1] ?? 0)
    if (!measuring && persisted >= warmUpJobs) startMeasuring()
  })
  const started = performance.now()
  if (warmUpJobs === 0) startMeasuring()
  const workers = await startWorkers(deps)
  const isDrained = async () => persisted >= jobs && (await deps.inFlightJobs()) === 0
  // Dead-lettered jobs count as in flight: give up rather than wait for ever.
  while (!(await isDrained()) && performance.now() - started < 180_000)
    await new Promise((resolve) => setTimeout(resolve, persisted >= jobs ? 100 : 20))
  // A drain that gave up before its warm-up was over is measured from now: an empty window.
  if (measuring === undefined) startMeasuring()
  const measured = Math.max(1, persisted - measuring!.persisted)
  const ms = performance.now() - measuring!.at
  const cpu = process.cpuUsage(measuring!.cpu)
  const othersCpu = measuring!.others.per(measured)
  await workers.stop()
  await deps.close()
  return {
    count: measured,
    ms: Math.round(ms),
    per_s: Math.round((measured / ms) * 1000),
    // This process's CPU (every thread, user + system) per job: steadier than jobs/s on a machine
    // whose other processes (the engine, MariaDB, the SQS emulator) take the same cores.
    cpu_us: Math.round((cpu.user + cpu.system) / measured),
    others_cpu_us: othersCpu,
  }
}

if (process.send) {
  const modes = { upsert, index, drain } as const
  const mode = process.argv[2] as keyof typeof modes
  const result = await modes[mode](JSON.parse(process.argv[3] ?? '{}'))
  process.send(result, () => process.exit(0))
}
